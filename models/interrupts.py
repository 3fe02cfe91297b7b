"""Ctrl-C and SIGTERM stop every command, however it was started.

A job started in the background by a non-interactive shell (`make test &`,
`nohup make demo`) inherits SIGINT as *ignored*, and Python then keeps it
ignored instead of raising KeyboardInterrupt: such a command would shrug off
Ctrl-C. Each command's entry point therefore installs its own handlers: both
signals raise KeyboardInterrupt in the main thread, so `finally` blocks stop
what the command started. Long-running services (the aggregator, the console,
the store-box daemon) install their own graceful handlers on top.
"""

from __future__ import annotations

import signal
from types import FrameType


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stop_on_interrupt_and_term() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt from here on, even if SIGINT was ignored when we started."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
