"""Line crossings and tracks on plain arrays: the direction rule and what stops double counts."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.footfall.counting import ENTRY, EXIT, Line, LineCounter
from edge_agent.footfall.tracker import Tracker

BAND = 10.0


def walk(counter: LineCounter, points: list[tuple[float, float]], track_id: int = 1, ready_after: int = 0) -> list[int]:
    """Feed one track's centres, one per frame; returns the directions counted."""
    directions = []
    for i, point in enumerate(points):
        crossings = counter.observe(track_id, point, i * 0.1, ready=i >= ready_after)
        directions += [c.direction for c in crossings]
    return directions


def straight(x0: float, y0: float, x1: float, y1: float, steps: int = 20) -> list[tuple[float, float]]:
    return [(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps) for k in range(steps + 1)]


def counter_for(line: tuple[float, float, float, float], **kwargs: float) -> LineCounter:
    return LineCounter(Line(*line), kwargs.get("band", BAND), kwargs.get("handover", 10.0), kwargs.get("radius", 40.0))


@pytest.mark.parametrize(
    ("line", "path", "expected"),
    [
        ((0, 240, 640, 240), straight(300, 100, 300, 400), [ENTRY]),  # the contract's example: down is in
        ((0, 240, 640, 240), straight(300, 400, 300, 100), [EXIT]),
        ((640, 240, 0, 240), straight(300, 100, 300, 400), [EXIT]),  # the same line drawn the other way
        ((320, 0, 320, 480), straight(500, 200, 100, 200), [ENTRY]),  # heading down the image: right hand is screen-left
        ((320, 0, 320, 480), straight(100, 200, 500, 200), [EXIT]),
        ((0, 0, 640, 480), straight(500, 100, 100, 400), [ENTRY]),  # diagonal: to the lower left is its right
    ],
)
def test_direction_rule(line: tuple[float, float, float, float], path: list[tuple[float, float]], expected: list[int]) -> None:
    assert walk(counter_for(line), path) == expected


def test_signed_distance_is_positive_on_the_entry_side() -> None:
    line = Line(0, 240, 640, 240)
    assert list(line.signed_distance(np.array([[10, 250], [10, 230], [10, 240]]))) == [10, -10, 0]


def test_someone_standing_on_the_line_is_not_counted_again_and_again() -> None:
    counter = counter_for((0, 240, 640, 240))
    rng = np.random.default_rng(3)
    approach = straight(300, 100, 300, 236)
    linger = [(300 + rng.normal(0, 2), 240 + 8 * np.sin(k / 3)) for k in range(300)]  # across the line, inside the band
    back = straight(300, 236, 300, 100)
    assert walk(counter, approach + linger + back) == []
    assert (counter.entries, counter.exits) == (0, 0)


def test_in_and_straight_back_out_counts_both() -> None:
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, straight(300, 100, 300, 300) + straight(300, 300, 300, 100)) == [ENTRY, EXIT]


def test_crossing_outside_the_segment_is_not_counted() -> None:
    counter = counter_for((200, 240, 400, 240))  # a door in the middle of the image
    assert walk(counter, straight(100, 100, 100, 400)) == []
    assert walk(counter, straight(300, 100, 300, 400), track_id=2) == [ENTRY]


def test_a_crossing_waits_for_the_track_to_be_confirmed_then_counts_once() -> None:
    counter = counter_for((0, 240, 640, 240))
    fast = [(300, 200), (300, 290), (300, 380), (300, 470)]  # crosses between its first two frames
    assert walk(counter, fast, ready_after=3) == [ENTRY]


def test_a_flicker_blob_that_never_gets_confirmed_never_counts() -> None:
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, [(300, 200), (300, 280)], ready_after=99) == []
    counter.lost(1, 0.3)
    assert (counter.entries, counter.exits) == (0, 0)


def test_jitter_back_before_confirmation_cancels_out() -> None:
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, [(300, 200), (300, 280), (300, 200), (300, 190), (300, 180)], ready_after=4) == []


def test_track_lost_on_the_line_hands_its_side_to_the_next_one() -> None:
    """An ID switch at the line: the person is counted once, neither missed nor doubled."""
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, straight(300, 100, 300, 238)) == []
    counter.lost(1, 2.0)
    assert walk(counter, straight(302, 241, 302, 400), track_id=2) == [ENTRY]
    counter.lost(2, 4.0)
    assert walk(counter, straight(305, 400, 305, 420), track_id=3) == []  # reborn far from the line: nothing more


def test_handover_expires() -> None:
    counter = counter_for((0, 240, 640, 240), handover=1.0)
    walk(counter, straight(300, 100, 300, 238))
    counter.lost(1, 0.0)
    directions = []
    for i, point in enumerate(straight(302, 241, 302, 400)):
        directions += [c.direction for c in counter.observe(2, point, 5.0 + i * 0.1, ready=True)]
    assert directions == []


def test_a_track_split_off_a_merged_blob_counts_the_crossing_it_made_inside_it() -> None:
    counter = counter_for((0, 240, 640, 240))
    walk(counter, straight(300, 400, 300, 300), track_id=1)  # the pair, below the line
    directions = []
    for i, point in enumerate(straight(300, 200, 300, 100, steps=5)):  # one of them parts above it
        crossings = counter.observe(2, point, 3.0 + i * 0.1, ready=i >= 2, parent=1 if i == 0 else None)
        directions += [c.direction for c in crossings]
    assert directions == [EXIT]


def test_a_vetoed_track_never_counts() -> None:
    counter = counter_for((0, 240, 640, 240))
    counter.observe(1, (300, 100), 0.0, ready=False)
    counter.veto(1)
    assert walk(counter, straight(300, 100, 300, 400)) == []


# -- the tracker --------------------------------------------------------------------------------


def box(x: float, y: float, w: float = 20, h: float = 50) -> list[float]:
    return [x, y, w, h]


def run_tracker(frames: list[list[list[float]]], fps: float = 10.0, **kwargs: float) -> tuple[Tracker, list[set[int]]]:
    tracker = Tracker(int(kwargs.get("min_hits", 3)), kwargs.get("coast", 1.0))
    seen = []
    for i, dets in enumerate(frames):
        update = tracker.update(np.array(dets).reshape(-1, 4), i / fps)
        seen.append({t.track_id for t in update.observed})
    return tracker, seen


def test_flicker_keeps_one_identity() -> None:
    frames = [[box(100, 20 + 10 * i)] if i % 4 != 2 else [] for i in range(30)]
    _, seen = run_tracker(frames)
    assert set().union(*seen) == {1}


def test_a_fast_walker_keeps_one_identity() -> None:
    frames = [[box(100, 10 + 35 * i)] for i in range(12)]  # 35 px a frame, more than half a body
    _, seen = run_tracker(frames)
    assert set().union(*seen) == {1}


def test_two_people_merging_for_a_moment_keep_their_identities() -> None:
    frames = []
    for i in range(24):
        down, up = 20 + 15 * i, 380 - 15 * i
        if abs(down - up) < 60:  # one blob while they pass
            frames.append([[100, (down + up) / 2, 24, 50 + abs(down - up)]])
        else:
            frames.append([box(100, down), box(104, up)])
    tracker, seen = run_tracker(frames)
    assert set().union(*seen) == {1, 2}
    by_id = {t.track_id: t for t in tracker.tracks}
    assert by_id[1].y > 300 and by_id[2].y < 100  # each went on its own way


def test_pieces_of_one_person_start_no_second_track() -> None:
    frames = [[box(100, 20 + 10 * i), box(100, 20 + 10 * i + 15, 10, 12)] for i in range(10)]
    _, seen = run_tracker(frames)
    assert set().union(*seen) == {1}


def test_a_track_without_detections_ends_after_coasting() -> None:
    tracker = Tracker(3, 0.5)
    tracker.update(np.array([box(100, 100)]), 0.0)
    assert tracker.update(np.zeros((0, 4)), 0.4).lost == []
    lost = tracker.update(np.zeros((0, 4)), 0.6).lost
    assert [t.track_id for t in lost] == [1]
