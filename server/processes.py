"""Ports and process groups on one machine: what every runner of local services needs.

The demo, the tests, the benchmarks and `churn-server backtest --mode
federated` all start real services (Mosquitto, the SuperLink, SuperNodes, the
aggregator) on free loopback ports, each in its own session so that a stop
reaches whatever it spawned. These are the one copy of those helpers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

VENV_BIN = Path(sys.executable).parent  # the console scripts installed beside this interpreter


def free_port() -> int:
    """A loopback port free right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on host:`port` now."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port: int, seconds: float = 20.0, process: subprocess.Popen[bytes] | None = None) -> None:
    """Until something accepts connections on 127.0.0.1:`port`; TimeoutError after `seconds`,
    RuntimeError at once if `process` (the one meant to listen) has exited."""
    deadline = time.monotonic() + seconds
    while not port_open(port):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{Path(str(process.args[0])).name} exited ({process.returncode}) "  # type: ignore[index]
                               f"before listening on 127.0.0.1:{port}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {seconds:.0f} s")
        time.sleep(0.1)


def _leads_its_group(process: subprocess.Popen[bytes]) -> bool:
    """Started with start_new_session=True (asked while it runs: a reaped one is taken to have led its group)."""
    try:
        return os.getpgid(process.pid) == process.pid
    except ProcessLookupError:
        return True


def _signal(process: subprocess.Popen[bytes], sig: int, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)


def end_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """`sig` to the process's group, up to `grace` seconds for it to exit, then SIGKILL to whatever is left of
    the group (children that outlived it too); reaped. A process that leads no group is signalled alone."""
    group = _leads_its_group(process)
    if process.poll() is None:
        _signal(process, sig, group)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    if group or process.poll() is None:
        _signal(process, signal.SIGKILL, group)
    if process.poll() is None:
        process.wait(timeout=10)


def kill_group(process: subprocess.Popen[bytes]) -> None:
    """A crash: SIGKILL to the process's whole group, nothing gets to clean up."""
    end_group(process, signal.SIGKILL, grace=10.0)


# --- process trees that leave their group (Flower's SuperExec starts its own process groups) ---

def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants, whatever their process group."""
    children, found, queue = _children_map(), [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        queue.extend(children.get(current, []))
    return found


def pid_alive(pid: int) -> bool:
    """Running (a zombie is not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def signal_pids(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def end_tree(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, grace: float = 20.0) -> None:
    """end_group, then the same to whatever the process had started outside its group (Flower's SuperLink
    detaches its SuperExec into a session of its own, which would outlive a stop by group)."""
    strays = [pid for pid in process_tree(process.pid) if pid != process.pid]
    end_group(process, sig, grace)
    strays = [pid for pid in strays if pid_alive(pid)]
    if not strays:
        return
    signal_pids(strays, sig)
    deadline = time.monotonic() + min(grace, 10.0)
    while any(pid_alive(pid) for pid in strays) and time.monotonic() < deadline:
        time.sleep(0.1)
    signal_pids([pid for pid in strays if pid_alive(pid)], signal.SIGKILL)
