"""Moving blobs in a frame: background subtraction, shadows and masked regions out, one blob per person.

Work happens on a copy shrunk to about `resize_width` (the box's CPU budget);
blobs come back in source-frame pixels, the coordinates of the counting line.
A blob as wide as two people at that place in the image (a couple side by
side) is cut in two where the foreground is thinnest; pieces of one body
(head, torso, legs) are joined while they stay one person's size. Each blob
carries a few mean colours of its foreground (upper and lower body) so that
tracks keep their identity through merges and partings. Frames and masks
live only in memory, for one frame; the first frames after a start are held
(shrunk) until the empty scene is learned from them, then dropped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from .person_size import PersonSize
from .settings import CameraSettings

SHADOW_CUT = 200  # MOG2 and KNN mark shadows 127 and foreground 255
LIGHT_GRID = (16, 12)  # cells over which the light is taken to be even
LIGHT_REFRESH = 10  # frames between two looks at the background's own light
LIGHT_EVERY = 5  # frames between two measures of the light
LIGHT_OUTLIER = 0.03  # a cell this far from its neighbours' light holds something, not a change of light
VAR_MIN = 25.0
WARM_UP_FRAMES = 20  # frames whose median is the empty scene
AREA_WIDTH = 320  # min_blob_area is given for frames this wide, and scales with the detection width
SPLIT_AT = 1.7  # a blob this many people wide is cut into people
MAX_PEOPLE_PER_BLOB = 6
JOIN_HEIGHT = 1.3  # fragments are joined while the union is at most this many people tall
JOIN_GAP = 0.4  # ... and further apart than the closing kernel only up to this share of a person's height
FILL = 0.6  # share of their box a person's foreground fills
COLOUR_FEATURES = 6  # mean B, G, R of the upper and of the lower half


@dataclass
class Blobs:
    """One frame's blobs; row i of each array is blob i."""

    boxes: np.ndarray  # (n, 4) cx, cy, w, h in source pixels
    colours: np.ndarray  # (n, 6) mean colour of the upper and lower half of the foreground, 0..1
    groups: np.ndarray  # (n,) the connected component each came from: pieces of a cut blob share it
    people: np.ndarray  # (n,) how many people it could hold: its width, height or area in people there
    mass: np.ndarray  # (n,) its foreground area in people there (a piece of someone is well under 1)
    sized: bool = False  # people and mass come from a learned person size (else from the blob's own height)

    @classmethod
    def empty(cls) -> Blobs:
        return cls(np.zeros((0, 4)), np.zeros((0, COLOUR_FEATURES)), np.zeros(0, dtype=int), np.zeros(0), np.zeros(0))

    def __len__(self) -> int:
        return len(self.boxes)


def merge_fragments(
    boxes: list[list[int]] | np.ndarray, gap: float, fits: Callable[[float, float, float, float, float], bool] | None = None
) -> list[list[int]]:
    """Which boxes (x, y, w, h rows) are pieces of one body: groups of indices.

    Two boxes join when they overlap horizontally by at least half the narrower
    one and are at most `gap` apart vertically; with `fits`, it decides instead
    (`fits(x, y, w, h, vertical_gap)` for the union box): a head and legs seen
    through a torso the colour of the floor are far apart, yet one person tall.
    """
    groups = [[i] for i in range(len(boxes))]
    rects = [[float(v) for v in b] for b in boxes]
    merged = True
    while merged and len(rects) > 1:
        merged = False
        for i in range(len(rects)):
            for j in range(i + 1, len(rects)):
                a, b = rects[i], rects[j]
                overlap = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
                vertical_gap = max(a[1], b[1]) - min(a[1] + a[3], b[1] + b[3])
                if overlap < 0.5 * min(a[2], b[2]):
                    continue
                x0, y0 = min(a[0], b[0]), min(a[1], b[1])
                union = [x0, y0, max(a[0] + a[2], b[0] + b[2]) - x0, max(a[1] + a[3], b[1] + b[3]) - y0]
                if not (fits(*union, vertical_gap) if fits is not None else vertical_gap <= gap):
                    continue
                rects[i] = union
                groups[i] += groups[j]
                del rects[j], groups[j]
                merged = True
                break
            if merged:
                break
    return groups


def heads(top: np.ndarray, min_gap: float, min_dip: float) -> list[int]:
    """Columns of the separate heads along a blob's top edge (`top[c]`: its height in column c).

    People side by side make one blob with a bump per head; an arm or a bag
    sticks out lower down and makes none. Peaks are taken highest first, each
    at least `min_gap` from the others and with the edge dipping by `min_dip`
    between them.
    """
    smooth = np.convolve(top, np.ones(3) / 3, mode="same")
    floor = 0.6 * float(smooth.max())
    peaks: list[int] = []
    for c in np.argsort(-smooth, kind="stable"):
        if smooth[c] < floor:
            break
        if all(abs(c - p) >= min_gap and smooth[min(c, p) : max(c, p) + 1].min() <= min(smooth[c], smooth[p]) - min_dip
               for p in peaks):
            peaks.append(int(c))
    return sorted(peaks)


def cut_columns(profile: np.ndarray, peaks: list[int]) -> list[int]:
    """Where to cut between neighbouring peaks: the thinnest column of foreground between them."""
    smooth = np.convolve(profile, np.ones(3) / 3, mode="same")
    return [a + 1 + int(np.argmin(smooth[a + 1 : b])) for a, b in zip(peaks, peaks[1:]) if b - a > 1]


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
        # Shrinking a frame less than twice as wide as resize_width saves little and loses detail: keep it as it is.
        self.scale = s.resize_width / shape[1] if shape[1] >= 2 * s.resize_width else 1.0
        self.size = (max(1, round(shape[1] * self.scale)), max(1, round(shape[0] * self.scale)))
        self.area_scale = (self.size[0] / AREA_WIDTH) ** 2  # min_blob_area is in pixels of a frame 320 wide
        self._new_subtractor()
        k = max(3, round(self.size[0] / 64) | 1)
        speck = max(3, round(self.size[0] / 160) | 1)  # noise specks grow with the detection size too
        self.blur = (speck, speck)
        self.open_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (speck, speck))
        self.close_kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k + 2))
        self.fragment_gap = k
        self.ignore = self._ignore_mask()
        self.light: np.ndarray | None = None  # the background's light per cell
        self.gain: np.ndarray | None = None  # per pixel: evens this frame's light out to the background's
        self.frames = 0

    def _new_subtractor(self) -> None:
        s = self.settings
        if s.subtractor == "knn":
            self.subtractor = cv2.createBackgroundSubtractorKNN(500, s.knn_dist2_threshold, s.detect_shadows)
        else:
            self.subtractor = cv2.createBackgroundSubtractorMOG2(500, s.mog2_var_threshold, s.detect_shadows)
            self.subtractor.setVarMin(VAR_MIN)

    def _ignore_mask(self) -> np.ndarray | None:
        """255 where motion counts, 0 inside the `masks` polygons (walls, screens, doors): in memory only."""
        if not self.settings.masks:
            return None
        keep = np.full((self.size[1], self.size[0]), 255, np.uint8)
        polygons = [np.round(np.array(p, dtype=np.float64) * self.scale).astype(np.int32) for p in self.settings.masks]
        cv2.fillPoly(keep, polygons, 0)
        return keep

    # -- per frame --------------------------------------------------------------------------

    def prepare(self, frame: np.ndarray, people: Callable[[], np.ndarray] | None = None) -> np.ndarray:
        """Shrink and blur; then even out slow changes of light (clouds, auto-gain, lamps) against the background.

        `people()` gives boxes (cx, cy, w, h, source pixels) where people are thought
        to be: the light there is judged from around them, not from their clothes.
        """
        if frame.shape != self.shape:
            self._reset(frame.shape)
        small = frame if self.scale == 1.0 else cv2.resize(frame, self.size, interpolation=cv2.INTER_LINEAR)
        small = cv2.GaussianBlur(small, self.blur, 0)
        if self.light is None:
            return small
        if self.gain is None or self.frames % LIGHT_EVERY == 0:  # light changes over seconds, not frames
            self.gain = self._light_gain(small, people() if people is not None else np.zeros((0, 4)))
        if self.gain is None:
            return small
        return cv2.multiply(small, self.gain, dtype=cv2.CV_8U)

    def _light_gain(self, small: np.ndarray, people: np.ndarray) -> np.ndarray | None:
        """What to multiply frames by to divide out the ratio of their light to the background's (None: nothing).

        Light changes smoothly across a scene (a cloud brightens the wall more than
        the grass); a person changes a cell abruptly. Cells under a tracked person,
        or far from their neighbours, take the ratio of the free cells around them.
        """
        cells = cv2.resize(small, LIGHT_GRID, interpolation=cv2.INTER_AREA).astype(np.float32) + 1.0
        ratio = cells / self.light
        ratio = ratio.mean(axis=2) if ratio.ndim == 3 else ratio
        free = np.abs(ratio - cv2.medianBlur(ratio, 3)) <= LIGHT_OUTLIER
        cols, rows = LIGHT_GRID
        for cx, cy, w, h in people:  # cells under people, in grid units
            x0, x1 = int((cx - w / 2) / self.shape[1] * cols), int((cx + w / 2) / self.shape[1] * cols) + 1  # type: ignore[index]
            y0, y1 = int((cy - h / 2) / self.shape[0] * rows), int((cy + h / 2) / self.shape[0] * rows) + 1  # type: ignore[index]
            free[max(0, y0) : y1, max(0, x0) : x1] = False
        if free.sum() < 0.25 * free.size:
            return self.gain  # too crowded to tell the light from the people: keep the last word
        weight = cv2.blur(free.astype(np.float32), (5, 5))
        around = cv2.blur(ratio * free, (5, 5)) / np.maximum(weight, 1e-6)
        if (weight < 1e-3).any():
            around[weight < 1e-3] = float(np.median(ratio[free]))
        ratio = np.where(free, ratio, around).astype(np.float32)
        if float(np.abs(ratio - 1.0).max()) < 0.01:
            return None
        gain = cv2.resize(1.0 / ratio, self.size, interpolation=cv2.INTER_LINEAR)
        return cv2.merge([gain] * small.shape[2]) if small.ndim == 3 else gain

    def _look_at_background(self) -> None:
        background = self.subtractor.getBackgroundImage()
        if background is not None:
            self.light = cv2.resize(background, LIGHT_GRID, interpolation=cv2.INTER_AREA).astype(np.float32) + 1.0

    def learn_empty_scene(self, prepared: list[np.ndarray]) -> None:
        """Start the background from the per-pixel median of the first frames (people move on; the floor stays)."""
        if not prepared or prepared[0].shape[:2] != (self.size[1], self.size[0]):
            return
        empty = np.median(np.stack(prepared), axis=0).astype(np.uint8)
        for k in range(1, WARM_UP_FRAMES + 1):  # KNN keeps samples and needs about this many
            self.subtractor.apply(empty, learningRate=1.0 / k)
        self.frames = WARM_UP_FRAMES
        self._look_at_background()

    def detect(self, prepared: np.ndarray, dt: float, size: PersonSize | None = None) -> Blobs:
        """Blobs of one prepared frame; `dt` is the time since the last frame."""
        self.frames += 1
        # Learn the empty scene from the first frames, then at the configured memory.
        warm = self.frames <= WARM_UP_FRAMES
        rate = 1.0 / self.frames if warm else min(1.0, max(dt, 0.0) / self.settings.background_seconds)
        mask = self.subtractor.apply(prepared, learningRate=rate)
        if warm or self.frames % LIGHT_REFRESH == 0:
            self._look_at_background()
        if warm:
            return Blobs.empty()  # the model is still learning the empty scene
        _, mask = cv2.threshold(mask, SHADOW_CUT, 255, cv2.THRESH_BINARY)
        if self.ignore is not None:
            mask = cv2.bitwise_and(mask, self.ignore)
        if cv2.countNonZero(mask) > self.settings.relearn_fraction * mask.size:
            self._reset(self.shape)  # type: ignore[arg-type]  # lights switched, camera moved: learn again
            self.relearned += 1
            return Blobs.empty()
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, self.open_kernel)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, self.close_kernel)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8, ltype=cv2.CV_16U)
        area = stats[1:, cv2.CC_STAT_AREA]
        keep = np.flatnonzero(
            (area >= self.settings.min_blob_area * self.area_scale) & (area <= self.settings.max_blob_fraction * mask.size)
        ) + 1
        return self._people(prepared, labels, stats, keep, size)

    # -- blobs into people ------------------------------------------------------------------

    def _expected(self, size: PersonSize | None, x: float, y: float, w: float, h: float) -> tuple[float, float, bool]:
        """Expected person width and height (detection pixels) for a box with its feet at its bottom centre."""
        if size is None:
            return 0.4 * h, h, False
        e = size.expected((x + w / 2) / self.scale, (y + h) / self.scale, h / self.scale)
        return e.width * self.scale, e.height * self.scale, e.known

    def _people(
        self, prepared: np.ndarray, labels: np.ndarray, stats: np.ndarray, keep: np.ndarray, size: PersonSize | None
    ) -> Blobs:
        rects = stats[keep, :4].tolist()

        def fits(x: float, y: float, w: float, h: float, gap: float) -> bool:
            """Pieces close together join unless too tall for one person; far apart, only if known to fit."""
            _, eh, known = self._expected(size, x, y, w, h)
            if not known:
                return gap <= self.fragment_gap
            return h <= JOIN_HEIGHT * eh and gap <= max(self.fragment_gap, JOIN_GAP * eh)

        boxes, colours, groups, people, mass = [], [], [], [], []
        for group_index, members in enumerate(merge_fragments(rects, self.fragment_gap, fits)):
            parts = [rects[m] for m in members]
            x0, y0 = min(r[0] for r in parts), min(r[1] for r in parts)
            x1, y1 = max(r[0] + r[2] for r in parts), max(r[1] + r[3] for r in parts)
            window = labels[y0:y1, x0:x1]
            roi = window == keep[members[0]] if len(members) == 1 else np.isin(window, keep[members])
            ew, eh, _ = self._expected(size, x0, y0, x1 - x0, y1 - y0)
            pieces = [(0, x1 - x0, 0, y1 - y0)]  # columns a:b, rows top:bottom of the group's window
            if x1 - x0 >= SPLIT_AT * ew:
                pieces = self._cut(roi, ew, eh)
            for a, b, top, bottom in pieces:
                piece = roi[top:bottom, a:b]
                boxes.append([x0 + (a + b) / 2, y0 + (top + bottom) / 2, b - a, bottom - top])
                colours.append(_colour(prepared[y0 + top : y0 + bottom, x0 + a : x0 + b], piece))
                groups.append(group_index)
                pw, ph = (ew, eh) if len(pieces) == 1 else self._expected(size, x0 + a, y0 + top, b - a, bottom - top)[:2]
                area = cv2.countNonZero(piece.view(np.uint8)) / max(1.0, FILL * pw * ph)
                people.append(max((b - a) / max(pw, 1.0), (bottom - top) / max(ph, 1.0), area))
                mass.append(area)
        if not boxes:
            return Blobs.empty()
        return Blobs(np.array(boxes) / self.scale, np.array(colours), np.array(groups, dtype=int), np.array(people),
                     np.array(mass), size is not None and size.known)

    @staticmethod
    def _cut(roi: np.ndarray, ew: float, eh: float) -> list[tuple[int, int, int, int]]:
        """A blob several people wide, cut between their heads: (a, b, top, bottom) per piece."""
        height = roi.shape[0]
        top = np.where(roi.any(axis=0), height - np.argmax(roi, axis=0), 0)
        found = heads(top, 0.6 * ew, 0.08 * eh)[:MAX_PEOPLE_PER_BLOB]
        edges = [0, *cut_columns(roi.sum(axis=0), found), roi.shape[1]]
        pieces = []
        for a, b in zip(edges, edges[1:]):
            rows = np.flatnonzero(roi[:, a:b].any(axis=1))
            if len(rows):
                pieces.append((a, b, int(rows[0]), int(rows[-1]) + 1))
        return pieces


def _colour(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean colour of the foreground in the upper and the lower half (grey frames give grey colours)."""
    half = max(1, len(mask) // 2)
    mask8 = mask.view(np.uint8)
    out = []
    for part_pixels, part_mask in ((pixels[:half], mask8[:half]), (pixels[half:], mask8[half:])):
        if part_pixels.size == 0:
            out += [0.0, 0.0, 0.0]
            continue
        mean = cv2.mean(part_pixels, mask=part_mask)
        out += mean[:3] if part_pixels.ndim == 3 else mean[:1] * 3
    return np.array(out) / 255.0


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
