"""systemd notifications (READY, WATCHDOG, STOPPING) without a dependency: one datagram each."""

from __future__ import annotations

import os
import socket


def notify(state: str) -> bool:
    """Send `state` (e.g. "READY=1") to systemd if it is listening; return whether it was sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # an abstract socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(address)
            sock.sendall(state.encode())
        except OSError:
            return False
    return True


def watchdog_interval() -> float | None:
    """Half of WatchdogSec (systemd passes it in microseconds), or None without a watchdog."""
    value = os.environ.get("WATCHDOG_USEC")
    if not value or (os.environ.get("WATCHDOG_PID") not in (None, str(os.getpid()))):
        return None
    return int(value) / 2_000_000
