"""Videos as a training source: `<CLASS>/*.mp4` or `<CLASS>.mp4` beside the class folders.

Each video's frames are decoded once, in order, into the cache (one JPEG per frame, named
`<video>_f<frame number>.jpg` under a folder keyed by the video's path, size and modification
time), so everything downstream (the hand finder and its cache, the feature cache, the split by
frame blocks, --max-per-class's even spacing) treats them as the images of a class folder.
A frame OpenCV cannot decode is skipped and counted; a video with no readable frame is reported
and skipped, like an unreadable image.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from asl_edge.runtime.camera import VIDEO_EXTENSIONS
from asl_edge.common.fileio import build_dir_once
from asl_edge.common.native_stderr import quiet_native_stderr

log = logging.getLogger(__name__)

FRAME_SUFFIX = "_f"  # <video stem>_f00012.jpg: train/data.group_key reads the video and the frame number
JPEG_QUALITY = 95
MAX_FRAMES_PER_VIDEO = 100_000  # a bound on what one file may write into the cache


@dataclass
class VideoFrames:
    video: Path
    frames: list = field(default_factory=list)  # extracted frame files, in order
    unreadable: int = 0                         # frames that failed to decode mid-video


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def class_videos(root: Path, names) -> dict:
    """{class name: [video paths]} from `<CLASS>/<any>.mp4` and `<CLASS>.mp4` in root."""
    found = {}
    for p in sorted(root.iterdir()):
        if p.is_file() and is_video(p) and p.stem in names:
            found.setdefault(p.stem, []).append(p)
        elif p.is_dir() and p.name in names:
            vids = sorted(f for f in p.rglob("*") if f.is_file() and is_video(f))
            if vids:
                found.setdefault(p.name, []).extend(vids)
    return found


def _cache_folder(video: Path, cache_root: Path) -> Path:
    st = video.stat()
    key = f"{video.resolve()}|{st.st_size}|{st.st_mtime_ns}|q{JPEG_QUALITY}"
    return cache_root / "video_frames" / hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def extract_frames(video: Path, cache_root: Path) -> VideoFrames:
    """Decode every frame of `video` into the cache once (reused while the file is unchanged)."""
    dest = _cache_folder(video, cache_root)
    out = VideoFrames(video)

    def decode(tmp: Path) -> str:
        with quiet_native_stderr():
            cap = cv2.VideoCapture(str(video))
            try:
                total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if cap.isOpened() else 0
                index = 0
                while cap.isOpened() and index < MAX_FRAMES_PER_VIDEO and cap.grab():
                    ok, frame = cap.retrieve()
                    if ok and frame is not None and frame.size:
                        name = tmp / f"{video.stem}{FRAME_SUFFIX}{index:05d}.jpg"
                        if not cv2.imwrite(str(name), frame, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
                            raise OSError(28, "could not write a frame", str(name))
                    index += 1
            finally:
                cap.release()
        # frames the container announces but the decoder could not give (corrupt mid-video)
        return str(max(0, min(total, MAX_FRAMES_PER_VIDEO) - len(list(tmp.glob("*.jpg")))))

    out.unreadable = int(build_dir_once(dest, decode) or 0)
    out.frames = sorted(dest.glob(f"*{FRAME_SUFFIX}*.jpg"))
    return out
