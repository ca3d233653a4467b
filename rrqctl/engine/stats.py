"""Counters of what was dropped and why, the process's own usage, and logging that cannot
flood."""

from __future__ import annotations

import logging
import os
import time
from collections import OrderedDict
from collections.abc import Hashable


class Drops:
    """Dropped datagrams and frames, by reason."""

    __slots__ = ("by_reason", "total")

    def __init__(self) -> None:
        self.by_reason: dict[str, int] = {}
        self.total = 0

    def count(self, reason: str) -> None:
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        self.total += 1

    def snapshot(self) -> dict[str, int]:
        return dict(sorted(self.by_reason.items()))


def process_usage() -> dict[str, float]:
    """This process's resident memory (bytes) and CPU time (user + system seconds)."""
    try:
        with open("/proc/self/statm") as f:
            resident_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        resident_pages = 0
    t = os.times()
    return {
        "rss_bytes": resident_pages * os.sysconf("SC_PAGE_SIZE"),
        "cpu_seconds": round(t.user + t.system, 2),
    }


class RateLimitedLog:
    """At most one message per key per interval: bad traffic must not flood the log."""

    def __init__(self, log: logging.Logger, interval: float = 60.0, max_keys: int = 1024) -> None:
        self.log = log
        self.interval = interval
        self.max_keys = max_keys
        self._last: OrderedDict[Hashable, float] = OrderedDict()

    def _due(self, key: Hashable) -> bool:
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.interval:
            return False
        self._last[key] = now
        self._last.move_to_end(key)
        if len(self._last) > self.max_keys:
            self._last.popitem(last=False)
        return True

    def info(self, key: Hashable, msg: str, *args: object) -> None:
        if self.log.isEnabledFor(logging.INFO) and self._due(key):
            self.log.info(msg, *args)

    def warning(self, key: Hashable, msg: str, *args: object) -> None:
        if self._due(key):
            self.log.warning(msg, *args)
