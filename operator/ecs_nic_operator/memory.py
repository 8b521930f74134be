"""Keeping the resident set close to what the operator actually holds.

A wave of thousands of watch events and API answers leaves glibc's heap full of free but unreturned chunks,
spread over one malloc arena per thread that ever allocated (the Kubernetes client runs in a thread pool).
The live data of 10,000 attachments is about 30 MB; without these two measures the process kept ~35 MB more
than that after a creation wave. Both are no-ops where the C library is not glibc.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging

log = logging.getLogger("ecs_nic_operator.memory")

_M_ARENA_MAX = -8  # glibc's mallopt parameter number
ARENAS = 2
TRIM_EVERY = 60.0


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # musl and others have neither function; only glibc's behaviour is known and wanted here.
    if not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
        return None
    return libc


_LIBC = _libc()


def limit_arenas() -> None:
    """Fewer malloc arenas: threads share freed memory instead of each keeping its own. Call before threads."""
    if _LIBC is not None and not _LIBC.mallopt(_M_ARENA_MAX, ARENAS):
        log.debug("mallopt(M_ARENA_MAX) refused")


def trim() -> None:
    """Give free heap pages back to the system."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


async def trim_forever(every: float = TRIM_EVERY) -> None:
    while True:
        await asyncio.sleep(every)
        trim()
