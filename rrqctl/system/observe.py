"""Looking at the host for one cable: its tap, bridge, engine and dhclient (no pyroute2)."""

from __future__ import annotations

import socket
from dataclasses import replace
from typing import TYPE_CHECKING

from rrqctl.aspects import Observed
from rrqctl.engine import pmtu
from rrqctl.engine.group import OVERHEAD as GROUP_OVERHEAD
from rrqctl.engine.resolver import lookup
from rrqctl.engine.transport import OVERHEAD as SEALED_OVERHEAD
from rrqctl.system import linkstate, proc
from rrqctl.system.paths import Paths

if TYPE_CHECKING:
    from rrqctl.model import Cable


def observe_cable(cable: Cable, paths: Paths) -> Observed:
    seen = observe(cable.name, paths, tap=cable.local == "tap", bridge=cable.bridge)
    if cable.local == "tap" and not seen.tap_exists and cable.mtu is None:
        seen = replace(seen, fitting_mtu=fitting_mtu(cable) or 0)
    return seen


def fitting_mtu(cable: Cable) -> int | None:
    """The tap MTU whose largest frame fits one datagram on the route to every remote (the
    multicast group's too), sealing's overhead counted (engine/pmtu.py)."""
    rooms = []
    for r in cable.remotes:
        overhead = SEALED_OVERHEAD if r.keyfile else 0
        if r.host is None:
            rooms.append(pmtu.frame_room(pmtu.probe_address(r), overhead))
        else:
            answer = lookup(r.host, socket.AF_INET if cable.ipv4_only else socket.AF_UNSPEC)
            if not isinstance(answer, str):
                rooms.append(pmtu.frame_room(answer[0], overhead))
    mc = cable.multicast
    if mc is not None:
        rooms.append(pmtu.frame_room(mc.group, GROUP_OVERHEAD if mc.keyfile else 0))
    return pmtu.tap_mtu(rooms)


def observe(name: str, paths: Paths, *, tap: bool = True, bridge: str | None = None) -> Observed:
    """The host as it is now for cable name (tap: it has one; bridge: the one it belongs in)."""
    link = linkstate.link(name) if tap else None
    master = linkstate.link_by_index(link.master) if link is not None and link.master else None
    bridge_ok = True
    if bridge:
        br = linkstate.link(bridge)
        bridge_ok = br is not None and br.kind == "bridge"
    return Observed(
        tap_exists=link is not None,
        tap_is_tap=link is None or link.kind == "tun",
        tap_up=bool(link and link.up),
        tap_mac=link.mac if link else "",
        tap_mtu=link.mtu if link else 0,
        tap_master=master.name if master else None,
        tap_addresses=tuple(linkstate.addresses(link.index)) if link else (),
        bridge_exists=bridge_ok,
        engine_pid=proc.read_pidfile(paths.pidfile(name)),
        dhclient_pid=proc.read_pidfile(paths.dhclient_pid(name)),
    )
