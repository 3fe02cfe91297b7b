"""The counter on scenes built one hard case at a time: couples, merges and partings, standing on the line,
leaving the picture just past it, motion that is not people, and real footage with a hand count."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from edge_agent.footfall import CameraSettings, FootfallPipeline, FootfallResult, FramesReader
from edge_agent.footfall.evaluation import TruthLine, load_truth, score_line
from edge_agent.footfall.synthetic import Scene, SceneSpec, scripted_scene

VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")  # Debian package opencv-doc (make test installs it)
TRUTH = Path(__file__).resolve().parents[2] / "benchmarks" / "truth" / "vtest.json"
SPEED = 84.0  # pixels per second: a third of the 240-pixel frame's height


def walk(t0: float, x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, float, float]]:
    return [(t0, x0, y0), (t0 + math.hypot(x1 - x0, y1 - y0) / SPEED, x1, y1)]


def stop_and_go(x: float, stop_y: float, wait: float, end_y: float) -> list[tuple[float, float, float]]:
    path = walk(1.0, x, -40, x, stop_y)
    still = path[-1][0] + wait
    return path + [(still, x, stop_y)] + walk(still, x, stop_y, x, end_y)[1:]


def quiet(seconds: float, **changes: object) -> SceneSpec:
    return SceneSpec(seconds=seconds, noise=2.0, drift=0.0, occluder=False, **changes)  # type: ignore[arg-type]


def count(scene: Scene, **settings: object) -> FootfallResult:
    frames = list(scene.frames())
    line = settings.pop("line", scene.spec.line)
    pipeline = FootfallPipeline(CameraSettings(line=line, **settings), lambda: FramesReader(frames, scene.spec.fps))  # type: ignore[arg-type]
    return pipeline.run()


def true_frames(scene: Scene, direction: int) -> list[int]:
    return [round(t * scene.spec.fps) for t, d in scene.crossings if d == direction]


def test_a_couple_side_by_side_is_two_people() -> None:
    scene = scripted_scene([walk(1.0, 140, -40, 140, 290), walk(1.0, 167, -40, 167, 290)], quiet(6), heights=[62, 62])
    result = count(scene)
    assert (scene.entries, scene.exits) == (2, 0)
    assert (result.entries, result.exits) == (2, 0)
    crossings = [c for c in result.crossings if c["direction"] == "entry"]
    assert len({c["track"] for c in crossings}) == 2
    assert all(abs(int(c["frame"]) - f) <= 15 for c, f in zip(crossings, true_frames(scene, 1)))


def test_three_who_meet_cross_as_one_blob_and_part_count_three_times() -> None:
    paths = [
        [(1.0, 60, -40), (2.0, 140, 60), (3.0, 145, 180), (4.0, 60, 300)],
        [(1.0, 160, -40), (2.0, 160, 60), (3.0, 165, 180), (4.0, 165, 300)],
        [(1.0, 260, -40), (2.0, 180, 60), (3.0, 185, 180), (4.0, 270, 300)],
    ]
    result = count(scripted_scene(paths, quiet(6), heights=[60, 62, 58]))
    assert (result.entries, result.exits) == (3, 0)
    assert len({c["track"] for c in result.crossings}) == 3  # three people, not one counted three times


def test_two_passing_head_on_at_the_line_count_one_each_way() -> None:
    scene = scripted_scene([walk(1.0, 150, -40, 158, 290), walk(1.0, 160, 290, 152, -40)], quiet(6), heights=[62, 64])
    result = count(scene)
    assert (result.entries, result.exits) == (scene.entries, scene.exits) == (1, 1)


def test_standing_on_the_line_until_taken_into_the_background_then_walking_on_counts_once() -> None:
    """The background takes in someone still within about a tenth of background_seconds (2 s here)."""
    scene = scripted_scene([stop_and_go(160, 118, 6.0, 290)], quiet(13), heights=[60])
    result = count(scene, background_seconds=20.0)
    assert (scene.entries, scene.exits) == (1, 0)
    assert (result.entries, result.exits) == (1, 0)


def test_standing_on_the_line_then_turning_back_counts_nothing() -> None:
    scene = scripted_scene([stop_and_go(160, 117, 6.0, -40)], quiet(13), heights=[60])
    result = count(scene, background_seconds=20.0)
    assert (scene.entries, scene.exits) == (0, 0)
    assert (result.entries, result.exits) == (0, 0)


def test_leaving_the_picture_just_past_the_line_counts() -> None:
    """The line 12 px from the bottom edge: the dead band reaches out of the picture, so only the track's end tells."""
    scene = scripted_scene([walk(1.0, 160, -40, 160, 300)], quiet(6), heights=[60])
    result = count(scene, line=(0, 228, 320, 228))
    assert (result.entries, result.exits) == (1, 0)
    assert abs(int(result.crossings[0]["frame"]) - round((1.0 + 268 / SPEED) * scene.spec.fps)) <= 15


def test_a_mask_over_a_screen_stops_its_motion_counting_and_nothing_else() -> None:
    screen = (240, 60, 300, 180)  # a bar sweeps up and down over the line, like a display or a swinging door
    scene = scripted_scene([walk(1.0, 100, -40, 100, 290)], quiet(8, screens=(screen,)), heights=[60])
    unmasked = count(scene)
    assert unmasked.entries + unmasked.exits > 1  # the screen's motion is taken for people
    masked = count(scene, masks=[[[236, 56], [304, 56], [304, 184], [236, 184]]])
    assert (masked.entries, masked.exits) == (1, 0)
    assert masked.crossings[0]["frame"] == pytest.approx(true_frames(scene, 1)[0], abs=15)


def vtest_frames(first: int) -> Iterator[np.ndarray]:
    """vtest.avi from frame `first` on, decoded one at a time (the frames before are grabbed, not decoded)."""
    capture = cv2.VideoCapture(str(VTEST))
    index = 0
    try:
        while capture.grab():
            if index >= first:
                ok, frame = capture.retrieve()
                if ok:
                    yield frame
            index += 1
    finally:
        capture.release()


@pytest.mark.parametrize("name", ["path-west", "plaza-diagonal"])
def test_real_footage_every_crossing_right_on_a_hand_checked_slice(name: str) -> None:
    """The last 15 s of OpenCV's pedestrian sample: a head-on pass at the line, a man standing on it, a group."""
    assert VTEST.is_file(), f"{VTEST} is missing: install the Debian package opencv-doc (make test does)"
    first = 640
    line = next(line for line in load_truth(TRUTH) if line.name == name)
    result = FootfallPipeline(CameraSettings(line=line.segment), lambda: FramesReader(vtest_frames(first), 10.0)).run()
    counted = [{**c, "frame": int(c["frame"]) + first} for c in result.crossings]
    truth = TruthLine(name, line.segment, tuple((f, d) for f, d in line.crossings if f >= first + 5))
    scores = score_line(counted, truth)
    assert scores["both"].truth >= 8
    assert scores["both"].f1 >= 0.9, scores
