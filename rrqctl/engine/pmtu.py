"""Frames that fit one datagram: the path MTU to a remote, and what room that leaves a frame.

A frame crosses the cable as one UDP datagram. On a path of MTU M, an IPv4 underlay leaves
M - 20 - 8 bytes for it (IPv6: M - 40 - 8), and a sealed channel takes 32 of those (40 on a
multicast channel). The tap a cable makes gets the MTU whose largest frame (14 bytes of
Ethernet header more) fits on the route to every remote; the engine sends with DF set and
learns each remote's path MTU as the kernel does (from the route, EMSGSIZE, ICMP), so no
frame is ever cut into IP fragments.

The path MTU is asked of the kernel with a UDP socket connected to the remote: connecting
sends nothing, and IP_MTU then says what the route (and any PMTU the kernel learned) allows.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Iterable

from rrqctl.engine.frames import ETH_HLEN
from rrqctl.engine.remotes import IPAddress, Remote

IP_MTU_DISCOVER, IPV6_MTU_DISCOVER = 10, 23
PMTUDISC_DONT, PMTUDISC_DO = 0, 2
IP_MTU, IPV6_MTU = 14, 24
UDP_HLEN = 8
MIN_TAP_MTU = 576  # below this a tap carries no useful IPv4; IPv6 wants 1280
MAX_TAP_MTU = 65521
# a mask of /0 is reached by the default route: ask the route to an address no host has
DEFAULT_ROUTE_PROBE = {
    4: ipaddress.ip_address("198.51.100.1"),
    6: ipaddress.ip_address("2001:db8::1"),
}


def ip_overhead(ip: IPAddress) -> int:
    """IP and UDP header bytes of a datagram to ip."""
    return (20 if ip.version == 4 else 40) + UDP_HLEN


def path_mtu(ip: IPAddress) -> int | None:
    """What the kernel says the path MTU to ip is (None if it has no route to it)."""
    family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
    s = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if ip.version == 4:
            s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, PMTUDISC_DO)
        else:
            s.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, PMTUDISC_DO)
        s.connect((str(ip), 9))
        level, opt = (
            (socket.IPPROTO_IP, IP_MTU) if ip.version == 4 else (socket.IPPROTO_IPV6, IPV6_MTU)
        )
        mtu: int = s.getsockopt(level, opt)
    except OSError:
        return None
    finally:
        s.close()
    return mtu


def frame_room(ip: IPAddress, overhead: int, mtu: int | None = None) -> int | None:
    """The largest frame that one datagram to ip carries whole (overhead: what sealing adds)."""
    mtu = path_mtu(ip) if mtu is None else mtu
    if mtu is None:
        return None
    return mtu - ip_overhead(ip) - overhead


def probe_address(r: Remote) -> IPAddress:
    """An address the route to remote r goes by (a mask's: one inside it)."""
    net = r.network
    if net.prefixlen == 0:
        return DEFAULT_ROUTE_PROBE[net.version]
    if net.prefixlen == net.max_prefixlen:
        return net.network_address
    return net.network_address + 1


def tap_mtu(rooms: Iterable[int | None]) -> int | None:
    """The tap MTU whose largest frame fits every room (None when nothing is known)."""
    known = [r for r in rooms if r is not None]
    if not known:
        return None
    return max(MIN_TAP_MTU, min(MAX_TAP_MTU, min(known) - ETH_HLEN))


def set_df(sock: socket.socket, family: int, on: bool) -> None:
    """Datagrams with DF (and errors for ones too big for the path), or fragments allowed."""
    value = PMTUDISC_DO if on else PMTUDISC_DONT
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, value)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER, value)
