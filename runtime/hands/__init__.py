"""Find the hand with onnxruntime alone: MediaPipe Hands' palm detector and landmark model (ONNX,
shipped in runtime/models/), with their pre- and post-processing in numpy/OpenCV.

Per frame (``HandTracker.process``):

1. Tracking: when the last frame had a hand, its landmarks give this frame's crop (a square
   rotated so the wrist is below the fingers, 2x the landmarks' extent); the landmark model runs
   on it. If it still sees a hand (presence >= ``min_presence``) that is the answer: no palm
   detection.
2. Otherwise palm detection on the whole frame (letterboxed to 192x192): 2016 SSD anchors,
   sigmoid scores >= ``min_score``, box and 7 keypoints decoded, weighted NMS. The best palm
   (highest score: with two hands, the more confident one) gives a rotated crop (rotation from
   the wrist and middle-finger keypoints, the palm box shifted toward the fingers and scaled
   2.6x), and the landmark model runs on it.
3. Zoomed search (``zoom``): a hand far from the camera is a few pixels wide once the whole frame
   is shrunk to 192x192, and the palm detector misses it. When step 2 finds no hand, the palm
   detector looks again at overlapping squares of the frame (``search_tiles``), each shrunk less;
   a palm found there is mapped back to the frame, and the landmark model runs on the frame
   itself. From files, every square is searched at once; from a camera, one square per frame in
   turn (the whole frame is still searched every frame), so a camera frame without a hand costs
   two palm detections (a file without one: the whole frame and all 21 squares of a 640x480 image).
4. Border (``border``): a hand that fills the image (a close-up photo, a hand held near the
   camera) is too large for the palm detector's anchors. After the zoomed squares, the detector
   looks at the image shrunk inside a black border (a square ``BORDER`` times the image's longer
   side); the landmark model then runs on the image itself. From a camera this square is one more
   in the turn of step 3's squares (no extra detection per frame).

The result is a ``Hand``: 21 landmarks in frame pixels, presence, handedness, the crop used.
``HandFinder.find`` turns it into the square the classifier sees: the landmarks' box widened by
``pad`` (landmarks sit on the joints, inside the hand's outline), then the training framing (a
square the model contract's crop margin wider than the hand's longer side, shifted inside the frame:
``square_box``, which training's crop uses too).
``HandRoi`` smooths that square over camera frames and falls back to the guide box.

Any image (grayscale, RGBA, 1x1, huge) gives a Hand or None, never an exception.
"""
from .geometry import (BORDER, LANDMARK_MODELS, default_landmark_model, LANDMARK_SIZE, MODELS, PALM_MODEL, PALM_SIZE, ZOOM_MIN_SIDE,
                       ZOOM_TILES, Crop, Hand, Palm, as_rgb, iou_xyxy, outer_square, rotation_from, search_tiles,
                       ssd_anchors, transform_rect, weighted_nms)
from .roi import HandFinder, HandRoi, crop_box, square_box, xywh_to_corners
from .tracker import HandTracker

__all__ = ["BORDER", "LANDMARK_MODELS", "default_landmark_model", "LANDMARK_SIZE", "MODELS", "PALM_MODEL", "PALM_SIZE", "ZOOM_MIN_SIDE",
           "ZOOM_TILES", "Crop", "Hand", "Palm", "as_rgb", "iou_xyxy", "outer_square", "rotation_from", "search_tiles",
           "ssd_anchors", "transform_rect",
           "weighted_nms", "HandFinder", "HandRoi", "crop_box", "square_box", "xywh_to_corners", "HandTracker"]
