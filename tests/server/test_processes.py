"""Ports and process groups (server/processes.py): what the demo, the tests and the benchmarks stop with."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from server.processes import end_tree, free_port, kill_group, pid_alive, port_open, wait_for_port

SLEEPER = "import time; time.sleep(120)"
DETACHING = ("import subprocess, sys, time\n"
             f"child = subprocess.Popen([sys.executable, '-c', {SLEEPER!r}], start_new_session=True)\n"
             "print(child.pid, flush=True)\n"
             "time.sleep(120)\n")


def test_a_stop_reaches_what_the_process_detached_from_its_group() -> None:
    """As the SuperLink does with its SuperExec: a child in a session of its own outlives a stop by group."""
    parent = subprocess.Popen([sys.executable, "-c", DETACHING], stdout=subprocess.PIPE, text=True,
                              start_new_session=True)
    assert parent.stdout is not None
    detached = int(parent.stdout.readline())
    try:
        started = time.monotonic()
        end_tree(parent, grace=5.0)  # type: ignore[arg-type]
        assert parent.returncode is not None and not pid_alive(detached)
        assert time.monotonic() - started < 5.0, "SIGTERM was enough: no wait for the grace period"
    finally:
        for pid in (parent.pid, detached):
            if pid_alive(pid):
                subprocess.run(["kill", "-9", str(pid)], check=False)
        parent.stdout.close()


def test_waiting_for_a_port_stops_at_once_when_the_process_meant_to_listen_has_exited() -> None:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    port, started = free_port(), time.monotonic()
    with pytest.raises(RuntimeError, match=r"exited \(3\) before listening on 127\.0\.0\.1:\d+"):
        wait_for_port(port, 60, process)  # type: ignore[arg-type]
    assert time.monotonic() - started < 30 and not port_open(port)


def test_waiting_for_a_port_nothing_listens_on_is_a_timeout() -> None:
    with pytest.raises(TimeoutError, match="nothing listens on 127.0.0.1"):
        wait_for_port(free_port(), 0.3)


def test_a_process_that_leads_no_group_is_still_stopped() -> None:
    """A child started without a session of its own: signalling 'its group' would miss it (or hit ours)."""
    process = subprocess.Popen([sys.executable, "-c", SLEEPER])
    try:
        kill_group(process)  # type: ignore[arg-type]
        assert process.returncode == -9
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
