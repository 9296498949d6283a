"""Frame sources for camera mode (webcam index, video file, stream URL, Pi camera) and the guide box.

Live sources are read by a grab thread that keeps only the newest frame: the loop then
runs at the model's speed on fresh frames instead of falling behind the camera's queue.
Video files are read sequentially with no frames dropped, so a run on a file is repeatable.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2

from asl_edge.common.errors import UserError, first_line
from asl_edge.common.native_stderr import quiet_native_stderr

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
PICAM = "picam"
CAMERA_HINT = ("try --camera with another index (0, 1, 2), a video file path, "
               "an http:// or rtsp:// stream URL, or picam on a Raspberry Pi")
PICAM_MISSING = "picamera2 is not installed; on Raspberry Pi OS: sudo apt install python3-picamera2"
DEFAULT_TIMEOUT_S = 5.0  # --timeout: stream connect and per-frame read


# --- the region of a frame that is classified ------------------------------------------

@dataclass(frozen=True)
class Region:
    """What a region (a fixed GuideBox, or hands.HandRoi) gives for one frame."""
    box: tuple                 # (x0, y0, x1, y1) in frame pixels
    found: bool | None = None  # None: a fixed box; else whether a hand (fresh or kept) gave the box
    hand: object = None        # this frame's hands.Hand, or None
    rgb: object = None         # the frame in RGB when the region had to convert all of it (hand finding)

    @property
    def landmarks(self):
        """This frame's 21 landmarks (frame pixels, x and y), or None."""
        return None if self.hand is None else self.hand.landmarks[:, :2]


@dataclass(frozen=True)
class GuideBox:
    """Region of the frame that is classified: a centred square (fraction of the shorter
    side) or an explicit pixel rectangle x,y,w,h."""

    fraction: float = 0.6
    rect: tuple | None = None

    @classmethod
    def parse(cls, text) -> "GuideBox":
        s = str(text).strip().lower()
        if s in ("full", "none"):
            return cls(fraction=1.0)
        try:
            if "," in s:
                x, y, w, h = (int(v) for v in s.split(","))
                if w <= 0 or h <= 0 or x < 0 or y < 0:
                    raise ValueError
                return cls(rect=(x, y, w, h))
            fraction = float(s)
        except ValueError:
            raise UserError(f"bad --roi {text!r}: use a fraction of the shorter side like 0.6, "
                            "'full', or pixels x,y,w,h") from None
        if not 0 < fraction <= 1:
            raise UserError(f"bad --roi {text!r}: the fraction must be in (0, 1]")
        return cls(fraction=fraction)

    def box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) inside a width x height frame."""
        if self.rect is not None:
            x, y, w, h = self.rect
            x0, y0, x1, y1 = min(x, width), min(y, height), min(x + w, width), min(y + h, height)
            if x1 - x0 < 2 or y1 - y0 < 2:
                raise UserError(f"--roi {x},{y},{w},{h} lies outside the {width}x{height} frame")
            return x0, y0, x1, y1
        side = max(2, int(round(min(width, height) * self.fraction)))
        x0, y0 = (width - side) // 2, (height - side) // 2
        return x0, y0, x0 + side, y0 + side

    def crop(self, frame):
        x0, y0, x1, y1 = self.box(frame.shape[1], frame.shape[0])
        return frame[y0:y1, x0:x1]

    def region(self, frame) -> Region:
        return Region(self.box(frame.shape[1], frame.shape[0]))


# --- sources ---------------------------------------------------------------------------

class VideoFileSource:
    """Every frame of a video file, in order. Timestamps are video time, so hold times in
    seconds give the same text on every run and every machine."""

    live = False

    def __init__(self, path: Path):
        self.name = str(path)
        with quiet_native_stderr():
            self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise UserError(f"cannot open video file {path}: unsupported format or corrupt")
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and 0 < fps < 1000 else 30.0
        self._index = 0
        self.dropped = 0

    def read(self):
        """-> (BGR frame, timestamp in seconds), or None at the end."""
        ok, frame = self._cap.read()
        if not ok or frame is None:
            return None
        t = self._index / self.fps
        self._index += 1
        return frame, t

    def close(self):
        self._cap.release()


def video_frames(path) -> list:
    """Every frame of a video file, in order (BGR); [] when none can be read."""
    src = VideoFileSource(Path(path))
    try:
        frames = []
        while (got := src.read()) is not None:
            frames.append(got[0])
        return frames
    finally:
        src.close()


class StreamStalled(UserError):
    """A live source delivered no frame within the read timeout: the run ends with its summary."""


class LatestFrameSource:
    """A live source read on a background thread; read() returns the newest frame only
    (older unread frames are counted in .dropped).

    The capture is released by whichever of close() and the reader thread comes last: never
    while the thread is inside grab() (releasing under a blocked cap.read() segfaults OpenCV)."""

    live = True

    def __init__(self, name: str, grab, release, timeout: float = DEFAULT_TIMEOUT_S):
        self.name = name
        self._grab, self._release = grab, release
        self.timeout = timeout
        self._cond = threading.Condition()
        self._frame, self._seq, self._taken = None, 0, 0
        self._ended, self._stop, self._reader_done = False, False, False
        self.dropped = 0
        # Started by the first read(), so frames that arrive while the model loads are not counted.
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)

    def _run(self):
        try:
            while not self._stop:
                try:
                    ok, frame = self._grab()
                except Exception:  # a camera unplugged mid-run ends the loop like end-of-stream
                    ok, frame = False, None
                with self._cond:
                    if not ok or frame is None:
                        self._ended = True
                        self._cond.notify_all()
                        return
                    if self._seq > self._taken:
                        self.dropped += 1
                    self._frame, self._seq = frame, self._seq + 1
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._reader_done = True
                release_here = self._stop  # close() came first and left the release to us
            if release_here:
                self._release_quietly()

    @property
    def grabbed(self) -> int:
        """Frames read from the device so far."""
        return self._seq

    def start(self):
        if self._thread.ident is None:
            self._thread.start()

    def read(self, timeout: float | None = None):
        """-> (newest BGR frame, wall-clock timestamp), or None when the stream has ended.
        StreamStalled when no frame comes within the timeout."""
        timeout = self.timeout if timeout is None else timeout
        self.start()
        with self._cond:
            if not self._cond.wait_for(lambda: self._seq > self._taken or self._ended, timeout):
                raise StreamStalled(f"{self.name} delivered no frame for {timeout:g} s (--timeout); "
                                    f"check the camera or stream, or {CAMERA_HINT}")
            if self._seq > self._taken:
                self._taken = self._seq
                return self._frame, time.monotonic()
            return None

    def close(self):
        with self._cond:
            self._stop = True
            release_here = self._thread.ident is None or self._reader_done
        if release_here:
            self._release_quietly()
        else:  # the reader may sit in grab() for OpenCV's read timeout: it releases on return
            self._thread.join(timeout=0.5)

    def _release_quietly(self):
        try:
            self._release()
        except Exception:
            pass


def _wait_for(fn, timeout: float, what: str):
    """Run a blocking native call (opening a stream) on a helper thread, so Ctrl-C stays prompt
    and the wait is bounded. -> fn's result; UserError on timeout (the helper is left to finish
    on its own; on_late cleans up what it returns)."""
    box = {}
    done = threading.Event()

    def work():
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the caller
            box["error"] = e
        finally:
            done.set()
            if box.get("late") and "value" in box:
                box["value"].release()

    threading.Thread(target=work, name="stream-open", daemon=True).start()
    if not done.wait(timeout):
        box["late"] = True
        if done.is_set() and "value" in box:  # finished in the same instant
            box["value"].release()
        raise UserError(f"{what} did not open within {timeout:g} s (--timeout); {CAMERA_HINT}")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _open_capture(target, name: str, timeout: float = DEFAULT_TIMEOUT_S) -> LatestFrameSource:
    ms = int(timeout * 1000)
    # FFmpeg-backed streams honour these (without them a dead URL blocks 30 s per call); a backend
    # that does not know them may refuse the open, so cameras by index open without them.
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]

    def open_it():
        with quiet_native_stderr():
            if isinstance(target, str):
                try:
                    cap = cv2.VideoCapture(target, cv2.CAP_ANY, params)
                    if cap.isOpened():
                        return cap
                    cap.release()
                except cv2.error:
                    pass
            return cv2.VideoCapture(target)

    cap = _wait_for(open_it, timeout + 1.0, name)
    if not cap.isOpened():
        cap.release()
        raise UserError(f"cannot open {name}; {CAMERA_HINT}")
    return LatestFrameSource(name, cap.read, cap.release, timeout)


def _open_picamera(size=(640, 480), timeout: float = DEFAULT_TIMEOUT_S) -> LatestFrameSource:
    try:  # lazy: only Raspberry Pi OS has it (apt package; a venv needs --system-site-packages)
        from picamera2 import Picamera2
    except ImportError:
        raise UserError(PICAM_MISSING) from None
    try:
        cam = Picamera2()
        # libcamera's "RGB888" is stored B,G,R: the same order as OpenCV frames.
        cam.configure(cam.create_preview_configuration(main={"format": "RGB888", "size": size}))
        cam.start()
    except Exception as e:
        raise UserError(f"cannot start the Pi camera: {first_line(e)}") from None

    def release():
        cam.stop()
        cam.close()

    return LatestFrameSource("the Pi camera", lambda: (True, cam.capture_array()), release, timeout)


MAX_CAMERA_INDEX = 9999  # OpenCV packs the index with the backend into one int


def open_source(spec: str, timeout: float = DEFAULT_TIMEOUT_S):
    """--camera value -> a source: index, 'picam', stream URL, or a video file path."""
    spec = str(spec).strip()
    if spec.lower() == PICAM:
        return _open_picamera(timeout=timeout)
    if spec.isascii() and spec.isdigit():  # not "²" or "٣", which str.isdigit also takes
        index = int(spec)
        if index > MAX_CAMERA_INDEX:
            raise UserError(f"camera index {spec[:20]} is out of range (0 to {MAX_CAMERA_INDEX}); {CAMERA_HINT}")
        return _open_capture(index, f"camera {index}", timeout)
    if "://" in spec:
        return _open_capture(spec, f"stream {spec}", timeout)
    path = Path(spec)
    if path.is_file():
        return VideoFileSource(path)
    raise UserError(f"camera source not found: {spec!r} is not a camera index, a video file, "
                    f"a URL or picam; {CAMERA_HINT}")
