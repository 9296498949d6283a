"""Whole-image augmentations (train/augment.py): background replacement keeps the hand, relighting
stays an image, and both are reproducible from the view's seed."""
from __future__ import annotations

import numpy as np

from asl_edge.train.augment import hand_mask, relight, replace_background, scene


def _scene():
    """A flat grey 'room' with a bright 'hand' blob, and 21 points on that blob."""
    rgb = np.full((120, 160, 3), 90, np.uint8)
    rgb[40:80, 60:100] = (230, 180, 150)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(62, 98, 21), rng.uniform(42, 78, 21)])
    return rgb, points


def test_background_is_replaced_outside_the_hand_only():
    rgb, points = _scene()
    out = replace_background(rgb, points, np.random.default_rng(1))
    mask = hand_mask(rgb.shape, points)
    assert out.shape == rgb.shape and out.dtype == np.uint8
    inside = mask > 0.99
    outside = mask < 0.01
    assert inside.sum() > 500 and outside.sum() > 10000
    np.testing.assert_array_equal(out[inside], rgb[inside])  # the hand is untouched
    assert np.abs(out[outside].astype(int) - 90).mean() > 10  # the grey room is gone
    again = replace_background(rgb, points, np.random.default_rng(1))
    np.testing.assert_array_equal(out, again)  # a view is a pure function of its seed


def test_relight_and_scene():
    rgb, points = _scene()
    lit = relight(rgb, np.random.default_rng(3))
    assert lit.dtype == np.uint8 and lit.shape == rgb.shape and not np.array_equal(lit, rgb)
    assert scene(rgb, None, ("background",), np.random.default_rng(0)) is rgb  # no landmarks: nothing to keep
    assert scene(rgb, points, (), np.random.default_rng(0)) is rgb


def test_default_can_be_extended_in_an_augment_list():
    import pytest

    from asl_edge.common.errors import UserError
    from asl_edge.train.presets import DEFAULT_AUGMENT, parse_augment

    assert parse_augment("default,background,light") == DEFAULT_AUGMENT + ("background", "light")
    assert parse_augment("flip,default") == ("flip",) + tuple(a for a in DEFAULT_AUGMENT if a != "flip")
    with pytest.raises(UserError, match="unknown augmentation"):
        parse_augment("default,sparkle")


def test_lowres_shrinks_half_the_crops_to_a_far_hands_size_and_never_enlarges():
    import torch

    from asl_edge.train.presets import LOWRES_SIDES, TrainPreset, _LowRes, parse_augment
    from asl_edge.runtime.contract import ModelContract

    torch.manual_seed(0)
    img = torch.randint(0, 256, (3, 300, 240), dtype=torch.uint8)
    shrink = _LowRes(p=1.0)
    sides = [min(shrink(img).shape[-2:]) for _ in range(200)]
    assert min(sides) >= LOWRES_SIDES[0] and max(sides) <= LOWRES_SIDES[1] and len(set(sides)) > 20
    out = shrink(img)
    assert abs(out.shape[-1] / out.shape[-2] - 240 / 300) < 0.02  # shape kept
    small = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8)
    assert torch.equal(shrink(small), small)  # already smaller than any drawn size
    assert torch.equal(_LowRes(p=0.0)(img), img)
    shrunk = sum(min(_LowRes()(img).shape[-2:]) < 240 for _ in range(400))
    assert 150 < shrunk < 250  # about half
    assert "lowres" in parse_augment("default,lowres")
    x = TrainPreset(ModelContract(input_size=64), ("lowres",))(np.zeros((300, 240, 3), np.uint8))
    assert tuple(x.shape) == (3, 64, 64)  # resized up to the input like any crop
