"""Timing a heartbeat row from the primary to a replica (MySQL and PostgreSQL alike)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

POLL_SECONDS = 0.02


def wait_for_heartbeat(read: Callable[[], tuple[int, datetime] | None], seq: int, written: float,
                       timeout: float) -> tuple[bool, float]:
    """Read the replica's heartbeat until it shows `seq` (written at monotonic time `written`) or `timeout`
    seconds have passed since then; (arrived, seconds since written). This process's monotonic clock
    times it, so skew between the servers' clocks cannot read as lag (F25)."""
    seen = read()
    while (seen is None or seen[0] < seq) and time.monotonic() < written + timeout:
        time.sleep(POLL_SECONDS)
        seen = read()
    return seen is not None and seen[0] >= seq, time.monotonic() - written
