"""A model's inputs by name ({"image": batch} plus {"landmarks": rows} for a landmark model), and
the chunking every runner of them needs (numpy only: the INT8 checks run without torch)."""
from __future__ import annotations

import numpy as np

from asl_edge.runtime.landmarks import LANDMARKS_INPUT

INPUT_NAME, LANDMARKS_NAME = "image", LANDMARKS_INPUT


def as_feeds(inputs) -> dict:
    """A batch (the image input alone) or feeds {"image": ..., "landmarks": ...} -> feeds."""
    return dict(inputs) if isinstance(inputs, dict) else {INPUT_NAME: inputs}


def chunks(feeds: dict, size: int):
    """Feeds, `size` rows at a time (every input sliced alike)."""
    n = len(next(iter(feeds.values())))
    for i in range(0, n, size):
        yield {k: v[i:i + size] for k, v in feeds.items()}


def concat_feeds(parts) -> dict:
    parts = [as_feeds(p) for p in parts]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
