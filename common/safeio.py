"""Reading untrusted image files safely: bounded reads, the pixel count checked from the header
before decoding, decoder noise kept off the terminal, and one UserError for every failure."""
from __future__ import annotations

import os
import stat
import struct
from pathlib import Path

import cv2
import numpy as np

from . import limits
from .errors import UserError
from .native_stderr import quiet_native_stderr

# FFmpeg's decoder complaints (a damaged frame in the middle of a video: "error while decoding MB ...")
# reach the terminal from OpenCV's reading threads, where stderr cannot be silenced safely; OpenCV reads this
# once, at its first video. The video's frames are used as FFmpeg conceals them; a video with none readable
# is one error line. Set the variable (e.g. to 16, FFmpeg's errors) to see them.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
def read_bounded(path, limit: int, what: str = "file") -> bytes:
    """The whole file, or UserError when it is missing or larger than `limit` bytes (checked
    before reading, and again while reading: a file may grow or lie about its size)."""
    path = Path(path)
    try:
        # non-blocking: opening a FIFO (a named pipe) for reading would wait for a writer forever
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise UserError(f"{what} {path} is not a regular file (a pipe, socket or device)")
            size = st.st_size
            if size > limit:
                raise UserError(f"{what} {path} is {size / 1e6:.0f} MB, over the {limit / 1e6:.0f} MB limit")
            data = f.read(limit + 1)
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a folder") from None
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror}") from None
    if len(data) > limit:
        raise UserError(f"{what} {path} is over the {limit / 1e6:.0f} MB limit")
    return data


def _jpeg_size(b: bytes):
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:  # libjpeg skips stray bytes before a marker ("extraneous bytes"): so do we
            i += 1
            continue
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        seg = struct.unpack(">H", b[i + 2:i + 4])[0]
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # SOFn
            h, w = struct.unpack(">HH", b[i + 5:i + 9])
            return w, h
        i += 2 + seg
    return None


def _tiff_size(b: bytes):
    end = "<" if b[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(end + "I", b[4:8])
        (n,) = struct.unpack(end + "H", b[ifd:ifd + 2])
        dims = {}
        for k in range(n):
            e = b[ifd + 2 + 12 * k: ifd + 14 + 12 * k]
            tag, typ = struct.unpack(end + "HH", e[:4])
            if tag in (256, 257):
                dims[tag] = struct.unpack(end + ("H" if typ == 3 else "I"), e[8:10] if typ == 3 else e[8:12])[0]
        return dims[256], dims[257]
    except (struct.error, KeyError):
        return None


def _pnm_size(b: bytes):
    """Netpbm (P1-P7 via width/height tokens, PF/Pf): the first two numbers after the magic."""
    tokens, i = [], 2
    while len(tokens) < 2 and i < min(len(b), 4096):
        if b[i:i + 1] == b"#":  # a comment runs to the end of its line
            while i < len(b) and b[i:i + 1] not in (b"\n", b"\r"):
                i += 1
        elif b[i:i + 1].isdigit():
            j = i
            while j < len(b) and b[j:j + 1].isdigit():
                j += 1
            tokens.append(int(b[i:j]))
            i = j
        elif b[i:i + 1].isspace() or (b[1:2] == b"7" and b[i:i + 1].isalpha()):  # P7: WIDTH w HEIGHT h
            i += 1
        else:
            return None
    return tuple(tokens) if len(tokens) == 2 else None


def header_size(b: bytes):
    """(width, height) from an image header without decoding, or None when the format is not
    recognised or the header is cut short (the decoder then decides)."""
    try:
        if b[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", b[16:24])
        if b[:2] == b"\xff\xd8":
            return _jpeg_size(b)
        if b[:2] == b"BM":
            w, h = struct.unpack("<ii", b[18:26])
            return abs(w), abs(h)
        if b[:4] == b"RIFF" and b[8:12] == b"WEBP":
            kind = b[12:16]
            if kind == b"VP8X":
                return 1 + int.from_bytes(b[24:27], "little"), 1 + int.from_bytes(b[27:30], "little")
            if kind == b"VP8L":
                bits = int.from_bytes(b[21:25], "little")
                return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", b[26:30])
                return w & 0x3FFF, h & 0x3FFF
        if b[:4] in (b"II*\x00", b"MM\x00*"):
            return _tiff_size(b)
        if b[:1] == b"P" and b[1:2] in b"1234567Ff":
            return _pnm_size(b)
        if b[:6] in (b"GIF87a", b"GIF89a"):
            return struct.unpack("<HH", b[6:10])
    except struct.error:
        return None
    return None


def _float_tiff_bgr(data: bytes) -> np.ndarray | None:
    """A TIFF of 32- or 64-bit float samples, which OpenCV reads only as it is: values 0..1 (the floating-point
    image convention) -> BGR uint8. None for anything else."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None or img.dtype.kind != "f" or img.ndim not in (2, 3):
        return None
    img = np.nan_to_num(img, nan=0.0, posinf=1.0, neginf=0.0)
    img = (np.clip(img, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    if img.ndim == 2 or img.shape[2] == 1:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    return img[:, :, :3] if img.shape[2] >= 3 else None


def decode_rgb(data: bytes, name) -> np.ndarray:
    """Encoded image bytes -> RGB uint8 HxWx3. The one decode path of the project (scan, training,
    asl-run, asl-bench, export): what one accepts, all accept. UserError when the image is corrupt,
    truncated, too small, or has more pixels than the limit (checked before decoding)."""
    if not data:
        raise UserError(f"cannot decode image {name}: empty file")
    size = header_size(data)
    if size is None:  # the pixel limit is checked on every image: an unreadable header is not decoded
        raise UserError(f"cannot decode image {name}: not a JPEG, PNG, BMP, WebP, TIFF, GIF or Netpbm image, "
                        "or its header is corrupt or cut short")
    cap = limits.max_pixels()
    if size[0] * size[1] > cap:
        raise UserError(f"image {name} is {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} MP), over the "
                        f"{cap / 1e6:g} MP limit; raise it with {limits.MAX_PIXELS_ENV} or --max-megapixels")
    try:
        with quiet_native_stderr():
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            if bgr is None and data[:4] in (b"II*\x00", b"MM\x00*"):
                bgr = _float_tiff_bgr(data)
    except cv2.error as e:
        raise UserError(f"cannot decode image {name}: {str(e).strip().splitlines()[-1][:120]}") from None
    if bgr is None or bgr.ndim != 3:
        raise UserError(f"cannot decode image {name}: not an image file, corrupt or truncated")
    if min(bgr.shape[:2]) < limits.MIN_IMAGE_SIDE:
        raise UserError(f"image {name} is {bgr.shape[1]}x{bgr.shape[0]}: smaller than "
                        f"{limits.MIN_IMAGE_SIDE} px on a side")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def read_image_rgb(path) -> np.ndarray:
    path = Path(path)
    return decode_rgb(read_bounded(path, limits.max_file_bytes(), "image"), path)
