"""Keeping a long-running multi-threaded process's heap small on glibc.

glibc gives each thread that allocates its own malloc arena (up to 8 per
core), and memory freed inside an arena is rarely returned to the system: a
daemon whose threads each take a turn at a large allocation (scoring a
year of transactions, ingesting a big export) settles at the sum of their
peaks. Two arenas are plenty for loops that mostly wait, and a trim after
each large piece of work hands the freed pages back. Elsewhere than glibc
both are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger("edge_agent.memory")
M_ARENA_MAX = -8  # from glibc's malloc.h

_libc: ctypes.CDLL | None = None


def _glibc() -> ctypes.CDLL | None:
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else None
        except OSError:
            libc = None
        if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
            return None
        _libc = libc
    return _libc


def limit_malloc_arenas(arenas: int = 2) -> bool:
    """Cap the number of malloc arenas for threads created from now on; whether it applied."""
    libc = _glibc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, arenas) == 1)


def trim() -> bool:
    """Return freed heap pages to the system; whether any were returned."""
    libc = _glibc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)
