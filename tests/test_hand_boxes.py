"""Training framing from the runtime's hand finder: images without boxes.csv get hand boxes,
computed once per image and cached (train/hand_boxes.py)."""
import os
import shutil

import cv2
import pytest
import numpy as np

from asl_edge.runtime.contract import KAGGLE_CLASSES
from asl_edge.runtime.hands import HandFinder
from asl_edge.runtime.landmarks import PRESENCE

from conftest import ROBOFLOW_TRAIN, need


def test_fill_hand_boxes_finds_caches_and_recomputes_changed_images(tmp_path, logged):
    from asl_edge.train.data import load_image, scan_source
    from asl_edge.train.hand_boxes import fill_hand_boxes

    need(ROBOFLOW_TRAIN)
    src = tmp_path / "photos"
    picked = sorted((ROBOFLOW_TRAIN / "F").glob("*.jpg"))[:5]
    (src / "F").mkdir(parents=True)
    for p in picked:
        shutil.copy(p, src / "F" / p.name)
    cv2.imwrite(str(src / "F" / "blank.jpg"), np.full((200, 200, 3), 90, np.uint8))
    photo = cv2.imread(str(picked[2]))  # and one with room around the hand: its square lies inside
    framed = np.full((photo.shape[0] + 300, photo.shape[1] + 300, 3), 90, np.uint8)
    framed[150:150 + photo.shape[0], 150:150 + photo.shape[1]] = photo
    cv2.imwrite(str(src / "F" / "framed.png"), framed)
    samples, _ = scan_source(src, KAGGLE_CLASSES)
    assert all(s.box is None for s in samples)  # no boxes.csv here
    logs = logged
    out, counts = fill_hand_boxes(samples, tmp_path / "cache")
    assert counts["without_boxes_csv"] == 7 and counts["computed"] == 7
    assert counts["found"] + counts["no_hand"] == 7 and counts["found"] >= 4
    blank = next(s for s in out if s.path.endswith("blank.jpg"))
    assert blank.box is None and blank.hand is None and "1 with none (whole image, no landmarks)" in logs[-1] and "7 of 7 images not in the cache" in logs[0]
    assert all(s.hand is not None and s.hand[PRESENCE] == 1 and s.points.shape == (21, 2) for s in out if s.box is not None)
    # the training crop is the square asl-run classifies for that image, pixel for pixel, also where the
    # hand's square would leave the frame (both shift it inside: the contract's edge rule)
    inside = cut = 0
    for hit in (s for s in out if s.box is not None):
        rgb = cv2.cvtColor(cv2.imread(hit.path), cv2.COLOR_BGR2RGB)
        x, y, side, _ = HandFinder().find(rgb)
        assert np.array_equal(load_image(hit), rgb[y:y + side, x:x + side])
        x0, y0, x1, y1 = hit.box
        a, b = round((x0 + x1 - side) / 2), round((y0 + y1 - side) / 2)
        centred_inside = 0 <= a and 0 <= b and a + side <= rgb.shape[1] and b + side <= rgb.shape[0]
        inside, cut = inside + centred_inside, cut + (not centred_inside)
    assert inside >= 1 and cut >= 1
    # cached: nothing computed again; a changed image is recomputed
    again, counts2 = fill_hand_boxes(samples, tmp_path / "cache")
    assert counts2["computed"] == 0 and [s.box for s in again] == [s.box for s in out]
    os.utime(blank.path, ns=(1, 1))
    _, counts3 = fill_hand_boxes(samples, tmp_path / "cache")
    assert counts3["computed"] == 1


def test_a_boxes_csv_box_is_kept_and_still_gets_landmarks(tmp_path):
    import dataclasses

    from asl_edge.train.data import scan_source
    from asl_edge.train.hand_boxes import fill_hand_boxes

    need(ROBOFLOW_TRAIN)
    src = tmp_path / "photos"
    (src / "F").mkdir(parents=True)
    for p in sorted((ROBOFLOW_TRAIN / "F").glob("*.jpg"))[:3]:
        shutil.copy(p, src / "F" / p.name)
    samples, _ = scan_source(src, KAGGLE_CLASSES)
    given = [dataclasses.replace(s, box=(1.0, 2.0, 50.0, 60.0)) for s in samples]
    out, counts = fill_hand_boxes(given, tmp_path / "cache")
    assert counts["without_boxes_csv"] == 0 and counts["computed"] == 3 and counts["found"] >= 2
    assert all(s.box == (1.0, 2.0, 50.0, 60.0) for s in out)
    assert sum(s.hand is not None for s in out) == counts["found"]


def test_the_cache_key_follows_the_finders_own_settings(monkeypatch):
    """A changed default of the tracker or of the crop geometry is a new cache, not stale boxes."""
    from asl_edge.runtime.hands import geometry
    from asl_edge.runtime.hands.tracker import HandTracker
    from asl_edge.train import hand_boxes

    before = hand_boxes.finder_key()
    assert hand_boxes.finder_settings()["min_presence"] == repr(0.5)
    # how the finder runs (its threads, taking turns with a classifier) does not change what it finds: a
    # training cache must outlive such options
    assert not {"threads", "take_turns", "provider"} & set(hand_boxes.finder_settings())
    monkeypatch.setattr(geometry, "MIN_CROP_SIDE", geometry.MIN_CROP_SIDE + 1)
    assert hand_boxes.finder_key() != before
    monkeypatch.undo()
    assert hand_boxes.finder_key() == before
    original = HandTracker.__init__

    def stricter(self, landmark_model="full", *, video=True, threads=1, min_score=0.5, min_presence=0.6, **kw):
        original(self, landmark_model, video=video, threads=threads, min_score=min_score, min_presence=min_presence, **kw)

    monkeypatch.setattr(HandTracker, "__init__", stricter)
    assert hand_boxes.finder_key() != before


def test_the_crop_is_in_the_contract_and_old_contracts_keep_the_runtimes_rule():
    import json

    from asl_edge.common.errors import UserError
    from asl_edge.runtime.contract import CROP_MARGIN, ModelContract

    c = ModelContract(crop_margin=0.4)
    assert json.loads(c.to_json())["crop"] == {"margin": 0.4, "edge": "shift"}
    assert ModelContract.from_json(c.to_json()) == c
    old = {k: v for k, v in ModelContract().to_dict().items() if k != "crop"}  # a file from before the field
    assert (ModelContract.from_dict(old).crop_margin, ModelContract.from_dict(old).crop_edge) == (CROP_MARGIN, "shift")
    for crop in ({"margin": float("nan")}, {"margin": -1}, {"margin": "wide"}, {"edge": "pad"}, {"edge": None}, [0.25]):
        with pytest.raises(UserError, match="crop"):
            ModelContract.from_dict({**old, "crop": crop})


@pytest.mark.parametrize("box", [(0, 0, 60, 80), (590, 10, 640, 90), (300, 400, 380, 480), (-5, 200, 70, 260)])
def test_training_crops_a_hand_cut_by_the_frame_edge_as_the_runtime_does(tmp_path, box):
    """A boxes.csv hand at (or past) the frame's edge: training's crop is asl-run's square of the same box
    with the model's margin, pixel for pixel (both shift the square inside the frame)."""
    from asl_edge.runtime.hands import crop_box, square_box
    from asl_edge.train.data import Sample, load_image

    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), np.uint8)
    path = tmp_path / "hand.png"
    cv2.imwrite(str(path), image[:, :, ::-1])
    x0, y0, x1, y1 = box
    for margin in (0.25, 0.6):
        crop = load_image(Sample(str(path), 0, 0, box=tuple(map(float, box))), margin)
        square = square_box((x0, y0, x1 - x0, y1 - y0), 640, 480, margin)
        assert np.array_equal(crop, crop_box(image, square))
        assert crop.shape[0] == crop.shape[1] == round(max(x1 - x0, y1 - y0) * (1 + margin))
