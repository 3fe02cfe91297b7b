"""`edge-agent footfall` as an operator runs it, and the store database it fills."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_agent import store_db
from edge_agent.footfall.buckets import Bucket
from edge_agent.footfall.storage import FootfallStorage
from edge_agent.footfall.synthetic import Scene, simple_scene
from edge_agent.store_db import open_store_db
from tests.conftest import run_cli, run_json

PROFILE = Path(__file__).resolve().parents[2] / "edge_agent" / "profiles" / "rpi4.toml"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Scene, Path]:
    scene = simple_scene([1, 1, -1])
    return scene, scene.write(tmp_path_factory.mktemp("clip") / "door.avi")


def line_of(scene: Scene) -> str:
    return ",".join(f"{v:g}" for v in scene.spec.line)


def test_json_has_the_contract_keys_and_buckets_in_the_database(clip: tuple[Scene, Path], tmp_path: Path) -> None:
    scene, video = clip
    db = tmp_path / "paris-01.db"
    report = run_json("edge-agent", "footfall", "--source", str(video), "--line", line_of(scene), "--db", str(db),
                      "--start", "2025-11-20T09:59:50")
    assert (report["entries"], report["exits"]) == (scene.entries, scene.exits)
    assert report["frames"] > 0 and report["fps"] > 0
    starts = [b["bucket_start"] for b in report["buckets"]]
    assert starts == ["2025-11-20T09:55:00", "2025-11-20T10:00:00"]
    assert sum(b["entries"] for b in report["buckets"]) == scene.entries
    rows = sqlite3.connect(db).execute("SELECT sum(entries), sum(exits), sum(frames) FROM footfall").fetchone()
    assert rows == (scene.entries, scene.exits, report["frames"])


def test_events_list_every_counted_crossing_where_and_which_way(clip: tuple[Scene, Path]) -> None:
    """How an installer checks a camera against a hand count: each crossing with its frame and direction."""
    scene, video = clip
    plain = run_json("edge-agent", "footfall", "--source", str(video), "--line", line_of(scene))
    assert "crossings" not in plain
    report = run_json("edge-agent", "footfall", "--source", str(video), "--line", line_of(scene), "--events")
    crossings = report["crossings"]
    assert [c["direction"] for c in crossings].count("entry") == report["entries"] == scene.entries
    assert [c["direction"] for c in crossings].count("exit") == report["exits"] == scene.exits
    assert [c["frame"] for c in crossings] == sorted(c["frame"] for c in crossings)
    assert len({c["track"] for c in crossings}) == len(crossings)  # one person each, here
    true_frames = [(round(t * scene.spec.fps), "entry" if d > 0 else "exit") for t, d in scene.crossings]
    for crossing, (frame, direction) in zip(crossings, true_frames):
        assert crossing["direction"] == direction and abs(crossing["frame"] - frame) <= 3
        assert crossing["t"] == pytest.approx(crossing["frame"] / scene.spec.fps, abs=0.15)
    text = run_cli("edge-agent", "footfall", "--source", str(video), "--line", line_of(scene), "--events", check=True)
    assert text.stdout.count("entry, track") == scene.entries


def test_profile_settings_with_the_line_from_the_command(clip: tuple[Scene, Path]) -> None:
    scene, video = clip
    report = run_json("edge-agent", "footfall", "--source", str(video), "--config", str(PROFILE),
                      "--line", line_of(scene), "--set", "fps_budget=15", "--set", "bucket_seconds=60")
    assert (report["entries"], report["exits"]) == (scene.entries, scene.exits)
    assert {b["bucket_seconds"] for b in report["buckets"]} == {60}
    assert "queue_mean" in report["buckets"][0]  # the profile has a queue zone


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--line", "0,120,320"], "--line must be X1,Y1,X2,Y2"),
        ([], "no counting line"),
        (["--line", "0,900,320,900"], "lies outside the 320x240 frame"),
        (["--line", "0,120,320,120", "--set", "colour=red"], "unknown key camera.colour"),
        (["--line", "0,120,320,120", "--set", "fps_budget=-1"], "camera.fps_budget"),
    ],
)
def test_mistakes_are_one_line_errors(clip: tuple[Scene, Path], tmp_path: Path, args: list[str], message: str) -> None:
    _, video = clip
    result = run_cli("edge-agent", "footfall", "--source", str(video), *args)
    assert result.returncode == 1 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("edge-agent: error: ")


def test_a_missing_or_unreadable_video_creates_no_database(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    missing = run_cli("edge-agent", "footfall", "--source", str(tmp_path / "none.mp4"), "--line", "0,1,2,3", "--db", str(db))
    assert missing.returncode == 1 and "none.mp4: no such video file" in missing.stderr
    assert not db.exists()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    unreadable = run_cli("edge-agent", "footfall", "--source", str(junk), "--line", "0,1,2,3")
    assert unreadable.returncode == 1 and f"cannot open {junk}" in unreadable.stderr


def test_migration_keeps_old_footfall_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "old.db"
    monkeypatch.setattr(store_db, "MIGRATIONS", store_db.MIGRATIONS[:2])
    with open_store_db(db) as store:
        store.conn.execute("INSERT INTO footfall VALUES ('counter', 7200, 3600, 12, 10)")
    monkeypatch.undo()
    with open_store_db(db) as store:
        assert store.schema_version() == store_db.SCHEMA_VERSION
        row = store.conn.execute("SELECT entries, exits, frames, occupancy, dwell_tracks FROM footfall").fetchone()
    assert row == (12, 10, 0, None, 0)


def test_camera_writes_add_up_and_leave_imported_rows_alone(tmp_path: Path) -> None:
    with open_store_db(tmp_path / "s.db") as store:
        store.conn.execute("INSERT INTO footfall(source, bucket_start, bucket_seconds, entries, exits) VALUES ('counter', 0, 3600, 9, 9)")
        storage = FootfallStorage(store)
        first = Bucket(0, 300, entries=2, exits=1, frames=10, occupancy=1, occupancy_max=2, dwell=[0, 1] + [0] * 7)
        second = Bucket(0, 300, entries=1, frames=5, occupancy=2, occupancy_max=2, dwell=[0, 1, 1] + [0] * 6)
        storage.add_buckets("camera:door", [first], with_queue=False)
        storage.add_buckets("camera:door", [second], with_queue=False)
        rows = store.conn.execute("SELECT source, entries, exits, frames, occupancy, dwell_tracks, queue_max FROM footfall ORDER BY source").fetchall()
        histogram = store.conn.execute("SELECT dwell_from_seconds, tracks FROM footfall_dwell ORDER BY 1").fetchall()
    assert rows == [("camera:door", 3, 1, 15, 2, 3, None), ("counter", 9, 9, 0, None, 0, None)]
    assert histogram == [(2, 2), (5, 1)]
