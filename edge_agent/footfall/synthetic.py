"""Synthetic door-camera videos with exact ground truth, for tests, benchmarks and demos.

People-like figures (head, torso, swinging legs, a shadow) of varied size,
speed, direction and contrast walk over a textured floor, under slow lighting
drift, flicker and sensor noise, behind a hanging sign (brief occlusions), in
groups, head-on past each other at the line, along the line without crossing,
and up to the line to linger on it and turn back (or go on). The counting line
is horizontal across the whole frame; moving down the image crosses it to its
right-hand side, an entry. `scripted_scene` puts people on given paths (a
couple, someone standing on the line, someone leaving the frame just past it)
and `SceneSpec.screens` adds motion that is not people, for the tests.

Ground truth is computed from the paths, not from pixels: a crossing is the
path's centre passing from one side of the line to the other. Videos are made
on demand (into a temporary folder) and never kept in the repository.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

ENTRY, EXIT = 1, -1


@dataclass(frozen=True)
class SceneSpec:
    """What to generate; every share is of the people arriving."""

    width: int = 320
    height: int = 240
    fps: float = 15.0
    seconds: float = 60.0
    seed: int = 0
    people_per_minute: float = 30.0
    lingerer_share: float = 0.12
    passer_share: float = 0.08
    group_share: float = 0.15
    counterflow_share: float = 0.1
    fast_share: float = 0.12
    low_contrast_share: float = 0.2
    noise: float = 4.0
    drift: float = 0.12
    occluder: bool = True
    shadows: bool = True
    screens: tuple[tuple[int, int, int, int], ...] = ()  # x0, y0, x1, y1: a bright bar sweeps up and down in each

    @property
    def line_y(self) -> float:
        return self.height / 2

    @property
    def line(self) -> tuple[float, float, float, float]:
        """The counting line X1,Y1,X2,Y2: left to right across the middle."""
        return (0.0, self.line_y, float(self.width), self.line_y)


@dataclass(frozen=True)
class Walker:
    """One figure: a piecewise-linear path of (t, x, y) centre points."""

    kind: str
    path: tuple[tuple[float, float, float], ...]
    height: float
    width: float
    torso: tuple[int, int, int]
    legs: tuple[int, int, int]
    head: tuple[int, int, int]

    def position(self, t: float) -> tuple[float, float] | None:
        times = [p[0] for p in self.path]
        if t < times[0] or t > times[-1]:
            return None
        x = float(np.interp(t, times, [p[1] for p in self.path]))
        y = float(np.interp(t, times, [p[2] for p in self.path]))
        return x, y

    def distance(self, t: float) -> float:
        """Path length walked by time t (drives the leg swing)."""
        walked = 0.0
        for (t0, x0, y0), (t1, x1, y1) in zip(self.path, self.path[1:]):
            if t <= t0:
                break
            f = min(1.0, (t - t0) / (t1 - t0)) if t1 > t0 else 1.0
            walked += f * float(np.hypot(x1 - x0, y1 - y0))
        return walked


@dataclass
class Scene:
    """A planned video: its walkers and the true crossings (t, direction)."""

    spec: SceneSpec
    walkers: list[Walker]
    crossings: list[tuple[float, int]] = field(default_factory=list)

    @property
    def entries(self) -> int:
        return sum(1 for _, d in self.crossings if d == ENTRY)

    @property
    def exits(self) -> int:
        return sum(1 for _, d in self.crossings if d == EXIT)

    @property
    def frame_count(self) -> int:
        return int(round(self.spec.seconds * self.spec.fps))

    def frames(self) -> Iterator[np.ndarray]:
        return _render(self)

    def write(self, path: Path) -> Path:
        """Write the video (Motion JPEG in AVI, which every OpenCV build reads)."""
        s = self.spec
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), s.fps, (s.width, s.height))
        if not writer.isOpened():
            raise OSError(f"cannot write a video to {path}")
        try:
            for frame in self.frames():
                writer.write(frame)
        finally:
            writer.release()
        return path


def true_crossings(walker: Walker, line_y: float) -> list[tuple[float, int]]:
    """Where the path's centre passes the horizontal line: down is an entry, up an exit."""
    found = []
    for (t0, _, y0), (t1, _, y1) in zip(walker.path, walker.path[1:]):
        if (y0 < line_y) != (y1 < line_y):
            t = t0 + (line_y - y0) / (y1 - y0) * (t1 - t0)
            found.append((t, ENTRY if y1 > y0 else EXIT))
    return found


# -- planning -----------------------------------------------------------------------------------


class _Planner:
    def __init__(self, spec: SceneSpec):
        self.spec = spec
        self.rng = np.random.default_rng(spec.seed)
        self.floor_level = 120.0

    def figure(self, kind: str, path: list[tuple[float, float, float]], scale: float = 1.0) -> Walker:
        rng, h = self.rng, self.spec.height
        height = h * rng.uniform(0.2, 0.3) * scale
        width = height * rng.uniform(0.36, 0.46)
        if rng.random() < self.spec.low_contrast_share:
            base = self.floor_level + rng.choice([-1, 1]) * rng.uniform(30, 45)
            torso = tuple(int(np.clip(base + rng.uniform(-8, 8), 0, 255)) for _ in range(3))
        else:
            torso = tuple(int(v) for v in rng.integers(0, 256, 3))
        legs = tuple(int(v) for v in rng.integers(10, 90, 3))
        head = tuple(int(v) for v in (rng.uniform(60, 140), rng.uniform(90, 170), rng.uniform(140, 220)))
        return Walker(kind, tuple(path), height, width, torso, legs, head)  # type: ignore[arg-type]

    def speed(self, fast: bool = False) -> float:
        low, high = (0.8, 1.2) if fast else (0.25, 0.5)
        return self.spec.height * self.rng.uniform(low, high)

    def straight(self, t: float, x0: float, y0: float, x1: float, y1: float, v: float) -> list[tuple[float, float, float]]:
        return [(t, x0, y0), (t + float(np.hypot(x1 - x0, y1 - y0)) / v, x1, y1)]

    def crossing(self, t: float, direction: int, x: float | None = None, v: float | None = None) -> list[tuple[float, float, float]]:
        s, rng = self.spec, self.rng
        margin = 0.2 * s.height
        x0 = x if x is not None else rng.uniform(0.12, 0.88) * s.width
        x1 = float(np.clip(x0 + rng.uniform(-0.12, 0.12) * s.width, 0.08 * s.width, 0.92 * s.width))
        top, bottom = -margin, s.height + margin
        y0, y1 = (top, bottom) if direction == ENTRY else (bottom, top)
        return self.straight(t, x0, y0, x1, y1, v or self.speed(rng.random() < s.fast_share))

    def lingerer(self, t: float) -> list[tuple[float, float, float]]:
        s, rng = self.spec, self.rng
        direction = ENTRY if rng.random() < 0.5 else EXIT
        margin = 0.2 * s.height
        x = rng.uniform(0.15, 0.85) * s.width
        start_y = -margin if direction == ENTRY else s.height + margin
        stop_y = s.line_y - direction * rng.uniform(1.0, 4.0)  # on the line, centre on its own side
        v = self.speed()
        path = self.straight(t, x, start_y, x, stop_y, v)
        t_stop = path[-1][0] + rng.uniform(2.0, 5.0)
        path.append((t_stop, x, stop_y))
        if rng.random() < 0.5:  # turns back
            end_y = start_y
        else:  # waited at the door, then went through
            end_y = s.height + margin if direction == ENTRY else -margin
        return path + self.straight(t_stop, x, stop_y, x, end_y, v)[1:]

    def passer(self, t: float) -> list[tuple[float, float, float]]:
        s, rng = self.spec, self.rng
        side = rng.choice([-1, 1])
        y = s.line_y + side * rng.uniform(0.2, 0.32) * s.height
        left, right = -0.1 * s.width, 1.1 * s.width
        x0, x1 = (left, right) if rng.random() < 0.5 else (right, left)
        return self.straight(t, x0, y, x1, y + rng.uniform(-0.04, 0.04) * s.height, self.speed())

    def plan(self) -> list[Walker]:
        s, rng = self.spec, self.rng
        walkers: list[Walker] = []
        t = 1.0 + rng.exponential(60.0 / s.people_per_minute)
        while t < s.seconds:
            roll = rng.random()
            shares = np.cumsum([s.lingerer_share, s.passer_share, s.group_share, s.counterflow_share])
            if roll < shares[0]:
                new = [self.figure("linger", self.lingerer(t))]
            elif roll < shares[1]:
                new = [self.figure("pass", self.passer(t))]
            elif roll < shares[2]:
                new = self.group(t)
            elif roll < shares[3]:
                new = self.counterflow(t)
            else:
                direction = ENTRY if rng.random() < 0.5 else EXIT
                new = [self.figure("cross", self.crossing(t, direction))]
            if all(w.path[-1][0] < s.seconds - 0.5 for w in new):
                walkers.extend(new)
            t += rng.exponential(60.0 / s.people_per_minute) * len(new)
        return walkers

    def group(self, t: float) -> list[Walker]:
        s, rng = self.spec, self.rng
        direction = ENTRY if rng.random() < 0.5 else EXIT
        size = int(rng.integers(2, 4))
        v = self.speed()
        x = rng.uniform(0.2, 0.8) * s.width
        members = []
        for i in range(size):
            offset = (i - (size - 1) / 2) * s.height * 0.25 * rng.uniform(0.6, 0.75)
            lag = rng.uniform(0.0, 0.5)
            members.append(self.figure("group", self.crossing(t + lag, direction, x + offset, v * rng.uniform(0.95, 1.05))))
        return members

    def counterflow(self, t: float) -> list[Walker]:
        """Two people passing head-on at the line: they merge into one blob for a moment."""
        s, rng = self.spec, self.rng
        x = rng.uniform(0.2, 0.8) * s.width
        v1, v2 = self.speed(), self.speed()
        margin = 0.2 * s.height
        reach = s.line_y + margin  # distance from an edge to the line
        meet = t + reach / min(v1, v2)
        down = self.straight(meet - reach / v1, x, -margin, x + 0.06 * s.width, s.height + margin, v1)
        up = self.straight(meet - reach / v2, x + 0.1 * s.width, s.height + margin, x, -margin, v2)
        return [self.figure("counterflow", down), self.figure("counterflow", up)]


def make_scene(spec: SceneSpec | None = None, **changes: object) -> Scene:
    """Plan a scene and its ground truth; `changes` override SceneSpec fields."""
    spec = spec or SceneSpec()
    if changes:
        spec = SceneSpec(**{**spec.__dict__, **changes})
    walkers = _Planner(spec).plan()
    crossings = sorted(c for w in walkers for c in true_crossings(w, spec.line_y))
    return Scene(spec, walkers, crossings)


def scripted_scene(
    paths: list[list[tuple[float, float, float]]], spec: SceneSpec | None = None, heights: list[float] | None = None
) -> Scene:
    """People on the given paths of (t, x, y) centre points, high contrast: one case at a time, for tests."""
    spec = spec or SceneSpec(seconds=max(p[-1][0] for p in paths) + 1.0, noise=2.0, drift=0.0, occluder=False)
    planner = _Planner(SceneSpec(**{**spec.__dict__, "low_contrast_share": 0.0}))
    walkers = []
    for i, path in enumerate(paths):
        walker = planner.figure("scripted", path)
        if heights is not None:
            walker = Walker("scripted", walker.path, heights[i], heights[i] * 0.42, walker.torso, walker.legs, walker.head)
        walkers.append(walker)
    crossings = sorted(c for w in walkers for c in true_crossings(w, spec.line_y))
    return Scene(spec, walkers, crossings)


def simple_scene(directions: list[int], spec: SceneSpec | None = None) -> Scene:
    """One person at a time, well apart, high contrast: the clip where counts must be exact."""
    spec = spec or SceneSpec(seconds=4.0 + 4.5 * len(directions), noise=2.0, drift=0.0, occluder=False)
    planner = _Planner(spec)
    planner.spec = SceneSpec(**{**spec.__dict__, "low_contrast_share": 0.0, "fast_share": 0.0})
    walkers = []
    for i, direction in enumerate(directions):
        x = spec.width * (0.3 + 0.4 * (i % 2))
        walkers.append(planner.figure("cross", planner.crossing(1.5 + 4.5 * i, direction, x, spec.height * 0.4)))
    crossings = sorted(c for w in walkers for c in true_crossings(w, spec.line_y))
    return Scene(spec, walkers, crossings)


# -- rendering ----------------------------------------------------------------------------------


def _floor(spec: SceneSpec, rng: np.random.Generator) -> np.ndarray:
    """A textured floor: smooth blotches, tile joints and a few fixtures."""
    h, w = spec.height, spec.width
    blotches = cv2.resize(rng.normal(0, 1, (h // 16 + 2, w // 16 + 2, 3)).astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), 1.0)
    floor = 120 + 18 * blotches + 10 * grain
    tile = max(8, w // 10)
    floor[::tile, :, :] -= 25
    floor[:, ::tile, :] -= 25
    for _ in range(3):  # mats, fixtures
        x0, y0 = int(rng.integers(0, w - w // 6)), int(rng.integers(0, h - h // 6))
        colour = rng.uniform(60, 200, 3)
        cv2.rectangle(floor, (x0, y0), (x0 + w // 8, y0 + h // 10), colour.tolist(), -1)
    return np.clip(floor, 0, 255).astype(np.float32)


def _draw_person(canvas: np.ndarray, walker: Walker, cx: float, cy: float, walked: float) -> None:
    h, w = walker.height, walker.width
    top = cy - h / 2
    r = 0.12 * h
    hip = cy + 0.05 * h
    swing = 0.18 * w * np.sin(walked / (0.5 * h) * np.pi)
    leg_w = max(1, int(0.36 * w))
    for side in (-1, 1):
        x = cx + side * 0.2 * w + side * swing
        cv2.rectangle(canvas, (int(x - leg_w / 2), int(hip)), (int(x + leg_w / 2), int(cy + h / 2)), walker.legs, -1)
    cv2.ellipse(canvas, (int(cx), int((top + 2 * r + hip) / 2)), (int(w / 2), int((hip - top - 2 * r) / 2 + 2)), 0, 0, 360, walker.torso, -1)
    cv2.circle(canvas, (int(cx), int(top + r)), max(1, int(r)), walker.head, -1)


def _render(scene: Scene) -> Iterator[np.ndarray]:
    s = scene.spec
    rng = np.random.default_rng(s.seed + 1_000_003)
    floor = _floor(s, rng)
    noise_bank = [rng.normal(0, s.noise, (s.height, s.width, 3)).astype(np.float32) for _ in range(8)]
    sign = (int(0.3 * s.width), int(0.16 * s.height), int(0.7 * s.width), int(0.24 * s.height))
    for index in range(scene.frame_count):
        t = index / s.fps
        canvas = floor.copy()
        present = []
        for walker in scene.walkers:
            position = walker.position(t)
            if position is not None:
                present.append((position[1], walker, position))
        present.sort(key=lambda item: item[0])
        if s.shadows and present:
            shade = np.zeros((s.height, s.width), np.uint8)
            for _, walker, (x, y) in present:
                centre = (int(x + 0.35 * walker.width), int(y + 0.45 * walker.height))
                cv2.ellipse(shade, centre, (int(0.7 * walker.width), int(0.12 * walker.height)), 0, 0, 360, 255, -1)
            canvas[shade > 0] *= 0.6
        for _, walker, (x, y) in present:
            _draw_person(canvas, walker, x, y, walker.distance(t))
        if s.occluder:
            cv2.rectangle(canvas, sign[:2], sign[2:], (40, 90, 160), -1)
        for x0, y0, x1, y1 in s.screens:  # a screen or a swinging door: motion that is not people
            bar = int(0.35 * (y1 - y0))
            top = y0 + int((y1 - y0 - bar) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 3.0)))
            cv2.rectangle(canvas, (x0, y0), (x1, y1), (30, 30, 30), -1)
            cv2.rectangle(canvas, (x0, top), (x1, top + bar), (235, 235, 235), -1)
        gain = 1.0 + s.drift * np.sin(2 * np.pi * t / 45.0) + 0.01 * rng.standard_normal()
        frame = canvas * gain + noise_bank[int(rng.integers(0, len(noise_bank)))]
        yield np.clip(frame, 0, 255).astype(np.uint8)
