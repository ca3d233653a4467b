"""Health of a cable beyond its host aspects (whose checks are in aspects.py): uplinks heard
from or not, and the back-off of repairs that failed.

Used by `rrqctl check` (cron) and, on its own schedule, inside `rrqctl run`. A finding
says what is wrong and whether it is a local fault to repair; a silent far end is not.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from rrqctl.aspects import Finding
from rrqctl.engine.channels import UPLINK_STALE_AFTER

BACKOFF_BASE = 60.0  # seconds after the first failed repair
BACKOFF_CAP = 3600.0


def uplink_findings(status: dict[str, Any]) -> list[Finding]:
    """Uplinks not heard from within 2 heartbeat intervals, and why as far as the engine can
    tell: reported, never 'repaired' (a far-end or path problem)."""
    out = []
    for r in status.get("remotes", ()):
        if r["kind"] != "uplink" or r["state"] == "up":
            continue
        heard = r["last_heard"]
        if heard is None and status.get("uptime", 0) < UPLINK_STALE_AFTER:
            continue  # too early to say
        since = "never heard from" if heard is None else f"silent for {heard:.0f}s"
        why = r.get("stale_reason") or since
        out.append(Finding("uplink", f"uplink {r['name']} is {r['state']}: {why}", repair=False))
    return out


@dataclass
class Backoff:
    """Failed repairs wait 1, 2, 4 ... 60 minutes before the next try, per cable and check."""

    failures: dict[str, int] = field(default_factory=dict)
    next_try: dict[str, float] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    reported: dict[str, list[str]] = field(default_factory=dict)  # stale uplinks last logged

    def allows(self, key: str, now: float) -> bool:
        return now >= self.next_try.get(key, 0.0)

    def tried(self, key: str, now: float, ok: bool) -> None:
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if ok:
            self.failures.pop(key, None)
            self.next_try.pop(key, None)
            return
        n = self.failures.get(key, 0) + 1
        self.failures[key] = n
        self.next_try[key] = now + min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (n - 1))

    def waiting(self, key: str, now: float) -> str:
        left = self.next_try.get(key, 0.0) - now
        return (
            f"{self.failures.get(key, 0)} failed repairs; next try in {left:.0f}s "
            f"(`rrqctl check --now {key}` tries now)"
        )

    @classmethod
    def load(cls, path: str) -> Backoff:
        try:
            with open(path) as f:
                return cls(**json.load(f))
        except (OSError, ValueError, TypeError):
            return cls()

    def save(self, path: str) -> None:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(asdict(self), f)
        os.replace(tmp, path)
