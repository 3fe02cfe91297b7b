"""Moving blobs in a frame: background subtraction, shadows out, morphology, size filter.

Work happens on a copy shrunk to `resize_width` (the box's CPU budget); blobs
come back as (cx, cy, w, h) in source-frame pixels, the coordinates of the
counting line. Frames and masks live only in memory, for one frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from .settings import CameraSettings

SHADOW_CUT = 200  # MOG2 and KNN mark shadows 127 and foreground 255
GAIN_FOLLOW = 0.02
WARM_UP_FRAMES = 20  # share of the exposure reference that follows the scene per frame


def merge_fragments(boxes: np.ndarray, gap: float) -> np.ndarray:
    """Join blobs stacked one above the other with a small gap (head, torso, legs).

    Boxes are (x, y, w, h) rows; two merge when they overlap horizontally by at
    least half the narrower one and are at most `gap` apart vertically.
    """
    boxes = [list(map(float, b)) for b in boxes]
    merged = True
    while merged and len(boxes) > 1:
        merged = False
        for i in range(len(boxes)):
            for j in range(i + 1, len(boxes)):
                a, b = boxes[i], boxes[j]
                overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
                vertical_gap = max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3])
                if overlap >= 0.5 * min(a[2], b[2]) and vertical_gap <= gap:
                    x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                    x1, y1 = max(a[0] + a[2], b[0] + b[2]), max(a[1] + a[3], b[1] + b[3])
                    boxes[i] = [x0, y0, x1 - x0, y1 - y0]
                    del boxes[j]
                    merged = True
                    break
            if merged:
                break
    return np.array(boxes, dtype=np.float64).reshape(-1, 4)


class BlobDetector:
    """Foreground blobs of one camera; the background model adapts in seconds, not frames."""

    def __init__(self, settings: CameraSettings):
        self.settings = settings
        self.shape: tuple[int, ...] | None = None
        self.frames = 0
        self.relearned = 0

    def _reset(self, shape: tuple[int, ...]) -> None:
        s = self.settings
        self.shape = shape
        self.scale = min(1.0, s.resize_width / shape[1])
        self.size = (max(1, round(shape[1] * self.scale)), max(1, round(shape[0] * self.scale)))
        if s.subtractor == "knn":
            self.subtractor = cv2.createBackgroundSubtractorKNN(500, s.knn_dist2_threshold, s.detect_shadows)
        else:
            self.subtractor = cv2.createBackgroundSubtractorMOG2(500, s.mog2_var_threshold, s.detect_shadows)
        k = max(3, round(self.size[0] / 64) | 1)
        self.open_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
        self.close_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k + 2))
        self.fragment_gap = k
        self.exposure: float | None = None
        self.frames = 0

    def _prepare(self, frame: np.ndarray) -> np.ndarray:
        """Shrink, blur and hold the exposure steady (auto-gain, lights dimming slowly)."""
        small = frame if self.scale == 1.0 else cv2.resize(frame, self.size, interpolation=cv2.INTER_AREA)
        small = cv2.GaussianBlur(small, (5, 5), 0)
        level = float(small[::4, ::4].mean()) + 1e-3
        if self.exposure is None:
            self.exposure = level
        gain = min(2.0, max(0.5, self.exposure / level))
        self.exposure += GAIN_FOLLOW * (level * gain - self.exposure)
        return small if abs(gain - 1.0) < 0.01 else cv2.convertScaleAbs(small, alpha=gain)

    def detect(self, frame: np.ndarray, dt: float) -> np.ndarray:
        """Blobs as (cx, cy, w, h) rows in source pixels; `dt` is the time since the last frame."""
        if frame.shape != self.shape:
            self._reset(frame.shape)
        prepared = self._prepare(frame)
        self.frames += 1
        # Learn the empty scene from the first frames, then at the configured memory.
        rate = 1.0 / self.frames if self.frames <= WARM_UP_FRAMES else min(1.0, max(dt, 0.0) / self.settings.background_seconds)
        mask = self.subtractor.apply(prepared, learningRate=rate)
        if self.frames <= WARM_UP_FRAMES:
            return np.zeros((0, 4))  # the model is still learning the empty scene
        _, mask = cv2.threshold(mask, SHADOW_CUT, 255, cv2.THRESH_BINARY)
        if cv2.countNonZero(mask) > self.settings.relearn_fraction * mask.size:
            self._reset(frame.shape)  # lights switched, camera moved: learn the scene again
            self.relearned += 1
            return np.zeros((0, 4))
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open_kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_kernel)
        count, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        area = stats[1:, cv2.CC_STAT_AREA]
        keep = (area >= self.settings.min_blob_area) & (area <= self.settings.max_blob_fraction * mask.size)
        boxes = merge_fragments(stats[1:][keep, :4], self.fragment_gap)
        centres = np.column_stack([boxes[:, 0] + boxes[:, 2] / 2, boxes[:, 1] + boxes[:, 3] / 2, boxes[:, 2:]])
        return centres / self.scale


class PeopleConfirmer:
    """Asks OpenCV's HOG people detector about tracks tall enough for it (64×128 windows).

    HOG knows upright pedestrians seen from the side or at an angle; a blob it
    never recognises in `tries` looks is taken not to be a person (a trolley, a
    door swinging). Crops are cut from the frame in memory and dropped at once.
    """

    def __init__(self, min_height: int, tries: int = 6):
        self.min_height = min_height
        self.tries = tries
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def applies(self, height: float) -> bool:
        return height >= self.min_height

    def looks_like_person(self, frame: np.ndarray, cx: float, cy: float, w: float, h: float) -> bool:
        half_w, half_h = max(w * 0.8, h * 0.4), h * 0.65
        x0, x1 = int(max(0, cx - half_w)), int(min(frame.shape[1], cx + half_w))
        y0, y1 = int(max(0, cy - half_h)), int(min(frame.shape[0], cy + half_h))
        if x1 - x0 < 8 or y1 - y0 < 16:
            return False
        scale = 160.0 / (y1 - y0)
        crop = cv2.resize(frame[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if crop.shape[0] < 128 or crop.shape[1] < 64:
            return False
        _, weights = self.hog.detectMultiScale(crop, winStride=(8, 8), padding=(8, 8), scale=1.1)
        return len(weights) > 0 and float(np.max(weights)) > 0.2
