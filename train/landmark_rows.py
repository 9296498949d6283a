"""A landmark-only source: rows of MediaPipe hand landmarks with a class, no images
(`asl-train --landmark-data FILE.csv`). They train the landmark classifier only.

The file: a header with `class` and `x0, y0, z0, ..., x20, y20, z20` (other columns ignored), one
hand per row, as MediaPipe Hands returns them: x and y normalised to the frame's width and height,
z on x's scale. Rows become the runtime's own 66-number landmark rows (runtime/landmarks.py) with
what such files do not say assumed, and stated here:
- the frame is 16:9 (x scaled by 1280, y by 720; only the ratio matters);
- the hand is MediaPipe's "Right" (the runtime's normalisation mirrors only "Left" hands).
Both chosen by measurement against the other assumptions (benchmarks/RESULTS.md, "Landmark rows
without images"; benchmarks/studies/landmark_rows_frame.py).
Rows of one letter are consecutive frames: evenly spaced picks (--max-per-class) keep the span.
"""
from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asl_edge.common.errors import UserError
from asl_edge.runtime.landmarks import normalise

log = logging.getLogger(__name__)

FRAME_W, FRAME_H = 1280.0, 720.0
HANDEDNESS = "Right"
POINT_COLUMNS = [f"{a}{i}" for i in range(21) for a in "xyz"]
MAX_ROWS = 2_000_000


@dataclass
class LandmarkRows:
    path: str
    rows: np.ndarray    # (N, 66) float32
    labels: np.ndarray  # (N,) int64
    skipped: int = 0    # rows with a class outside the model's, or numbers that are not finite


def load_landmark_rows(path, classes, max_per_class: int = 0) -> LandmarkRows:
    """The file's rows as the model's landmark rows; a malformed file stops in one UserError line."""
    path = Path(path)
    index = {c: i for i, c in enumerate(classes)}
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise UserError(f"{path}: empty landmark file")
            missing = [c for c in ["class"] + POINT_COLUMNS if c not in header]
            if missing:
                raise UserError(f"{path}: not a landmark file: needs columns class, x0, y0, z0 ... z20 "
                                f"(missing {', '.join(missing[:4])}{'...' if len(missing) > 4 else ''})")
            cols = [header.index(c) for c in POINT_COLUMNS]
            cls_col = header.index("class")
            points, labels, skipped = [], [], 0
            for n, row in enumerate(reader):
                if n >= MAX_ROWS:
                    raise UserError(f"{path}: over {MAX_ROWS} rows; split it into several files")
                if len(row) != len(header):
                    raise UserError(f"{path}: line {n + 2} has {len(row)} values, the header {len(header)}")
                try:
                    p = [float(row[c]) for c in cols]
                except ValueError:
                    raise UserError(f"{path}: line {n + 2}: a landmark value is not a number") from None
                if row[cls_col] not in index or not np.isfinite(p).all():
                    skipped += 1
                    continue
                points.append(p)
                labels.append(index[row[cls_col]])
    except OSError as e:
        raise UserError(f"cannot read landmark file {path}: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a text (CSV) landmark file") from None
    if not points:
        raise UserError(f"{path}: no usable landmark rows (classes must be among {', '.join(classes[:3])}, ...)")
    pts = np.asarray(points, np.float64).reshape(-1, 21, 3) * np.array([FRAME_W, FRAME_H, FRAME_W])
    labels = np.asarray(labels, np.int64)
    keep = _even_picks(labels, max_per_class)
    rows = normalise(pts[keep], np.full(len(keep), HANDEDNESS == "Left"))
    return LandmarkRows(str(path), rows, labels[keep], skipped)


def _even_picks(labels: np.ndarray, max_per_class: int) -> np.ndarray:
    """Indices: per class, at most max_per_class evenly spaced rows in file order (0 = all)."""
    out = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if max_per_class and len(idx) > max_per_class:
            idx = idx[np.linspace(0, len(idx) - 1, max_per_class).round().astype(int)]
        out.append(idx)
    return np.sort(np.concatenate(out))
