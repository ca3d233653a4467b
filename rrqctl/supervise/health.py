"""Health of a cable: each check a small function of observations, returning findings.

Used by `rrqctl check` (cron) and, on its own schedule, inside `rrqctl run`. A finding
says what is wrong and whether it is a local fault to repair; a silent far end is not.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from rrqctl.engine.channels import UPLINK_STALE_AFTER

if TYPE_CHECKING:
    from rrqctl.plan import Observed

BACKOFF_BASE = 60.0  # seconds after the first failed repair
BACKOFF_CAP = 3600.0


class WantedLink(Protocol):
    """What the link checks need of a cable (the model's Cable, or the engine's CableSpec)."""

    @property
    def name(self) -> str: ...
    @property
    def local(self) -> str: ...
    @property
    def owner(self) -> str: ...
    @property
    def mac(self) -> str | None: ...
    @property
    def mtu(self) -> int | None: ...
    @property
    def addresses(self) -> tuple[object, ...]: ...
    @property
    def bridge(self) -> str | None: ...
    @property
    def dhcp(self) -> object | None: ...


@dataclass(frozen=True)
class Finding:
    check: str  # engine tap tap-up mac mtu bridge address dhclient uplink unit config
    reason: str
    repair: bool = True  # a local fault rrqctl repairs (False: only reported)

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


def link_findings(cable: WantedLink, seen: Observed) -> list[Finding]:
    """Tap present, up, with its MAC/MTU/address, in its bridge (for cables whose link we own)."""
    if cable.local != "tap" or cable.owner != "rrqctl":
        return []
    name = cable.name
    if not seen.tap_exists:
        return [Finding("tap", f"{name} does not exist")]
    out = []
    if not seen.tap_up:
        out.append(Finding("tap-up", f"{name} is down"))
    if cable.mac and seen.tap_mac != cable.mac:
        out.append(Finding("mac", f"{name} has MAC {seen.tap_mac}, not {cable.mac}"))
    if cable.mtu and seen.tap_mtu != cable.mtu:
        out.append(Finding("mtu", f"{name} has MTU {seen.tap_mtu}, not {cable.mtu}"))
    for address in map(str, cable.addresses):
        if address not in seen.tap_addresses:
            out.append(Finding("address", f"{name} lacks address {address}"))
    if cable.bridge and seen.tap_master != cable.bridge:
        where = f"a port of {seen.tap_master}" if seen.tap_master else "in no bridge"
        out.append(Finding("bridge", f"{name} is {where}, not a port of {cable.bridge}"))
    return out


def engine_findings(seen: Observed, answers: bool) -> list[Finding]:
    if seen.engine_pid is None:
        return [Finding("engine", "the engine is not running")]
    if not answers:
        return [
            Finding(
                "engine", f"the engine (pid {seen.engine_pid}) does not answer: its loop is stuck"
            )
        ]
    return []


def dhclient_findings(cable: WantedLink, running: bool) -> list[Finding]:
    if cable.dhcp is None or cable.owner != "rrqctl" or running:
        return []
    return [Finding("dhclient", "dhclient is not running")]


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
