"""Progress lines for long work (bytes, rate, ETA) at a steady interval, and a one-line summary."""

from __future__ import annotations

import logging
import time

MB = 1024 * 1024


class Progress:
    def __init__(self, what: str, expected_bytes: int | None = None, interval: float = 5.0,
                 logger: logging.Logger | None = None) -> None:
        self.what = what
        self.expected = expected_bytes or None
        self.interval = interval
        self.log = logger or logging.getLogger("multicloud_dr.progress")
        self.start = time.monotonic()
        self._next = self.start + interval
        self.done = 0

    def update(self, done: int, extra: str = "") -> None:
        self.done = done
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + self.interval
        elapsed = now - self.start
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = ""
        if self.expected and rate > 0 and done < self.expected:
            eta = f", ETA ~{(self.expected - done) / rate:.0f} s (of ~{self.expected / MB:.0f} MB estimated)"
        self.log.info("%s: %.1f MB, %.1f MB/s, %.0f s%s%s", self.what, done / MB, rate / MB, elapsed, eta,
                      f", {extra}" if extra else "")

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.start
