"""A cable's host aspects, one entry each: what `up` makes, how `down` undoes it, how a health
check sees it gone, and what repairs it.

    TAP  MAC  MTU  LINK_UP  ADDRESS  BRIDGE  ENGINE  NICE  DHCP     (ASPECTS, in `up`'s order)

plan_up and plan_down (plan.py), host.Up and host.down (system/host.py), `rrqctl check`
(supervise/check.py) and the engine's own health checks (supervise/supervisor.py) are loops
over ASPECTS. Pure: the host comes in as an Observed, and what an aspect does to the host
goes through Ops, which system/host.py carries out.

Adding an aspect is one class here and its place in ASPECTS: its Step, what it wants (each
change as the command a person would type, and the one that undoes it), what `down` undoes,
what a health check finds, and `do`/`undo` through Ops.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from rrqctl.model import Cable


class Step(enum.StrEnum):
    TAP = "tap"  # create the tap (persistent, no packet information)
    MAC = "mac"
    MTU = "mtu"
    LINK_UP = "link-up"
    ADDRESS = "address"  # the stanza's static addresses, conf.d's IP=
    BRIDGE = "bridge"
    ENGINE = "engine"
    NICE = "nice"
    DHCP = "dhcp"


@dataclass(frozen=True)
class Observed:
    """The host as it is now, for one cable."""

    tap_exists: bool = False
    tap_is_tap: bool = True
    tap_up: bool = False
    tap_mac: str = ""
    tap_mtu: int = 0
    tap_master: str | None = None  # the bridge the tap is a port of
    tap_addresses: tuple[str, ...] = ()
    bridge_exists: bool = True
    engine_pid: int | None = None
    engine_answers: bool = True  # (a check that asked its control socket says)
    dhclient_pid: int | None = None
    fitting_mtu: int = 0  # the MTU whose frames fit one datagram to every remote (0: unknown)


@dataclass(frozen=True)
class Action:
    step: Step
    text: str  # the equivalent command, printed as "[#] text"
    undo: str = ""  # the command that undoes it ("" when nothing needs undoing)
    value: str = ""  # what the step sets, where the cable does not say (the MTU that fits)
    keep: str = ""  # what undoing it needs, kept in the record (an address; a MAC found)


@dataclass
class Record:
    """What up made for a cable (RUN/NAME.json), so down undoes exactly that."""

    made: list[str] = field(default_factory=list)  # Step values, in the order done
    kept: dict[str, list[str]] = field(default_factory=dict)  # step -> what undoing needs
    engine_pid: int | None = None
    dhclient_pid: int | None = None
    nice: int | None = None

    def has(self, step: Step) -> bool:
        return step.value in self.made

    def keep(self, step: Step, value: str) -> None:
        kept = self.kept.setdefault(step.value, [])
        if value not in kept:
            kept.append(value)

    def found(self, step: Step) -> str:
        """What was there before the step (a tap's MAC or MTU): "" if nothing is kept."""
        kept = self.kept.get(step.value)
        return kept[0] if kept else ""


@dataclass(frozen=True)
class Finding:
    check: str  # the aspect's (tap mac mtu link-up address bridge engine dhclient), or
    reason: str  # uplink unit config down ifupdown: what only a check can say
    repair: bool = True  # a local fault rrqctl repairs (False: only reported)

    def __str__(self) -> str:
        return f"{self.check}: {self.reason}"


class Wanted(Protocol):
    """What health checks need of a cable (the model's Cable, or the engine's CableSpec)."""

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
    def addresses(self) -> tuple[str, ...]: ...
    @property
    def bridge(self) -> str | None: ...
    @property
    def dhcp(self) -> object | None: ...


class Ops(Protocol):
    """What aspects do to the host (system/host.py: netlink, processes, the run directory)."""

    def create_tap(self, name: str) -> None: ...
    def delete_link(self, name: str) -> None: ...
    def set_mac(self, name: str, mac: str) -> None: ...
    def set_mtu(self, name: str, mtu: int) -> None: ...
    def set_up(self, name: str) -> None: ...
    def set_down(self, name: str) -> None: ...
    def add_address(self, name: str, cidr: str) -> None: ...
    def del_address(self, name: str, cidr: str) -> None: ...
    def set_master(self, name: str, bridge: str) -> None: ...
    def set_nomaster(self, name: str) -> None: ...
    def start_engine(self, cable: Cable) -> int: ...
    def stop_engine(self, name: str, pid: int | None) -> None: ...
    def renice(self, pid: int, nice: int) -> None: ...
    def dhclient(self, cable: Cable, **mode: bool) -> list[str]: ...
    def start_dhclient(self, cable: Cable) -> int | None: ...
    def stop_dhclient(self, cable: Cable) -> None: ...


def owns_link(c: Wanted) -> bool:
    """The cable's tap is rrqctl's to make and set up (not notap, not networkd's)."""
    return c.local == "tap" and c.owner == "rrqctl"


def dhclient_argv(
    name: str,
    args: Sequence[str],
    pidfile: str,
    leases: str,
    *,
    release: bool = False,
    foreground: bool = False,
) -> list[str]:
    """dhclient on tap name with the cable's dhclient arguments."""
    mode = ["-r"] if release else (["-d"] if foreground else ["-nw"])
    return ["dhclient", *args, *mode, "-pf", pidfile, "-lf", leases, name]


class Aspect:
    """One thing `up` makes a cable have. The defaults: nothing to want, undo or find."""

    step: ClassVar[Step]
    phase: ClassVar[str] = "pre-up"  # the ifupdown phase that makes it (DHCP: post-up)
    of_link: ClassVar[bool] = True  # of the tap: set up by `rrqctl run`, gone with the tap
    repair_by: ClassVar[str | None] = "up"  # the links helper that repairs it in an engine
    check: ClassVar[str] = ""  # its findings' name (default: the step's)

    @property
    def name(self) -> str:
        return self.check or self.step.value

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        return []

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        """What down does, given what up recorded it made."""
        return []

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        return []

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        pass

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        """Undo it (kept: the action's, or the record's, Action.keep)."""

    def said(self, ops: Ops, c: Cable, a: Action, record: Record) -> str:
        """The action as printed when it is done (with what only then is known)."""
        return a.text

    def _act(self, text: str, undo: str = "", value: str = "", keep: str = "") -> Action:
        return Action(self.step, text, undo, value, keep)


class Tap(Aspect):
    step = Step.TAP
    repair_by = "tap"

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        if not owns_link(c) or seen.tap_exists:
            return []
        return [self._act(f"ip tuntap add dev {c.name} mode tap", f"ip link del dev {c.name}")]

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        if not record.has(self.step) or not seen.tap_exists:
            return []
        return [self._act(f"ip link del dev {c.name}")]

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        return [] if seen.tap_exists else [Finding(self.name, f"{c.name} does not exist")]

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        ops.create_tap(c.name)

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        ops.delete_link(c.name)


class Mac(Aspect):
    step = Step.MAC

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        if not owns_link(c) or not c.mac or c.mac == seen.tap_mac:
            return []
        was = seen.tap_mac if seen.tap_exists else ""  # (a tap made now goes, MAC and all)
        undo = f"ip link set dev {c.name} address {was}" if was else ""
        return [self._act(f"ip link set dev {c.name} address {c.mac}", undo, keep=was)]

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        was = record.found(self.step)
        if not was or not seen.tap_exists or seen.tap_mac == was:
            return []
        return [self._act(f"ip link set dev {c.name} address {was}", keep=was)]  # as found

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        if not c.mac or seen.tap_mac == c.mac:
            return []
        return [Finding(self.name, f"{c.name} has MAC {seen.tap_mac}, not {c.mac}")]

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        ops.set_mac(c.name, str(c.mac))

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        if kept:
            ops.set_mac(c.name, kept)


class Mtu(Aspect):
    """The MTU declared; else, on a tap made here, the one whose frames fit (engine/pmtu.py)."""

    step = Step.MTU

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        mtu = c.mtu or (0 if seen.tap_exists else seen.fitting_mtu)
        if not owns_link(c) or not mtu or mtu == seen.tap_mtu:
            return []
        was = str(seen.tap_mtu) if seen.tap_exists else ""
        undo = f"ip link set dev {c.name} mtu {was}" if was else ""
        return [self._act(f"ip link set dev {c.name} mtu {mtu}", undo, str(mtu), keep=was)]

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        was = record.found(self.step)
        if not was or not seen.tap_exists or str(seen.tap_mtu) == was:
            return []
        return [self._act(f"ip link set dev {c.name} mtu {was}", keep=was)]  # as found

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        if not c.mtu or seen.tap_mtu == c.mtu:
            return []
        return [Finding(self.name, f"{c.name} has MTU {seen.tap_mtu}, not {c.mtu}")]

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        ops.set_mtu(c.name, int(a.value))

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        if kept:
            ops.set_mtu(c.name, int(kept))


class LinkUp(Aspect):
    step = Step.LINK_UP

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        if not owns_link(c) or seen.tap_up:
            return []
        return [self._act(f"ip link set dev {c.name} up", f"ip link set dev {c.name} down")]

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        if not record.has(self.step) or not seen.tap_up:
            return []
        return [self._act(f"ip link set dev {c.name} down")]  # (as it was found)

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        return [] if seen.tap_up else [Finding(self.name, f"{c.name} is down")]

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        ops.set_up(c.name)

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        ops.set_down(c.name)


class Address(Aspect):
    """Each address of the cable, one action each (value: the address)."""

    step = Step.ADDRESS

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        if not owns_link(c):
            return []
        return [
            self._act(f"ip addr add {a} dev {c.name}", f"ip addr del {a} dev {c.name}", a, a)
            for a in c.addresses
            if a not in seen.tap_addresses  # (one there before stays, as it was)
        ]

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        if not record.has(self.step):
            return []
        added = record.kept.get(self.step.value, c.addresses)  # (a record of rrqctl 0.1)
        return [
            self._act(f"ip addr del {a} dev {c.name}", keep=a)
            for a in added
            if a in seen.tap_addresses
        ]

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        return [
            Finding(self.name, f"{c.name} lacks address {a}")
            for a in c.addresses
            if a not in seen.tap_addresses
        ]

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        ops.add_address(c.name, a.value)

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        for address in [kept] if kept else record.kept.get(self.step.value, c.addresses):
            ops.del_address(c.name, address)


class Bridge(Aspect):
    step = Step.BRIDGE

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        if not owns_link(c) or not c.bridge or seen.tap_master == c.bridge:
            return []
        return [
            self._act(
                f"ip link set dev {c.name} master {c.bridge}", f"ip link set dev {c.name} nomaster"
            )
        ]

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        if not record.has(self.step) or not seen.tap_master:
            return []
        return [self._act(f"ip link set dev {c.name} nomaster")]

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        if not c.bridge or seen.tap_master == c.bridge:
            return []
        where = f"a port of {seen.tap_master}" if seen.tap_master else "in no bridge"
        return [Finding(self.name, f"{c.name} is {where}, not a port of {c.bridge}")]

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        ops.set_master(c.name, str(c.bridge))

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        ops.set_nomaster(c.name)


class Engine(Aspect):
    step = Step.ENGINE
    of_link = False
    repair_by = None

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        if seen.engine_pid is not None:
            return []
        return [self._act(f"{shlex.join(engine_argv)} &", f"kill {c.name}'s engine")]

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        if seen.engine_pid is None and not record.has(self.step):
            return []
        return [self._act(f"kill {seen.engine_pid or record.engine_pid}")]

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        if seen.engine_pid is None:
            return [Finding(self.name, "the engine is not running")]
        if not seen.engine_answers:
            stuck = f"the engine (pid {seen.engine_pid}) does not answer: its loop is stuck"
            return [Finding(self.name, stuck)]
        return []

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        record.engine_pid = ops.start_engine(c)

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        ops.stop_engine(c.name, record.engine_pid)


class Nice(Aspect):
    step = Step.NICE
    of_link = False
    repair_by = None

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        if seen.engine_pid is not None or c.nice is None:
            return []  # (an engine that runs already keeps its priority)
        return [self._act(f"renice -n {c.nice} -p ENGINE_PID")]

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        assert record.engine_pid is not None and c.nice is not None
        ops.renice(record.engine_pid, c.nice)
        record.nice = c.nice

    def said(self, ops: Ops, c: Cable, a: Action, record: Record) -> str:
        return a.text.replace("ENGINE_PID", str(record.engine_pid))


class Dhcp(Aspect):
    step = Step.DHCP
    phase = "post-up"
    of_link = False
    repair_by = None
    check = "dhclient"

    def want(self, c: Cable, seen: Observed, engine_argv: Sequence[str]) -> list[Action]:
        if not owns_link(c) or c.dhcp is None or seen.dhclient_pid is not None:
            return []
        argv = dhclient_argv(c.name, c.dhcp.args, "PIDFILE", "LEASES")
        return [self._act(shlex.join(argv), "dhclient -r ...")]

    def unwant(self, c: Cable, record: Record, seen: Observed) -> list[Action]:
        if seen.dhclient_pid is None and not record.has(self.step):
            return []
        return [self._act(f"dhclient -r ... {c.name}")]

    def findings(self, c: Wanted, seen: Observed) -> list[Finding]:
        if c.dhcp is None or not owns_link(c) or seen.dhclient_pid is not None:
            return []
        return [Finding(self.name, "dhclient is not running")]

    def do(self, ops: Ops, c: Cable, a: Action, record: Record) -> None:
        record.dhclient_pid = ops.start_dhclient(c)

    def undo(self, ops: Ops, c: Cable, record: Record, kept: str = "") -> None:
        ops.stop_dhclient(c)

    def said(self, ops: Ops, c: Cable, a: Action, record: Record) -> str:
        return " ".join(ops.dhclient(c))


ASPECTS: tuple[Aspect, ...] = (
    Tap(),
    Mac(),
    Mtu(),
    LinkUp(),
    Address(),
    Bridge(),
    Engine(),
    Nice(),
    Dhcp(),
)
BY_STEP = {a.step: a for a in ASPECTS}
BY_CHECK = {a.name: a for a in ASPECTS}

PHASE_STEPS = {
    phase: tuple(a.step for a in ASPECTS if a.phase == phase) for phase in ("pre-up", "post-up")
}
LINK_STEPS = tuple(a.step for a in ASPECTS if a.of_link)  # what `rrqctl run` sets up itself


def link_findings(c: Wanted, seen: Observed) -> list[Finding]:
    """The tap as the cable wants it (for a cable whose tap is rrqctl's)."""
    if not owns_link(c):
        return []
    if not seen.tap_exists:
        return BY_STEP[Step.TAP].findings(c, seen)
    return [f for a in ASPECTS if a.of_link for f in a.findings(c, seen)]


def findings(c: Wanted, seen: Observed) -> list[Finding]:
    """Everything a health check finds missing: the engine, the tap as wanted, dhclient."""
    first = BY_STEP[Step.ENGINE].findings(c, seen)  # (said first: what matters most)
    rest = [
        f
        for a in ASPECTS
        if not a.of_link and a.step is not Step.ENGINE
        for f in a.findings(c, seen)
    ]
    return first + link_findings(c, seen) + rest
