"""What crosses from `rrqctl run` to the engine process it becomes: plain data, no pydantic.

`rrqctl run` validates the cable with the model (pydantic), makes its tap, then hands the
engine process a Handover as JSON in a memfd (handover.py): the cable's spec (what the
datapath needs, EngineSettings, and what the host side needs), and how to run it. The
engine process never imports the model, nor pyroute2: each costs about 12-14 MB, a third
of an engine's whole budget. A reload reads the spec anew from `rrqctl run ... --print-spec`.

Both ends are the same rrqctl (an exec, not a network); the version still says so, and a
handover of another version is refused rather than misread.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rrqctl.engine.settings import EngineSettings
from rrqctl.errors import error_from

if TYPE_CHECKING:
    from rrqctl.model import Cable

HANDOVER_VERSION = 1
ENGINE_FD = "--engine-fd"  # rrqctl run's own option: the memfd that holds the handover
PRINT_SPEC = "--print-spec"  # rrqctl run's own option: print the spec (for a reload)
RELOAD_TIMEOUT = 60.0
# What a reload cannot change in a running engine (it says "restart to apply ...").
RESTART_FIELDS = ("local", "port", "bridge", "dhcp", "mac", "mtu", "ipv4_only", "source")


@dataclass(frozen=True)
class CableSpec:
    """The cable as the engine process knows it: the datapath's settings and the host's."""

    engine: EngineSettings
    owner: str  # rrqctl | networkd
    bridge: str | None
    dhcp: tuple[str, ...] | None  # dhclient's arguments; None: no DHCP
    mac: str | None
    mtu: int | None
    addresses: tuple[str, ...]
    nice: int | None
    syslog: tuple[str, str] | None
    data: Mapping[str, Any] = field(compare=False)  # the validated cable's model_dump(json)

    @property
    def name(self) -> str:
        return self.engine.name

    @property
    def local(self) -> str:  # tap | stdio | none
        return self.engine.local

    @property
    def verbosity(self) -> int:
        return self.engine.verbosity

    @property
    def remotes(self) -> int:
        return len(self.engine.remotes)

    def engine_settings(self) -> EngineSettings:
        return self.engine

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CableSpec:
        c = d["cable"]
        dhcp = c.get("dhcp")
        syslog = d.get("syslog")
        return cls(
            engine=EngineSettings.from_json(c),
            owner=c.get("owner", "rrqctl"),
            bridge=c.get("bridge"),
            dhcp=tuple(dhcp["args"]) if dhcp is not None else None,
            mac=c.get("mac"),
            mtu=c.get("mtu"),
            addresses=tuple(c.get("addresses", ())),
            nice=c.get("nice"),
            syslog=(syslog[0], syslog[1]) if syslog else None,
            data=c,
        )

    @classmethod
    def from_cable(cls, cable: Cable) -> CableSpec:
        return cls.from_json(spec_json(cable))

    def to_json(self) -> dict[str, Any]:
        return {"cable": dict(self.data), "syslog": list(self.syslog) if self.syslog else None}

    def changed(self, new: CableSpec) -> list[str]:
        """The fields a reload to new would leave unapplied."""
        return [f for f in RESTART_FIELDS if self.data.get(f) != new.data.get(f)]


def spec_json(cable: Cable) -> dict[str, Any]:
    """The JSON form of CableSpec, made from a validated cable (in the process that has it)."""
    syslog = cable.log.syslog if cable.log is not None else None
    return {"cable": cable.model_dump(mode="json"), "syslog": list(syslog) if syslog else None}


@dataclass(frozen=True)
class Handover:
    """What `rrqctl run` gives the engine process it becomes."""

    spec: CableSpec
    run_dir: str
    reload: tuple[str, ...]  # `rrqctl` arguments that read the cable again (with PRINT_SPEC)
    attach: bool = False  # only the engine, on a tap `rrqctl up` made
    made: bool = False  # rrqctl run set the tap up: the engine undoes that at its end
    tap_made: bool = False  # ... and made the tap (this run, or the one it restarts)
    ready_fd: int | None = None  # say READY (or FAIL reason) on it
    health_every: float = 10.0
    version: int = HANDOVER_VERSION

    def with_tap_made(self, made: bool) -> Handover:
        return replace(self, tap_made=made)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "spec": self.spec.to_json(),
            "run_dir": self.run_dir,
            "reload": list(self.reload),
            "attach": self.attach,
            "made": self.made,
            "tap_made": self.tap_made,
            "ready_fd": self.ready_fd,
            "health_every": self.health_every,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Handover:
        """Raises ValueError (or KeyError, TypeError) for anything but this version's form."""
        if d.get("version") != HANDOVER_VERSION:
            raise ValueError(f"handover version {d.get('version')}, not {HANDOVER_VERSION}")
        ready = d["ready_fd"]
        return cls(
            spec=CableSpec.from_json(d["spec"]),
            run_dir=str(d["run_dir"]),
            reload=tuple(str(w) for w in d["reload"]),
            attach=bool(d["attach"]),
            made=bool(d["made"]),
            tap_made=bool(d["tap_made"]),
            ready_fd=None if ready is None else int(ready),
            health_every=float(d["health_every"]),
        )


def fetch_spec(argv: Sequence[str]) -> CableSpec:
    """The cable as `rrqctl run ... --print-spec` reads it now (raising what it found wrong)."""
    try:
        done = subprocess.run(
            argv,
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            timeout=RELOAD_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise error_from("", f"reading the cable: no answer in {RELOAD_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        raise error_from(done.stdout, f"reading the cable: exited {done.returncode}")
    return CableSpec.from_json(json.loads(done.stdout))
