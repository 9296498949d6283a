"""Videos and landmark rows as training sources (train/videos.py, train/landmark_rows.py)."""
from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from asl_edge.runtime.contract import KAGGLE_CLASSES
from asl_edge.common.errors import UserError
from asl_edge.runtime.landmarks import PRESENCE, normalise
from asl_edge.train import data as D
from asl_edge.train import videos
from asl_edge.train.landmark_rows import POINT_COLUMNS, load_landmark_rows


def write_video(path, n, size=(64, 48), seed=0):
    """n frames whose mean brightness is the frame number (so order can be checked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30, size)
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.full((size[1], size[0], 3), min(250, 10 + 8 * i), np.uint8))
    vw.release()
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "CACHE_ROOT", tmp_path / "cache")
    return tmp_path / "cache"


def test_videos_in_both_layouts_become_frames_in_order(tmp_path, cache):
    root = tmp_path / "person"
    write_video(root / "A.avi", 12)
    write_video(root / "B" / "take1.avi", 10)
    write_video(root / "B" / "take2.avi", 10)
    samples, report = D.scan_source(root, KAGGLE_CLASSES)
    assert report.videos == 3 and report.counts == {"A": 12, "B": 20}
    a = [s for s in samples if KAGGLE_CLASSES[s.label] == "A"]
    means = [float(cv2.imread(s.path).mean()) for s in a]
    assert means == sorted(means) and means[-1] - means[0] > 60  # decoded in recording order
    # a second scan reuses the decoded frames (same files, not rewritten)
    mtimes = [(s.path, os.stat(s.path).st_mtime_ns) for s in samples]
    again, _ = D.scan_source(root, KAGGLE_CLASSES)
    assert [(s.path, os.stat(s.path).st_mtime_ns) for s in again] == mtimes


def test_frame_blocks_are_split_inside_each_video(tmp_path, cache):
    root = tmp_path / "person"
    write_video(root / "C" / "one.avi", 40)
    write_video(root / "C" / "two.avi", 40)
    samples, _ = D.scan_source(root, KAGGLE_CLASSES)
    keys = [D.group_key(s.path) for s in samples]
    assert {k[1] for k in keys} == {"one", "two"}  # the video names the group, not only the number
    tr, va = D.split_samples(samples, 0.2, seed=1)
    assert len(va) == 16 and not set(tr) & set(va)
    for video in ("one", "two"):  # val frames of a video are contiguous runs of whole blocks
        v = sorted(keys[i][2] for i in va if keys[i][1] == video)
        runs = sum(1 for a, b in zip(v, v[1:]) if b != a + 1) + bool(v)
        assert runs <= 2


def test_bad_videos_are_skipped_and_counted_and_mixing_is_refused(tmp_path, cache):
    root = tmp_path / "person"
    write_video(root / "A.avi", 5)
    (root / "B.mp4").write_bytes(b"not a video at all" * 100)
    whole = write_video(tmp_path / "whole.avi", 30).read_bytes()
    (root / "C.avi").write_bytes(whole[:len(whole) // 3])  # cut short: what is left may decode
    samples, report = D.scan_source(root, KAGGLE_CLASSES)
    assert report.counts["A"] == 5 and str(root / "B.mp4") in report.unreadable
    assert report.counts.get("C", 0) + report.unreadable_frames <= 30 and "B" not in report.counts
    (root / "A").mkdir()
    cv2.imwrite(str(root / "A" / "x.jpg"), np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(UserError, match="both images and videos"):
        D.scan_source(root, KAGGLE_CLASSES)


def test_an_interrupted_extraction_leaves_no_cache_entry(tmp_path, cache, monkeypatch):
    video = write_video(tmp_path / "A.avi", 6)
    calls = {"n": 0}
    real = cv2.imwrite

    def dies(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(videos.cv2, "imwrite", dies)
    with pytest.raises(KeyboardInterrupt):
        videos.extract_frames(video, cache)
    assert not list((cache / "video_frames").glob("*/.complete"))
    monkeypatch.setattr(videos.cv2, "imwrite", real)
    assert len(videos.extract_frames(video, cache).frames) == 6


def _rows_csv(path, rows, header=None):
    header = header or ["class", "frame"] + POINT_COLUMNS
    lines = [",".join(header)] + [",".join(map(str, r)) for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def _hand(rng):
    return rng.uniform(0.3, 0.7, size=63)


def test_landmark_rows_are_the_runtimes_rows(tmp_path):
    rng = np.random.default_rng(0)
    hands = [_hand(rng) for _ in range(6)]
    f = _rows_csv(tmp_path / "rows.csv", [["AB"[i % 2], i, *h] for i, h in enumerate(hands)]
                  + [["nope", 9, *hands[0]], ["A", 10, *([float("nan")] * 63)]])
    got = load_landmark_rows(f, KAGGLE_CLASSES)
    assert got.skipped == 2 and got.labels.tolist() == [0, 1, 0, 1, 0, 1]
    pts = np.asarray(hands).reshape(-1, 21, 3) * np.array([1280, 720, 1280])
    np.testing.assert_allclose(got.rows, normalise(pts, np.zeros(6, bool)), atol=1e-6)
    assert (got.rows[:, PRESENCE] == 1).all()
    assert len(load_landmark_rows(f, KAGGLE_CLASSES, max_per_class=2).labels) == 4


@pytest.mark.parametrize("content, fragment", [
    ("class,frame,x0,y0\nA,0,0.1,0.2\n", "missing z0"),
    (None, "line 3 has"),
    ("", "empty landmark file"),
    (b"\xff\xfe\x00bin", "not a text"),
])
def test_bad_landmark_files_stop_in_one_line(tmp_path, content, fragment):
    f = tmp_path / "rows.csv"
    if content is None:
        _rows_csv(f, [["A", 0, *([0.5] * 63)], ["A", 1, 0.5]])
    elif isinstance(content, bytes):
        f.write_bytes(content)
    else:
        f.write_text(content)
    with pytest.raises(UserError, match=fragment):
        load_landmark_rows(f, KAGGLE_CLASSES)
