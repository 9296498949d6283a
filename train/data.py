"""Finding, validating and splitting image folders laid out like Kaggle's ASL Alphabet."""
from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import re
import zipfile
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from asl_edge.runtime.contract import CROP_MARGIN, IMAGE_EXTENSIONS, read_rgb
from asl_edge.runtime.hands import crop_box, square_box
from asl_edge.common import limits
from asl_edge.common.errors import UserError, first_line
from asl_edge.common.fileio import build_dir_once

from . import videos

log = logging.getLogger(__name__)

# an empty ASL_EDGE_CACHE means unset (not the working folder)
CACHE_ROOT = Path(os.environ.get("ASL_EDGE_CACHE") or Path.home() / ".cache" / "asl-edge")

# Roboflow exports name augmented copies <photo>_jpg.rf.<hash>.jpg: group by <photo>.
_ROBOFLOW = re.compile(r"^(?P<group>.+?)_(jpe?g|png)\.rf\.[0-9a-f]+", re.IGNORECASE)
# Kaggle frames are <CLASS><frame number>.jpg: consecutive numbers are near-duplicates.
_FRAME = re.compile(r"^(?P<cls>[A-Za-z_]+?)(?P<num>\d+)$")
# Frames decoded from a video (train/videos.py) are <video>_f<frame number>.jpg.
_VIDEO_FRAME = re.compile(r"^(?P<video>.+)" + videos.FRAME_SUFFIX + r"(?P<num>\d+)$")


@dataclass
class Sample:
    path: str
    label: int
    source: int = 0
    box: tuple | None = None  # hand box (x0, y0, x1, y1) in pixels, when the source has boxes.csv
    hand: np.ndarray | None = None  # landmark features (runtime/landmarks.py) where the hand finder found a hand
    points: np.ndarray | None = None  # those 21 landmarks in image pixels (x, y), for train/augment.py


@dataclass
class SourceReport:
    root: Path
    counts: dict = field(default_factory=dict)
    empty: list = field(default_factory=list)
    unreadable: list = field(default_factory=list)
    videos: int = 0
    unreadable_frames: int = 0  # frames of readable videos that failed to decode (skipped)


def _unzip(path: Path) -> Path:
    """Extract a Kaggle zip once into the cache; reuse on later runs. Only images and boxes.csv
    are extracted, within a total size and a compression ratio (a zip bomb stops in one line)."""
    digest = hashlib.sha1(f"{path.resolve()}:{path.stat().st_size}:{path.stat().st_mtime_ns}".encode("utf-8", "surrogateescape")).hexdigest()[:16]
    dest = CACHE_ROOT / "unzipped" / digest

    def extract(tmp: Path):
        with zipfile.ZipFile(path) as zf:
            members = [m for m in zf.infolist() if not m.is_dir() and
                       (Path(m.filename).suffix.lower() in IMAGE_EXTENSIONS or Path(m.filename).name == "boxes.csv")]
            check_zip_limits(path, members)
            for m in members:
                try:
                    zf.extract(m, tmp)  # zipfile keeps names inside tmp and stops at each declared size
                except (zlib.error, EOFError) as e:  # damaged compressed bytes (a bad CRC is BadZipFile, below)
                    raise UserError(f"{path}: member {m.filename} is damaged ({first_line(e, 120)}); download the "
                                    "zip again, or unpack what you can yourself and pass the folder") from None

    try:
        build_dir_once(dest, extract)
    except zipfile.BadZipFile:
        raise UserError(f"{path} is not a readable zip file") from None
    except (RuntimeError, NotImplementedError) as e:  # encrypted members, compression zipfile lacks
        raise UserError(f"{path}: cannot extract it ({str(e).strip()[:120] or type(e).__name__}); "
                        "unpack it yourself and pass the folder") from None
    return dest


def check_zip_limits(path, members):
    total, cap = 0, limits.max_unzip_bytes()
    for m in members:
        total += m.file_size
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > limits.max_file_bytes() or (m.file_size > (1 << 20) and ratio > limits.MAX_ZIP_RATIO):
            raise UserError(f"{path}: member {m.filename} would expand to {m.file_size / 1e6:.0f} MB "
                            f"({ratio:.0f}x its packed size): not an image data set zip; unpack it yourself "
                            "and pass the folder if you trust it")
    if total > cap:
        raise UserError(f"{path} would expand to {total / 1e9:.1f} GB, over the {cap / 1e9:.0f} GB limit; raise it "
                        f"with {limits.MAX_UNZIP_ENV}=GB, or unpack it and pass the folder")


def find_class_root(path, classes) -> Path:
    """The folder that holds the class folders: accepts the folder itself, a zip, and Kaggle's
    doubled nesting (asl_alphabet_train/asl_alphabet_train/A/...)."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"data path not found: {path}")
    if path.is_file():
        if path.suffix.lower() != ".zip":
            raise UserError(f"data path {path} is a file; pass a folder with one subfolder per class, or a .zip")
        path = _unzip(path)
    known = set(classes)
    for _ in range(4):
        subdirs = [d for d in path.iterdir() if d.is_dir() and not d.name.startswith((".", "__"))]
        if any(d.name in known for d in subdirs) or videos.class_videos(path, known):
            return path
        if len(subdirs) == 1:
            path = subdirs[0]
            continue
        break
    raise UserError(f"no class folders found in {path}: expected subfolders named like {', '.join(list(classes)[:3])}, ..., "
                    f"{list(classes)[-1]} (Kaggle 'ASL Alphabet' layout), or videos named like A.mp4")


def load_boxes(root: Path) -> dict:
    """boxes.csv (file,class,x_min,y_min,x_max,y_max) beside the class folders, if present. Every
    box must be one in pixels (finite, 0 <= min < max); a malformed file stops in one line."""
    import csv

    f = root / "boxes.csv"
    if not f.is_file():
        return {}
    boxes = {}
    try:
        with open(f, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            for row in reader:
                try:
                    box = tuple(float(row[k]) for k in ("x_min", "y_min", "x_max", "y_max"))
                    name = row["file"]
                except (KeyError, ValueError, TypeError):
                    raise UserError(f"{f}: expected columns file,class,x_min,y_min,x_max,y_max") from None
                if not (all(math.isfinite(v) and 0 <= v <= 1e6 for v in box) and box[2] > box[0] and box[3] > box[1]):
                    raise UserError(f"{f}: line {reader.line_num}: box {row.get('x_min')},{row.get('y_min')},"
                                    f"{row.get('x_max')},{row.get('y_max')} is not a box in pixels (finite, "
                                    "0 <= min < max)")
                boxes[str((root / name).resolve())] = box
    except UnicodeDecodeError:
        raise UserError(f"{f}: not a UTF-8 text (CSV) file") from None
    except OSError as e:
        raise UserError(f"cannot read {f}: {e.strerror or e}") from None
    return boxes


def scan_source(path, classes, source_index=0, check_images=True, strict_classes=True):
    """List the images of one source (the frames of its videos included, train/videos.py). Unknown
    class folders are an error; empty folders, unreadable images and videos are reported and skipped."""
    root = find_class_root(path, classes)
    index = {c: i for i, c in enumerate(classes)}
    report = SourceReport(root=root)
    dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith((".", "__")))
    unknown = [d.name for d in dirs if d.name not in index]
    if unknown and strict_classes:
        raise UserError(f"unknown class folder(s) in {root}: {', '.join(unknown[:8])}; "
                        f"expected only {', '.join(classes)}")
    boxes = load_boxes(root)
    by_class = {d.name: sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
                for d in dirs if d.name in index}
    for name, vids in videos.class_videos(root, index).items():
        if by_class.get(name):
            raise UserError(f"{root / name}: class {name} has both images and videos; give them as separate "
                            "--data sources (frames of a video are split by blocks, photos one by one)")
        by_class[name] = _video_frames(vids, report)
    samples = []
    for name in sorted(by_class, key=index.get):
        files = by_class[name]
        if not files:
            report.empty.append(name)
            continue
        n = 0
        for p in files:
            if check_images and not p.is_relative_to(CACHE_ROOT / "video_frames"):  # frames the decoder wrote
                try:  # the same decode training uses: what passes here, loads there
                    read_rgb(p)
                except UserError:
                    report.unreadable.append(str(p))
                    continue
            samples.append(Sample(str(p), index[name], source_index, boxes.get(str(p.resolve()))))
            n += 1
        report.counts[name] = n
    if report.empty:
        log.warning(f"warning: {root}: empty class folder(s) skipped: {', '.join(report.empty)}")
    if report.unreadable:
        log.warning(f"warning: {root}: skipped {len(report.unreadable)} unreadable image(s) or video(s) (corrupt, truncated, "
                    f"under {limits.MIN_IMAGE_SIDE} px or over the pixel limit), e.g. {report.unreadable[0]}")
    if report.videos:
        log.info(f"{root}: {report.videos} video(s), {sum(report.counts.values())} frames"
                 + (f"; {report.unreadable_frames} frame(s) could not be decoded and were skipped"
                 if report.unreadable_frames else ""))
    if not samples:
        raise UserError(f"no readable images in {root}")
    return samples, report


def _video_frames(vids, report: SourceReport) -> list:
    """The decoded frames of a class's videos (train/videos.py), in order; unreadable videos reported."""
    frames = []
    for v in vids:
        got = videos.extract_frames(v, CACHE_ROOT)
        if not got.frames:
            report.unreadable.append(str(v))
            continue
        report.videos += 1
        report.unreadable_frames += got.unreadable
        frames += got.frames
    return frames


def group_key(path: str) -> tuple:
    """Images in one group are near-duplicates and must stay on one side of a split."""
    stem = Path(path).stem
    m = _ROBOFLOW.match(stem)
    if m:
        return ("photo", m.group("group"))
    m = _VIDEO_FRAME.match(stem)
    if m:
        return ("frame", m.group("video"), int(m.group("num")))
    m = _FRAME.match(stem)
    if m:
        return ("frame", "", int(m.group("num")))
    return ("file", stem)


def split_samples(samples, val_fraction=0.2, seed=0, blocks_per_class=10, random_split=False):
    """Leak-free split: per class and source, frames are sorted by number and cut into
    contiguous blocks (whole blocks go to val); other groups (e.g. Roboflow's augmented
    copies of one photo) go whole to one side. Seeded and stratified."""
    rng = random.Random(seed)
    by_stratum = defaultdict(list)
    for i, s in enumerate(samples):
        by_stratum[(s.source, s.label)].append(i)
    val = set()
    for key in sorted(by_stratum):
        idx = by_stratum[key]
        if random_split:
            k = round(len(idx) * val_fraction)
            val.update(rng.sample(idx, k))
            continue
        groups = defaultdict(list)
        for i in idx:
            groups[group_key(samples[i].path)].append(i)
        ordered = [groups[g] for g in sorted(groups)]
        if all(g[0] == "frame" for g in groups) and len(ordered) >= blocks_per_class:
            # contiguous frame-number blocks of (nearly) equal size
            bounds = np.linspace(0, len(ordered), blocks_per_class + 1).astype(int)
            units = [sum(ordered[a:b], []) for a, b in zip(bounds[:-1], bounds[1:])]
        else:
            units = ordered
        n_val_units = max(1, round(len(units) * val_fraction)) if len(units) > 1 else 0
        for u in rng.sample(range(len(units)), n_val_units):
            val.update(units[u])
    train_idx = [i for i in range(len(samples)) if i not in val]
    val_idx = sorted(val)
    return train_idx, val_idx


def class_counts(samples, idx, classes):
    c = Counter(samples[i].label for i in idx)
    return {classes[k]: c.get(k, 0) for k in range(len(classes))}


def load_image(sample: Sample, margin: float = CROP_MARGIN, jitter: float = 0.0, rng=None, scene=None) -> np.ndarray:
    """Decode to RGB; when the sample has a hand box, crop a square around it (the model contract's
    crop margin, optional jitter) so training sees the same framing as the runtime's hand crop. `scene`,
    a function of (image, landmark points), augments the whole image first (train/augment.py)."""
    rgb = read_rgb(sample.path)
    if scene is not None:
        rgb = scene(rgb, sample.points)
    if sample.box is None:
        return rgb
    return hand_crop(rgb, sample.box, margin, jitter, rng)


def hand_crop(rgb, box, margin=CROP_MARGIN, jitter=0.0, rng=None):
    """The runtime's crop (runtime/hands square_box, crop_box) of the (x0, y0, x1, y1) hand box, its
    square first scaled and moved by up to `jitter` (a fraction of its side) when `rng` is given."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    side = max(x1 - x0, y1 - y0) * (1 + margin)
    if jitter and rng is not None:
        side *= float(rng.uniform(1 - jitter, 1 + jitter))
        cx += float(rng.uniform(-jitter, jitter)) * side / 2
        cy += float(rng.uniform(-jitter, jitter)) * side / 2
    h, w = rgb.shape[:2]
    square = square_box((cx - side / 2, cy - side / 2, side, side), w, h, margin=0.0)
    return np.ascontiguousarray(crop_box(rgb, square))
