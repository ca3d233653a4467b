"""Changing links, addresses, bridges and namespaces over netlink: the only module importing
pyroute2. Reading them is linkstate.py's (the engine process does that without pyroute2).

Works with pyroute2 0.7.7 (Debian 13) and 0.9.x (PyPI). Every failure is an ActionError
that says what was being done; nothing here prints.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from typing import Any

from pyroute2 import IPRoute, NetlinkError, NetNS
from pyroute2 import netns as _netns

from rrqctl.errors import ActionError


@contextlib.contextmanager
def _route(netns: str | None = None) -> Iterator[Any]:
    ipr = IPRoute() if netns is None else NetNS(netns, flags=0)
    try:
        yield ipr
    finally:
        ipr.close()


def _fail(what: str, e: Exception) -> ActionError:
    code = getattr(e, "code", None) or getattr(e, "errno", None)
    reason = os.strerror(code) if isinstance(code, int) and code > 0 else str(e)
    return ActionError(f"{what}: {reason}")


def _index(ipr: Any, name: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise ActionError(f"{name}: no such interface")
    return int(found[0])


def create_tap(name: str, netns: str | None = None) -> None:
    """A persistent tap without packet information (as `ip tuntap add dev NAME mode tap`)."""
    with _route(netns) as ipr:
        try:
            ipr.link("add", ifname=name, kind="tuntap", mode="tap", ifr={"no_pi": 1})
            made = ipr.link("get", ifname=name)
        except NetlinkError as e:
            raise _fail(f"creating tap {name}", e) from None
    if not made or made[0].get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") != "tun":
        raise ActionError(f"creating tap {name}: it did not appear")


def create_veth(
    name: str, peer: str, netns: str | None = None, peer_netns: str | None = None
) -> None:
    with _route(netns) as ipr:
        try:
            ipr.link("add", ifname=name, kind="veth", peer=peer)
            if peer_netns is not None:
                ipr.link("set", index=_index(ipr, peer), net_ns_fd=peer_netns)
        except NetlinkError as e:
            raise _fail(f"creating veth {name}/{peer}", e) from None


def create_bridge(name: str, netns: str | None = None) -> None:
    with _route(netns) as ipr:
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except NetlinkError as e:
            raise _fail(f"creating bridge {name}", e) from None


def delete_link(name: str, netns: str | None = None) -> None:
    with _route(netns) as ipr:
        try:
            ipr.link("del", index=_index(ipr, name))
        except NetlinkError as e:
            if e.code != errno.ENODEV:
                raise _fail(f"deleting {name}", e) from None


def _set(name: str, what: str, netns: str | None, **attrs: Any) -> None:
    with _route(netns) as ipr:
        try:
            ipr.link("set", index=_index(ipr, name), **attrs)
        except NetlinkError as e:
            raise _fail(f"{what} {name}", e) from None


def set_up(name: str, netns: str | None = None) -> None:
    _set(name, "bringing up", netns, state="up")


def set_down(name: str, netns: str | None = None) -> None:
    _set(name, "taking down", netns, state="down")


def set_mac(name: str, mac: str, netns: str | None = None) -> None:
    _set(name, f"setting MAC {mac} on", netns, address=mac)


def set_mtu(name: str, mtu: int, netns: str | None = None) -> None:
    _set(name, f"setting MTU {mtu} on", netns, mtu=mtu)


def set_master(name: str, bridge: str, netns: str | None = None) -> None:
    """Make name a port of bridge (`ip link set NAME master BRIDGE`)."""
    with _route(netns) as ipr:
        br = ipr.link_lookup(ifname=bridge)
        if not br:
            raise ActionError(f"attaching {name} to bridge {bridge}: there is no {bridge}")
        try:
            ipr.link("set", index=_index(ipr, name), master=br[0])
        except NetlinkError as e:
            raise _fail(f"attaching {name} to bridge {bridge}", e) from None


def set_nomaster(name: str, netns: str | None = None) -> None:
    _set(name, "detaching from its bridge", netns, master=0)


def add_address(name: str, cidr: str, netns: str | None = None) -> None:
    addr, _, plen = cidr.partition("/")
    with _route(netns) as ipr:
        try:
            ipr.addr("add", index=_index(ipr, name), address=addr, prefixlen=int(plen or 32))
        except NetlinkError as e:
            if e.code != errno.EEXIST:
                raise _fail(f"adding address {cidr} to {name}", e) from None


def del_address(name: str, cidr: str, netns: str | None = None) -> None:
    addr, _, plen = cidr.partition("/")
    with _route(netns) as ipr:
        try:
            ipr.addr("del", index=_index(ipr, name), address=addr, prefixlen=int(plen or 32))
        except NetlinkError as e:
            if e.code != errno.EADDRNOTAVAIL:
                raise _fail(f"removing address {cidr} from {name}", e) from None


def create_netns(name: str) -> None:
    try:
        _netns.create(name)
    except OSError as e:
        raise _fail(f"creating network namespace {name}", e) from None


def delete_netns(name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        _netns.remove(name)
