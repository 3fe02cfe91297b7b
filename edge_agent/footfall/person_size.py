"""How big one person looks at each place in the image, learned from the people the camera sees.

A camera looking down at a floor sees a person's height in pixels change with
where they stand: people near the camera are tall, far ones small, and the
change is close to linear in the height of their feet in the image. The
model is height = a + b·y over foot points (source pixels), fitted robustly to
blobs that were certainly one whole person (a confirmed track alone in its
blob, as tall as it has lately been, not cut by the image edge), plus the
usual width-to-height ratio. With it, a blob
twice as wide as one person at that place is split into two, and fragments of
one person are joined only while they stay one person's size. Until enough
people have been seen (or when the camera looks straight down and size hardly
changes), it falls back to the blob's own height and a typical ratio.

Pure numpy, no images; a few hundred numbers of state.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

TYPICAL_RATIO = 0.4  # width / height of a walking adult seen from the side or above
MIN_SAMPLES = 40  # observations before the fit is trusted
KEEP = 600  # most recent observations kept
REFIT_EVERY = 20  # new observations between two fits while learning; then a tenth of those kept
MIN_SPREAD = 0.15  # share of the frame the foot points must spread over before a slope is fitted
TRIM = 2.5  # residuals beyond this many robust sigmas are left out of the final fit


@dataclass(frozen=True)
class Expected:
    """One person's expected size at a foot point; `known` is False before the model has learned."""

    width: float
    height: float
    known: bool


class PersonSize:
    """Expected person height by foot position, and the width-to-height ratio, learned online."""

    def __init__(self, frame_width: float, frame_height: float):
        self.frame_width = frame_width
        self.frame_height = frame_height
        self.samples: deque[tuple[float, float, float, float]] = deque(maxlen=KEEP)  # x, y, w, h
        self.coef: tuple[float, float] | None = None  # a, b
        self.ratio = TYPICAL_RATIO
        self.height_range = (0.0, float("inf"))
        self._since_fit = 0

    @property
    def known(self) -> bool:
        return self.coef is not None

    def observe(self, foot_x: float, foot_y: float, width: float, height: float) -> None:
        """One blob that was certainly one whole person."""
        if height <= 0 or width <= 0 or not 1.2 <= height / width <= 6.0:
            return  # lying down, a trolley, a smear of motion: not a person's shape
        self.samples.append((foot_x, foot_y, width, height))
        self._since_fit += 1
        every = REFIT_EVERY if self.coef is None else max(REFIT_EVERY, len(self.samples) // 10)
        if len(self.samples) >= MIN_SAMPLES and self._since_fit >= every:
            self._fit()

    def expected(self, foot_x: float, foot_y: float, blob_height: float | None = None) -> Expected:
        """Expected width and height at a foot point; before learning, the blob's own height."""
        if self.coef is None:
            height = blob_height if blob_height else 0.25 * self.frame_height
            return Expected(self.ratio * height, height, False)
        a, b = self.coef
        low, high = self.height_range
        height = min(max(a + b * foot_y, low), high)
        return Expected(self.ratio * height, height, True)

    def _fit(self) -> None:
        self._since_fit = 0
        data = np.array(self.samples)
        x, y, w, h = data.T
        design = np.column_stack([np.ones_like(y)])
        if np.ptp(y) >= MIN_SPREAD * self.frame_height:
            design = np.column_stack([design, y])
        keep = np.ones(len(h), dtype=bool)
        for _ in range(2):  # fit, drop the outliers (two people counted as one, half a person), fit again
            coef, *_ = np.linalg.lstsq(design[keep], h[keep], rcond=None)
            residual = h - design @ coef
            sigma = 1.4826 * float(np.median(np.abs(residual[keep]))) + 1e-6
            keep = np.abs(residual) <= TRIM * sigma
            if keep.sum() < design.shape[1] + 2:
                return
        self.coef = (float(coef[0]), float(coef[1]) if len(coef) > 1 else 0.0)
        self.ratio = float(np.median(w[keep] / h[keep]))
        self.height_range = (0.5 * float(h[keep].min()), 1.5 * float(h[keep].max()))
