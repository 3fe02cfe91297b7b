"""The footfall pipeline on generated videos: counts against ground truth, a camera that drops, buckets in the store."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from edge_agent.footfall import CameraSettings, FootfallPipeline, FootfallStorage, FramesReader
from edge_agent.footfall.source import CameraDropped
from edge_agent.footfall.synthetic import Scene, SceneSpec, make_scene, simple_scene
from edge_agent.store_db import open_store_db
from models.store_data import load_store_data

START = datetime(2025, 6, 2, 9, 59, 45)  # the clips run across a bucket and an hour boundary


@pytest.fixture(scope="module")
def simple(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scene, Path]:
    scene = simple_scene([1, -1, 1, 1, -1, 1])
    return scene, scene.write(tmp_path_factory.mktemp("video") / "simple.avi")


@pytest.fixture(scope="module")
def busy(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scene, Path]:
    scene = make_scene(SceneSpec(seconds=120, seed=2, people_per_minute=30))
    return scene, scene.write(tmp_path_factory.mktemp("video") / "busy.avi")


def settings_for(scene: Scene, **changes: object) -> CameraSettings:
    return CameraSettings(line=scene.spec.line, **changes)  # type: ignore[arg-type]


def within(got: int, truth: int, share: float) -> bool:
    return abs(got - truth) <= share * truth


def test_simple_clip_is_counted_exactly(simple: tuple[Scene, Path]) -> None:
    scene, video = simple
    result = FootfallPipeline(settings_for(scene), str(video), start=START).run()
    assert (scene.entries, scene.exits) == (4, 2)
    assert (result.entries, result.exits) == (scene.entries, scene.exits)
    assert result.frames > 0 and result.fps > 0 and result.state == "ended"


def test_drawing_the_line_the_other_way_swaps_entries_and_exits(simple: tuple[Scene, Path]) -> None:
    scene, video = simple
    x1, y1, x2, y2 = scene.spec.line
    result = FootfallPipeline(CameraSettings(line=(x2, y2, x1, y1)), str(video), start=START).run()
    assert (result.entries, result.exits) == (scene.exits, scene.entries)


def test_line_is_in_source_pixels_whatever_the_resize(simple: tuple[Scene, Path]) -> None:
    scene, video = simple
    result = FootfallPipeline(settings_for(scene, resize_width=160), str(video), start=START).run()
    assert (result.entries, result.exits) == (scene.entries, scene.exits)


def test_busy_scene_within_ten_percent(busy: tuple[Scene, Path]) -> None:
    """Groups, head-on passes at the line, lingerers, fast walkers, drift, noise, occlusion."""
    scene, video = busy
    kinds = {w.kind for w in scene.walkers}
    assert {"group", "counterflow", "linger", "pass", "cross"} <= kinds
    assert scene.entries >= 20 and scene.exits >= 20
    result = FootfallPipeline(settings_for(scene), str(video), start=START).run()
    assert within(result.entries, scene.entries, 0.10), (result.entries, scene.entries)
    assert within(result.exits, scene.exits, 0.10), (result.exits, scene.exits)


def test_another_busy_scene_with_knn_within_ten_percent() -> None:
    scene = make_scene(SceneSpec(seconds=60, seed=3, people_per_minute=40))
    frames = list(scene.frames())
    result = FootfallPipeline(
        settings_for(scene, subtractor="knn"), lambda: FramesReader(frames, scene.spec.fps), start=START
    ).run()
    assert within(result.entries, scene.entries, 0.10), (result.entries, scene.entries)
    assert within(result.exits, scene.exits, 0.10), (result.exits, scene.exits)


def test_buckets_occupancy_dwell_and_queue_land_in_the_store(simple: tuple[Scene, Path], tmp_path: Path) -> None:
    scene, video = simple
    w, h = scene.spec.width, scene.spec.height
    zone = ((0, 0), (w, 0), (w, h), (0, h))  # the whole view: everyone seen is in the queue
    db = tmp_path / "store-01.db"
    with open_store_db(db) as store:
        result = FootfallPipeline(
            settings_for(scene, queue_zone=zone, bucket_seconds=60), str(video), storage=FootfallStorage(store), start=START
        ).run()
    rows = sqlite3.connect(db).execute(
        "SELECT bucket_start, bucket_seconds, entries, exits, frames, occupancy, dwell_tracks, queue_max"
        " FROM footfall WHERE source = 'camera:door' ORDER BY bucket_start"
    ).fetchall()
    assert len(rows) >= 2 and all(r[1] == 60 and r[0] % 60 == 0 for r in rows)
    assert sum(r[2] for r in rows) == scene.entries and sum(r[3] for r in rows) == scene.exits
    assert sum(r[4] for r in rows) == result.frames
    assert rows[-1][5] == scene.entries - scene.exits == result.occupancy
    assert sum(r[6] for r in rows) == len(scene.walkers)  # one dwell time per person
    assert max(r[7] for r in rows) >= 1
    histogram = sqlite3.connect(db).execute("SELECT sum(tracks) FROM footfall_dwell").fetchone()[0]
    assert histogram == len(scene.walkers)
    hourly = load_store_data(db).footfall  # what the churn model reads
    assert hourly.entries.sum() == scene.entries and set(hourly.start % 3600) == {0}


def test_a_restart_in_the_middle_of_a_bucket_adds_up(simple: tuple[Scene, Path], tmp_path: Path) -> None:
    scene, video = simple
    db = tmp_path / "s.db"
    for _ in range(2):  # the same clip twice at the same times: each run adds its own counts
        with open_store_db(db) as store:
            FootfallPipeline(settings_for(scene), str(video), storage=FootfallStorage(store), start=START).run()
    entries, exits = sqlite3.connect(db).execute("SELECT sum(entries), sum(exits) FROM footfall").fetchone()
    assert (entries, exits) == (2 * scene.entries, 2 * scene.exits)


class FlakyCamera:
    """A live camera that drops after `drop_at` frames and refuses `refusals` reopen attempts."""

    def __init__(self, frames: list[np.ndarray], fps: float, drop_at: int, refusals: int):
        self.reader = FramesReader(frames, fps)
        self.drop_at, self.refusals, self.opens = drop_at, refusals, 0

    def open(self) -> FlakyCamera:
        self.opens += 1
        if 1 < self.opens <= 1 + self.refusals:
            raise CameraDropped("camera unreachable")
        return self

    def grab(self) -> float | None:
        if self.reader.index + 1 == self.drop_at and self.opens == 1:
            raise CameraDropped("stream lost")
        return self.reader.grab()

    def retrieve(self) -> np.ndarray:
        return self.reader.retrieve()

    def close(self) -> None:
        pass


def test_a_camera_that_drops_is_reopened_with_backoff_and_the_gap_recorded(simple: tuple[Scene, Path], tmp_path: Path) -> None:
    scene, _ = simple
    frames = list(scene.frames())
    quiet = int(scene.walkers[1].path[0][0] * scene.spec.fps) - 3  # between two people
    camera = FlakyCamera(frames, scene.spec.fps, drop_at=quiet, refusals=3)
    states: list[str] = []
    settings = settings_for(scene, reconnect_initial_seconds=0.02, reconnect_max_seconds=0.05)
    with open_store_db(tmp_path / "s.db") as store:
        pipeline = FootfallPipeline(
            settings, camera.open, live=True, storage=FootfallStorage(store), on_status=lambda s: states.append(s.state)
        )
        result = pipeline.run()
    assert camera.opens == 5
    changes = [state for i, state in enumerate(states) if i == 0 or states[i - 1] != state]
    assert changes == ["streaming", "reconnecting", "streaming", "ended"]
    assert [g.reason for g in result.gaps] == ["stream lost"]
    assert 0.02 + 0.04 <= result.gaps[0].seconds < 5
    assert (result.entries, result.exits) == (scene.entries, scene.exits)
    conn = sqlite3.connect(tmp_path / "s.db")
    assert conn.execute("SELECT reason FROM camera_gaps").fetchall() == [("stream lost",)]
    assert conn.execute("SELECT state, gaps FROM camera_status").fetchone() == ("ended", 1)
    assert conn.execute("SELECT sum(gap_seconds) FROM footfall").fetchone()[0] > 0


def test_a_source_that_is_missing_then_appears_is_picked_up(simple: tuple[Scene, Path], tmp_path: Path) -> None:
    """A live source read through OpenCV: absent at start (a recorder not up yet), then there."""
    from edge_agent.footfall.source import OpenCvReader, SourceSpec

    scene, video = simple
    late = tmp_path / "late.avi"
    settings = settings_for(scene, reconnect_initial_seconds=0.05, reconnect_max_seconds=0.2)
    pipeline = FootfallPipeline(settings, lambda: OpenCvReader(SourceSpec(str(late), "file")), live=True)
    results: list = []  # type: ignore[type-arg]
    runner = threading.Thread(target=lambda: results.append(pipeline.run()))
    runner.start()
    time.sleep(0.3)
    assert pipeline.status.state == "reconnecting" and pipeline.status.frames == 0
    late.write_bytes(video.read_bytes())
    runner.join(60)
    result = results[0]
    assert result.state == "ended"
    assert len(result.gaps) == 1 and result.gaps[0].reason == f"cannot open {late}"
    assert result.gaps[0].seconds >= 0.25
    assert (result.entries, result.exits) == (scene.entries, scene.exits)


def test_stop_event_ends_a_live_run_and_writes_what_was_counted(simple: tuple[Scene, Path], tmp_path: Path) -> None:
    scene, _ = simple

    frames = list(scene.frames())

    def endless() -> FramesReader:
        return FramesReader((frames[i % len(frames)] for i in range(10**9)), scene.spec.fps)

    stop = threading.Event()
    with open_store_db(tmp_path / "s.db") as store:
        pipeline = FootfallPipeline(settings_for(scene), endless, live=True, stop=stop, storage=FootfallStorage(store))
        threading.Timer(1.0, stop.set).start()
        result = pipeline.run()
    assert result.state == "stopped" and result.frames > 10
    stored = sqlite3.connect(tmp_path / "s.db").execute("SELECT sum(frames) FROM footfall").fetchone()[0]
    assert stored == result.frames


def test_bad_frames_are_skipped_not_fatal(simple: tuple[Scene, Path]) -> None:
    scene, _ = simple
    frames = list(scene.frames())
    frames[40] = np.zeros((0, 0, 3), np.uint8)  # a decoder hiccup
    result = FootfallPipeline(settings_for(scene, fps_budget=15), lambda: FramesReader(frames, scene.spec.fps)).run()
    assert result.bad_frames == 1 and result.state == "ended"
    assert (result.entries, result.exits) == (scene.entries, scene.exits)


def test_hog_vetoes_a_blob_that_is_not_a_person() -> None:
    """A tall box sliding across the line (a trolley, a cart) counts unless HOG is asked."""
    rng = np.random.default_rng(0)
    floor = rng.integers(90, 130, (480, 640, 3)).astype(np.uint8)
    frames = []
    for i in range(120):
        frame = floor.copy()
        y = -180 + 12 * (i - 30)  # comes in once the empty floor is learnt
        frame[max(0, y) : max(0, y + 180), 280:360] = (40, 200, 230)
        frames.append(frame)
    counts = {}
    for hog in (False, True):
        settings = CameraSettings(line=(0, 240, 640, 240), hog_confirm=hog, hog_min_height=128, fps_budget=30)
        result = FootfallPipeline(settings, lambda: FramesReader(frames, 15.0)).run()
        counts[hog] = (result.entries, result.exits)
    assert counts == {False: (1, 0), True: (0, 0)}
