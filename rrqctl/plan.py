"""What `up` and `down` would do on this host now: desired cable vs observed state -> actions.

Pure: the observation comes in as data. Each action says, as a command a person knows,
what it does; host.py carries them out and undoes them on failure.
"""

from __future__ import annotations

import enum
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rrqctl.errors import ActionError, Location

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


PHASE_STEPS = {
    "pre-up": (
        Step.TAP,
        Step.MAC,
        Step.MTU,
        Step.LINK_UP,
        Step.ADDRESS,
        Step.BRIDGE,
        Step.ENGINE,
        Step.NICE,
    ),
    "post-up": (Step.DHCP,),
}


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
    dhclient_pid: int | None = None
    fitting_mtu: int = 0  # the MTU whose frames fit one datagram to every remote (0: unknown)


@dataclass(frozen=True)
class Action:
    step: Step
    text: str  # the equivalent command, printed as "[#] text"
    undo: str = ""  # the command that undoes it ("" when nothing needs undoing)
    value: str = ""  # what the step sets, where the cable does not say (the MTU that fits)


@dataclass
class Record:
    """What up made for a cable (RUN/NAME.json), so down undoes exactly that."""

    made: list[str] = field(default_factory=list)  # Step values, in the order done
    engine_pid: int | None = None
    dhclient_pid: int | None = None
    nice: int | None = None

    def has(self, step: Step) -> bool:
        return step.value in self.made


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


def plan_up(
    cable: Cable, seen: Observed, engine_argv: Sequence[str], steps: Sequence[Step] = tuple(Step)
) -> list[Action]:
    """The actions that bring cable up from what is seen; [] when it is already up."""
    _refuse(cable, seen)
    name = cable.name
    out: list[Action] = []

    def want(step: Step, text: str, undo: str = "", value: str = "") -> None:
        if step in steps:
            out.append(Action(step, text, undo, value))

    owns_link = cable.local == "tap" and cable.owner == "rrqctl"
    if owns_link and not seen.tap_exists:
        want(Step.TAP, f"ip tuntap add dev {name} mode tap", f"ip link del dev {name}")
    if owns_link and cable.mac and cable.mac != seen.tap_mac:
        want(Step.MAC, f"ip link set dev {name} address {cable.mac}")
    # the MTU declared; else, on a tap made here, the one whose frames fit (engine/pmtu.py)
    mtu = cable.mtu or (0 if seen.tap_exists else seen.fitting_mtu)
    if owns_link and mtu and mtu != seen.tap_mtu:
        want(Step.MTU, f"ip link set dev {name} mtu {mtu}", value=str(mtu))
    if owns_link and not seen.tap_up:
        want(Step.LINK_UP, f"ip link set dev {name} up", f"ip link set dev {name} down")
    for address in cable.addresses if owns_link else ():
        if str(address) not in seen.tap_addresses:
            add, undo = f"ip addr add {address} dev {name}", f"ip addr del {address} dev {name}"
            want(Step.ADDRESS, add, undo, value=str(address))
    if owns_link and cable.bridge and seen.tap_master != cable.bridge:
        want(
            Step.BRIDGE,
            f"ip link set dev {name} master {cable.bridge}",
            f"ip link set dev {name} nomaster",
        )
    if seen.engine_pid is None:
        want(Step.ENGINE, f"{shlex.join(engine_argv)} &", f"kill {name}'s engine")
        if cable.nice is not None:
            want(Step.NICE, f"renice -n {cable.nice} -p ENGINE_PID")
    if owns_link and cable.dhcp is not None and seen.dhclient_pid is None:
        argv = dhclient_argv(name, cable.dhcp.args, "PIDFILE", "LEASES")
        want(Step.DHCP, shlex.join(argv), "dhclient -r ...")
    return out


def _refuse(cable: Cable, seen: Observed) -> None:
    """Host states that up must not paper over; said before anything is changed."""
    if cable.local != "tap":
        return
    if seen.tap_exists and not seen.tap_is_tap:
        raise ActionError(f"{_at(cable, '')}{cable.name} exists and is not a tap")
    if cable.owner == "networkd" and not seen.tap_exists:
        raise ActionError(
            f"{_at(cable, '')}{cable.name} does not exist yet: systemd-networkd makes it"
        )
    if cable.bridge and not seen.bridge_exists and cable.owner == "rrqctl":
        raise ActionError(f"{_at(cable, 'bridge')}there is no bridge {cable.bridge} on this host")


def _at(cable: Cable, field_name: str) -> str:
    where = cable.where(field_name)
    return f"{Location.parse(where)}: " if where else ""


def plan_down(
    cable: Cable, record: Record, seen: Observed, steps: Sequence[Step] = tuple(Step)
) -> list[Action]:
    """Undo what the record says up made, in reverse; things made by others stay."""
    name = cable.name
    out: list[Action] = []
    if Step.DHCP in steps and (seen.dhclient_pid is not None or record.has(Step.DHCP)):
        out.append(Action(Step.DHCP, "dhclient -r ... " + name))
    if Step.ENGINE in steps and (seen.engine_pid is not None or record.has(Step.ENGINE)):
        out.append(Action(Step.ENGINE, f"kill {seen.engine_pid or record.engine_pid}"))
    if Step.TAP in steps and record.has(Step.TAP) and seen.tap_exists:
        out.append(Action(Step.TAP, f"ip link del dev {name}"))
        return out
    if Step.BRIDGE in steps and record.has(Step.BRIDGE) and seen.tap_master:
        out.append(Action(Step.BRIDGE, f"ip link set dev {name} nomaster"))
    if Step.ADDRESS in steps and record.has(Step.ADDRESS):
        for address in map(str, cable.addresses):
            if address in seen.tap_addresses:
                out.append(Action(Step.ADDRESS, f"ip addr del {address} dev {name}", value=address))
    if Step.LINK_UP in steps and record.has(Step.LINK_UP) and seen.tap_up:
        out.append(Action(Step.LINK_UP, f"ip link set dev {name} down"))  # (as it was found)
    return out
