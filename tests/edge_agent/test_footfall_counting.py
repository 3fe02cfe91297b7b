"""Line crossings and tracks on plain arrays: the direction rule, the segment, the moment, and what stops double counts."""

from __future__ import annotations

import numpy as np
import pytest

from edge_agent.footfall.counting import ENTRY, EXIT, Line, LineCounter
from edge_agent.footfall.detector import COLOUR_FEATURES, Blobs
from edge_agent.footfall.tracker import Tracker

BAND = 10.0


def walk(
    counter: LineCounter, points: list[tuple[float, float]], track_id: int = 1, ready_after: int = 0, start: int = 0
) -> list[int]:
    """Feed one track's centres, one per frame (frame = start + i); returns the directions counted."""
    directions = []
    for i, point in enumerate(points):
        crossings = counter.observe(track_id, point, (start + i) * 0.1, ready=i >= ready_after, frame=start + i)
        directions += [c.direction for c in crossings]
    return directions


def straight(x0: float, y0: float, x1: float, y1: float, steps: int = 20) -> list[tuple[float, float]]:
    return [(x0 + (x1 - x0) * k / steps, y0 + (y1 - y0) * k / steps) for k in range(steps + 1)]


def counter_for(line: tuple[float, float, float, float], band: float = BAND) -> LineCounter:
    return LineCounter(Line(*line), band)


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
    assert line.distance_of(10, 250) == 10


def test_a_crossing_carries_the_frame_at_which_the_centre_was_on_the_line() -> None:
    counter = counter_for((0, 240, 640, 240))
    crossings = []
    for i, y in enumerate(range(100, 400, 20)):  # on the line between frames 7 (y=240) and later
        crossings += counter.observe(1, (300, y), i * 0.1, ready=True, frame=100 + i)
    assert [(c.direction, c.frame) for c in crossings] == [(ENTRY, 107)]
    assert crossings[0].t == pytest.approx(0.7)


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


def test_only_a_passage_between_the_segments_ends_counts() -> None:
    counter = counter_for((200, 240, 400, 240))  # a door in the middle of the image
    assert walk(counter, straight(100, 100, 100, 400)) == []
    assert walk(counter, straight(300, 100, 300, 400), track_id=2) == [ENTRY]
    around = straight(300, 100, 450, 200) + straight(450, 200, 450, 300) + straight(450, 300, 300, 400)
    assert walk(counter, around, track_id=3) == []  # round the door's end, not through it


def test_a_crossing_waits_for_the_track_to_be_confirmed_then_counts_once() -> None:
    counter = counter_for((0, 240, 640, 240))
    fast = [(300, 200), (300, 290), (300, 380), (300, 470)]  # crosses between its first two frames
    assert walk(counter, fast, ready_after=3) == [ENTRY]


def test_a_flicker_blob_that_never_gets_confirmed_never_counts() -> None:
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, [(300, 200), (300, 280)], ready_after=99) == []
    assert counter.finish(1) == []
    assert (counter.entries, counter.exits) == (0, 0)


def test_jitter_back_before_confirmation_cancels_out() -> None:
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, [(300, 200), (300, 280), (300, 200), (300, 190), (300, 180)], ready_after=4) == []


def test_leaving_the_picture_just_past_the_line_counts_when_the_track_ends() -> None:
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, straight(300, 100, 300, 246, steps=15)) == []  # past the line, still inside the band
    crossings = counter.finish(1)
    assert [(c.direction, c.frame) for c in crossings] == [(ENTRY, 14)]


def test_a_track_that_ends_on_the_line_or_back_where_it_came_from_counts_nothing() -> None:
    counter = counter_for((0, 240, 640, 240))
    walk(counter, straight(300, 100, 300, 241, steps=15))  # one pixel past: on the line, not past it
    assert counter.finish(1) == []
    walk(counter, straight(300, 100, 300, 246) + straight(300, 246, 300, 232), track_id=2)
    assert counter.finish(2) == []


def test_where_a_shared_blob_put_a_track_is_a_guess_and_decides_nothing_at_its_end() -> None:
    counter = counter_for((0, 240, 640, 240))
    walk(counter, straight(300, 100, 300, 236, steps=15))
    counter.observe(1, (300, 246), 1.6, ready=True, frame=16, shared=True)
    assert counter.finish(1) == []


def test_a_vetoed_track_never_counts() -> None:
    counter = counter_for((0, 240, 640, 240))
    counter.observe(1, (300, 100), 0.0, ready=False)
    counter.veto(1)
    assert walk(counter, straight(300, 100, 300, 400)) == []


# -- partings: who made a crossing two people made as one blob -----------------------------------


def test_two_who_crossed_as_one_blob_and_part_past_the_line_count_twice() -> None:
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, straight(300, 100, 300, 300)) == [ENTRY]  # the pair, one blob, one track
    counter.part(2, (330, 305), parent=1, parent_point=(300, 310), t=2.1, frame=21)
    directions = walk(counter, straight(330, 305, 330, 400, steps=5), track_id=2, start=21)
    assert directions == [ENTRY]


def test_when_only_the_new_track_is_past_the_line_the_crossing_was_its_own() -> None:
    """A walker passing someone who waits at the line: counted once, and the one waiting never."""
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, straight(300, 100, 300, 270)) == [ENTRY]  # one blob: walker and waiter
    counter.part(2, (300, 300), parent=1, parent_point=(300, 236), t=2.1, frame=21)
    assert walk(counter, straight(300, 236, 300, 232, steps=4), start=21) == []  # the waiter stays
    assert walk(counter, straight(300, 300, 300, 400, steps=5), track_id=2, start=21) == []  # already counted
    assert walk(counter, straight(300, 232, 300, 100, steps=5), start=26) == []  # the waiter goes back: nothing
    assert (counter.entries, counter.exits) == (1, 0)


def test_a_new_track_that_walks_back_over_the_line_was_not_part_of_the_crossing() -> None:
    counter = counter_for((0, 240, 640, 240))
    assert walk(counter, straight(300, 100, 300, 300)) == [ENTRY]
    counter.part(2, (330, 280), parent=1, parent_point=(300, 310), t=2.1, frame=21)
    assert walk(counter, straight(330, 280, 330, 100, steps=8), track_id=2, start=21) == [EXIT]  # its own way: up


# -- the tracker -------------------------------------------------------------------------------


def box(x: float, y: float, w: float = 20, h: float = 50) -> list[float]:
    return [x, y, w, h]


def blobs(boxes: list[list[float]], colours: list[list[float]] | None = None, people: list[float] | None = None) -> Blobs:
    n = len(boxes)
    return Blobs(
        np.array(boxes, dtype=float).reshape(-1, 4),
        np.array(colours if colours is not None else [[0.5] * COLOUR_FEATURES] * n, dtype=float).reshape(-1, COLOUR_FEATURES),
        np.arange(n),
        np.array(people if people is not None else [1.0] * n, dtype=float),
        np.ones(n),
    )


def run_tracker(frames: list[Blobs], fps: float = 10.0, **kwargs: float) -> tuple[Tracker, list[set[int]]]:
    tracker = Tracker(int(kwargs.get("min_hits", 3)), kwargs.get("coast", 1.0), kwargs.get("reid", 10.0))
    seen = []
    for i, frame in enumerate(frames):
        update = tracker.update(frame, i / fps)
        seen.append({t.track_id for t in update.observed})
    return tracker, seen


def test_flicker_keeps_one_identity() -> None:
    frames = [blobs([box(100, 20 + 10 * i)] if i % 4 != 2 else []) for i in range(30)]
    _, seen = run_tracker(frames)
    assert set().union(*seen) == {1}


def test_a_fast_walker_keeps_one_identity() -> None:
    frames = [blobs([box(100, 10 + 35 * i)]) for i in range(12)]  # 35 px a frame, more than half a body
    _, seen = run_tracker(frames)
    assert set().union(*seen) == {1}


def test_two_people_passing_head_on_keep_their_identities_through_the_merge() -> None:
    frames = []
    for i in range(24):
        down, up = 20 + 15 * i, 380 - 15 * i
        if abs(down - up) < 60:  # one blob while they pass
            frames.append(blobs([[100, (down + up) / 2, 24, 50 + abs(down - up)]]))
        else:
            frames.append(blobs([box(100, down), box(104, up)]))
    tracker, seen = run_tracker(frames)
    assert set().union(*seen) == {1, 2}
    by_id = {t.track_id: t for t in tracker.tracks}
    assert by_id[1].y > 300 and by_id[2].y < 100  # each went on its own way


def test_tracks_never_pile_up_on_one_person() -> None:
    """Three walk together as one blob, part, and each keeps to one person: no two tracks on the same one."""
    frames = []
    for i in range(30):
        xs = [100, 130, 160] if 10 <= i < 20 else [40, 130, 220]
        y = 20 + 10 * i
        if 10 <= i < 20:
            frames.append(blobs([[130, y, 90, 50]], people=[3.0]))
        else:
            frames.append(blobs([box(x, y) for x in xs]))
    tracker, seen = run_tracker(frames)
    positions = sorted(round(t.x) for t in tracker.tracks if t.observed)
    assert positions == [40, 130, 220]


def test_a_blob_the_size_of_one_person_cannot_hide_a_second_track() -> None:
    frames = [blobs([box(100, 20 + 10 * i), box(160, 20 + 10 * i)]) for i in range(6)]
    frames += [blobs([box(130, 80 + 10 * i)], people=[1.0]) for i in range(6)]  # one person's blob where both were
    tracker, _ = run_tracker(frames, coast=0.3)
    assert sum(1 for t in tracker.tracks if t.shared) == 0


def test_pieces_of_one_person_start_no_second_track() -> None:
    frames = [blobs([box(100, 20 + 10 * i), box(100, 20 + 10 * i + 15, 10, 12)]) for i in range(10)]
    _, seen = run_tracker(frames)
    assert set().union(*seen) == {1}


def test_a_track_without_detections_coasts_then_waits_to_be_found_then_is_given_up() -> None:
    tracker = Tracker(3, 0.5, 2.0)
    for i in range(4):
        tracker.update(blobs([box(100, 100)]), i * 0.1)
    assert tracker.update(blobs([]), 0.7).gone == []
    assert [t.track_id for t in tracker.lost] == [] and tracker.update(blobs([]), 0.9).gone == []
    assert [t.track_id for t in tracker.lost] == [1]  # lost, not yet given up
    assert [t.track_id for t in tracker.update(blobs([]), 3.0).gone] == [1]


def test_someone_found_again_where_they_stood_with_the_same_colours_keeps_their_identity() -> None:
    red, grey = [0.2, 0.2, 0.8] * 2, [0.5] * COLOUR_FEATURES
    frames = [blobs([box(100, 100 + 5 * i)], [red]) for i in range(6)]  # walks up to the line and stands
    frames += [blobs([]) for _ in range(30)]  # faded into the background for 3 s
    frames += [blobs([box(102, 130)], [grey])]  # a ghost where they stood: other colours
    frames += [blobs([box(102, 130), box(100, 132 + 5 * i)], [grey, red]) for i in range(1, 4)]
    tracker, seen = run_tracker(frames)
    assert 1 in seen[-1]
    assert {t.track_id: round(t.y) for t in tracker.tracks}[1] > 132


def test_two_walking_together_longer_than_a_coast_keep_both_identities() -> None:
    """Side by side as one blob for 2 s (the coast is 1 s): each is held inside it, not lost, and parts as itself."""
    frames = [blobs([box(100, 20 + 10 * i), box(140, 20 + 10 * i)]) for i in range(5)]
    frames += [blobs([[120, 70 + 10 * i, 60, 50]], people=[2.0]) for i in range(20)]
    frames += [blobs([box(100, 270 + 10 * i), box(140, 270 + 10 * i)]) for i in range(5)]
    tracker, seen = run_tracker(frames)
    assert all(ids == {1, 2} for ids in seen[6:25])  # both seen all along, each at its own place in the blob
    assert seen[-1] == {1, 2}
    by_id = {t.track_id: t for t in tracker.tracks}
    assert round(by_id[1].x) == 100 and round(by_id[2].x) == 140
