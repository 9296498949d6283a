"""The live window: display detection and the overlay (guide box, letter, top-k bars, FPS, text)."""
from __future__ import annotations

import os
import sys

import cv2
import numpy as np

WINDOW = "asl-run (q to quit, c to clear)"
FONT = cv2.FONT_HERSHEY_SIMPLEX
GREEN, GREY, WHITE, BLACK, AMBER = (60, 200, 60), (160, 160, 160), (255, 255, 255), (0, 0, 0), (0, 190, 255)
CYAN = (230, 200, 0)


def opencv_gui() -> str:
    """The GUI backend named in OpenCV's build information ("NONE" for headless wheels)."""
    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "GUI":
            return value.strip() or "NONE"
    return "unknown"


def display_unavailable_reason() -> str | None:
    """None when a window can be opened; otherwise why not, in a few words."""
    if opencv_gui().upper() == "NONE":
        return "this OpenCV has no GUI support (opencv-python-headless); pip install opencv-python for a window"
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display found (DISPLAY and WAYLAND_DISPLAY are unset)"
    try:
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
    except cv2.error as e:
        return f"cannot open a window: {str(e).strip().splitlines()[-1][:200]}"
    return None


class Window:
    """The OpenCV window; show() returns False once the user wants to stop."""

    def __init__(self):
        cv2.namedWindow(WINDOW, cv2.WINDOW_NORMAL)
        self.clear_requested = False
        self.key = None  # the last key pressed, as a character (asl-enroll's redo and skip)
        self._close_button_works = None  # some GUI backends cannot report visibility (-1)

    def show(self, frame_bgr) -> bool:
        cv2.imshow(WINDOW, frame_bgr)
        key = cv2.waitKey(1) & 0xFF
        self.key = chr(key) if key != 0xFF else None
        if key == ord("c"):
            self.clear_requested = True
        if key in (ord("q"), 27):  # q or Esc
            return False
        try:  # the window's close button
            visible = cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE)
        except cv2.error:
            return False
        if self._close_button_works is None:
            self._close_button_works = visible >= 0
        return visible >= 1 or not self._close_button_works

    def close(self):
        try:
            cv2.destroyWindow(WINDOW)
            cv2.waitKey(1)
        except cv2.error:
            pass


def _label(img, text, org, scale, color, thickness=1):
    # A dark outline keeps the text readable on any background.
    cv2.putText(img, text, org, FONT, scale, BLACK, thickness + 2, cv2.LINE_AA)
    cv2.putText(img, text, org, FONT, scale, color, thickness, cv2.LINE_AA)


# The hand's skeleton: wrist to each finger's base, then along each finger.
HAND_LINES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (5, 9), (9, 10), (10, 11),
              (11, 12), (9, 13), (13, 14), (14, 15), (15, 16), (13, 17), (0, 17), (17, 18), (18, 19), (19, 20)]


def draw_landmarks(frame_bgr: np.ndarray, points, scale: float = 1.0):
    """The 21 hand landmarks ((21, 2) frame pixels): skeleton lines and dots."""
    pts = [(int(round(x)), int(round(y))) for x, y in np.asarray(points)[:, :2]]
    t = max(1, int(round(scale)))
    for a, b in HAND_LINES:
        cv2.line(frame_bgr, pts[a], pts[b], WHITE, t, cv2.LINE_AA)
    for p in pts:
        cv2.circle(frame_bgr, p, max(2, int(3 * scale)), CYAN, -1, cv2.LINE_AA)


def draw_overlay(frame_bgr: np.ndarray, box, top_k, *, fps: float, text: str,
                 threshold: float, progress: float = 0.0, hand: bool | None = None,
                 landmarks=None, agree: bool = True, profile: bool = False) -> np.ndarray:
    """Draw on frame_bgr in place (and return it). box = (x0, y0, x1, y1); top_k = [(label, prob)].

    hand: None without hand finding; True when box is the found hand (drawn with a cyan
    frame around it), False when no hand was found and box is the guide box.
    landmarks: the hand's 21 points (frame pixels) to draw, or None.
    agree: False when the model's image and hand-shape classifiers differ and the speller counts such a frame
    less (the hold rule skips it; the evidence decoder with --agreement gives it a lower weight).
    profile: a personal profile (asl-run --profile) is fused into the scores."""
    h, w = frame_bgr.shape[:2]
    s = max(0.4, h / 480)  # scale everything with the frame height
    label, prob = top_k[0]
    confident = prob >= threshold and agree
    x0, y0, x1, y1 = box
    cv2.rectangle(frame_bgr, (x0, y0), (x1, y1), GREEN if confident else GREY, max(1, int(2 * s)))
    if hand is not None:
        if hand:
            t = max(1, int(2 * s))
            cv2.rectangle(frame_bgr, (x0 - 2 * t, y0 - 2 * t), (x1 + 2 * t, y1 + 2 * t), CYAN, t)
        _label(frame_bgr, "hand found" if hand else "no hand: guide box", (x0 + int(4 * s), max(int(12 * s), y0 - int(6 * s))),
               0.5 * s, CYAN if hand else GREY)
    if landmarks is not None:
        draw_landmarks(frame_bgr, landmarks, s)
    if progress > 0:  # how far the held letter is towards being typed
        cv2.rectangle(frame_bgr, (x0, y1 + 3), (x0 + int((x1 - x0) * progress), y1 + int(8 * s)), AMBER, -1)

    _label(frame_bgr, f"{label} {prob:.2f}", (int(10 * s), int(45 * s)), 1.4 * s,
           GREEN if confident else WHITE, max(1, int(2 * s)))
    if not agree:
        _label(frame_bgr, "image and hand shape differ", (int(10 * s), int(62 * s)), 0.5 * s, GREY)
    _label(frame_bgr, f"{fps:.1f} fps", (w - int(120 * s), int(25 * s)), 0.6 * s, WHITE)
    if profile:
        _label(frame_bgr, "profile in use", (w - int(120 * s), int(45 * s)), 0.5 * s, CYAN)

    bar_w, row = int(110 * s), int(22 * s)
    for i, (name, p) in enumerate(top_k):
        y = int(70 * s) + i * row
        cv2.rectangle(frame_bgr, (int(10 * s), y), (int(10 * s) + int(bar_w * p), y + row - 6), AMBER, -1)
        _label(frame_bgr, f"{name} {p:.2f}", (int(15 * s) + bar_w, y + row - 8), 0.5 * s, WHITE)

    band = int(40 * s)
    frame_bgr[h - band:] = (frame_bgr[h - band:] * 0.35).astype(frame_bgr.dtype)
    _label(frame_bgr, (text[-40:] or "(hold a letter in the box)") + "_", (int(10 * s), h - int(12 * s)),
           0.9 * s, WHITE, max(1, int(2 * s)))
    return frame_bgr
