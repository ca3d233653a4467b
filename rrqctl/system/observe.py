"""Looking at the host for one cable: its tap, bridge, engine and dhclient (no pyroute2)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rrqctl.plan import Observed
from rrqctl.system import linkstate, proc
from rrqctl.system.paths import Paths

if TYPE_CHECKING:
    from rrqctl.model import Cable


def observe_cable(cable: Cable, paths: Paths) -> Observed:
    return observe(cable.name, paths, tap=cable.local == "tap", bridge=cable.bridge)


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
