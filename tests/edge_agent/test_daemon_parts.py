"""The daemon's parts on their own: the schedule, the drop folder, supervised children."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge_agent.daemon.children import SupervisedChild
from edge_agent.daemon.dropbox import Dropbox
from edge_agent.daemon.schedule import next_daily, next_run
from edge_agent.store_db import open_store_db
from tests.polling import wait_until

PARIS = ZoneInfo("Europe/Paris")
HEADER = "customer_id,timestamp,amount,transaction_id\n"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=PARIS)


def test_daily_schedule_in_store_time_and_a_missed_run_runs_at_once() -> None:
    assert next_daily(at("2026-03-28T05:00"), "06:00", PARIS) == at("2026-03-28T06:00")
    assert next_daily(at("2026-03-28T07:00"), "06:00", PARIS) == at("2026-03-29T06:00")  # across the DST change
    now = at("2026-03-28T10:00")
    assert next_run(now, PARIS, "06:00", None, at("2026-03-28T06:00")) == at("2026-03-29T06:00")
    assert next_run(now, PARIS, "06:00", None, at("2026-03-27T06:00")) == now, "the box was off at 06:00"
    assert next_run(now, PARIS, "06:00", None, None) == now, "first start"


def test_every_n_minutes_schedule() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc)
    assert next_run(now, PARIS, None, 30, now - timedelta(minutes=10)) == now + timedelta(minutes=20)
    assert next_run(now, PARIS, None, 30, None) == now


def test_drop_folder_waits_for_a_file_to_settle_then_files_it(tmp_path: Path) -> None:
    box = Dropbox(tmp_path / "dropbox", settle_seconds=0.3)
    good = box.folder / "pos-1.csv"
    good.write_text(HEADER + "c1,2025-03-01,1.00,t1\n")
    (box.folder / "pos-2.csv.part").write_text("a copy still in progress")
    not_pos = box.folder / "photo.csv"
    not_pos.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with open_store_db(tmp_path / "s.db") as store:
        assert box.poll(store) == 0, "a file is read only once it has stopped changing"
        time.sleep(0.4)
        assert box.poll(store) == 2
        assert store.conn.execute("SELECT count(*) FROM transactions").fetchone()[0] == 1
        assert good.exists(), "read, then left in place a settle time more: it may not be finished"
        time.sleep(0.4)
        assert box.poll(store) == 0
    assert (box.done / "pos-1.csv").exists() and not good.exists()
    assert (box.failed / "photo.csv").exists()
    assert "binary content" in (box.failed / "photo.csv.reason").read_text()
    assert (box.folder / "pos-2.csv.part").exists(), "partial copies are left alone"


def test_a_growing_file_is_not_read_half_written(tmp_path: Path) -> None:
    box = Dropbox(tmp_path / "dropbox", settle_seconds=0.3)
    path = box.folder / "pos.csv"
    path.write_text(HEADER + "c1,2025-03-01,1.00,t1\n")
    with open_store_db(tmp_path / "s.db") as store:
        box.poll(store)
        time.sleep(0.2)
        with open(path, "a") as handle:
            handle.write("c2,2025-03-01,2.00,t2\n")
        time.sleep(0.2)
        assert box.poll(store) == 0
        time.sleep(0.4)
        assert box.poll(store) == 1
        assert store.conn.execute("SELECT count(*) FROM transactions").fetchone()[0] == 2


def test_a_dying_child_is_restarted_with_backoff_and_a_finished_one_is_not(tmp_path: Path) -> None:
    stop = threading.Event()
    counter = tmp_path / "starts"
    script = f"import pathlib,sys; p=pathlib.Path({str(counter)!r}); p.write_text(p.read_text()+'x' if p.exists() else 'x'); sys.exit(3)"
    dying = SupervisedChild("dying", [sys.executable, "-c", script], stop, backoff=(0.1, 0.2))
    finishing = SupervisedChild("finishing", [sys.executable, "-c", "pass"], stop, finite=True)
    dying.start()
    finishing.start()
    try:
        wait_until(lambda: dying.status.restarts >= 3 and finishing.status.state == "finished", 30,
                   "three restarts of the dying child, the finishing one finished")
    finally:
        stop.set()
        dying.join(5)
        finishing.join(5)
    assert len(counter.read_text()) >= 3 and dying.status.last_exit == 3 and dying.status.state == "stopped"
    assert finishing.status.state == "finished" and finishing.status.restarts == 0


def test_stopping_sends_sigterm_to_the_childs_group(tmp_path: Path) -> None:
    stop = threading.Event()
    marker, ready = tmp_path / "terminated", tmp_path / "ready"
    script = ("import signal,sys,time,pathlib\n"
              f"signal.signal(signal.SIGTERM, lambda *a: (pathlib.Path({str(marker)!r}).write_text('bye'), sys.exit(0)))\n"
              f"pathlib.Path({str(ready)!r}).write_text('listening')\n"
              "time.sleep(60)\n")
    child = SupervisedChild("sleeper", [sys.executable, "-c", script], stop)
    child.start()
    wait_until(ready.exists, 30, "the child's SIGTERM handler installed")
    stop.set()
    child.join(10)
    assert marker.read_text() == "bye" and child.status.state == "stopped"


def test_an_orphan_from_a_killed_daemon_is_stopped_before_a_new_child_starts(tmp_path: Path) -> None:
    pid_file = tmp_path / "camera.pid"
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "footfall"], start_new_session=True)
    pid_file.write_text(str(orphan.pid))
    cmdline = Path(f"/proc/{orphan.pid}/cmdline")
    deadline = time.monotonic() + 10
    while b"footfall" not in cmdline.read_bytes() and time.monotonic() < deadline:
        time.sleep(0.01)  # until the fork has exec'd: before that it still shows our own command line
    stop = threading.Event()
    child = SupervisedChild("camera", [sys.executable, "footfall"], stop, pid_file=pid_file, grace_seconds=5)
    assert child.reap_orphan()
    assert orphan.wait(timeout=10) == -signal.SIGTERM
    unrelated = tmp_path / "other.pid"
    unrelated.write_text(str(os.getpid()))  # a pid now used by something else: left alone
    assert not SupervisedChild("camera", [sys.executable, "-m"], stop, pid_file=unrelated).reap_orphan(), \
        "same program and argument, but not a group leader: not ours"


@pytest.mark.parametrize("seconds", [0.0])
def test_settle_zero_reads_at_the_second_poll(tmp_path: Path, seconds: float) -> None:
    box = Dropbox(tmp_path / "dropbox", settle_seconds=seconds)
    (box.folder / "a.csv").write_text(HEADER + "c1,2025-03-01,1.00,t1\n")
    with open_store_db(tmp_path / "s.db") as store:
        assert box.poll(store) == 0 and box.poll(store) == 1


def test_freed_heap_goes_back_to_the_system_after_a_trim() -> None:
    """Scoring frees a year of transactions; without the trim a fragmented heap keeps it resident."""
    import os

    from edge_agent.daemon import memory
    from edge_agent.daemon.health import rss_mb

    assert memory.limit_malloc_arenas(2) is True
    blocks = [bytes(4000) + bytes([i % 256]) for i in range(20_000)]  # ~80 MB in malloc'd chunks
    survivors = blocks[::20]  # one in twenty stays: the heap cannot shrink from its top
    del blocks
    before = rss_mb(os.getpid())
    assert memory.trim() is True
    assert before - rss_mb(os.getpid()) > 40
    assert len(survivors) == 1000
