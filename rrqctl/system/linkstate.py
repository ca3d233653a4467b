"""Reading links and addresses over rtnetlink with the standard library: no pyroute2.

The long-running engine process looks at its tap every few seconds. Importing pyroute2
for that would add about 14 MB to every engine, so reads go through this small
rtnetlink client; every change to the host still goes through netlink.py (pyroute2).
Netlink, not /sys/class/net: sysfs shows the network namespace of whoever mounted it,
netlink the namespace of the process asking.
"""

from __future__ import annotations

import errno
import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from rrqctl.errors import ActionError

NLMSG = struct.Struct("=IHHII")  # length, type, flags, sequence, port id
IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
IFADDRMSG = struct.Struct("=BBBBI")  # family, prefix length, flags, scope, index
RTATTR = struct.Struct("=HH")  # length, type
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_DELADDR, RTM_GETADDR = 20, 21, 22
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO = 1, 3, 4, 10, 18
IFLA_INFO_KIND = 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
IFF_UP = 0x1
RECV_SIZE = 1 << 16

_sequence = itertools.count(1)


@dataclass(frozen=True)
class LinkState:
    """What the kernel says about one interface (the parts the health checks look at)."""

    name: str
    index: int
    kind: str | None  # 'tun' for a tap, 'bridge', 'veth', ...
    up: bool  # administratively up
    mac: str
    mtu: int
    master: int | None  # ifindex of the bridge it is a port of


def link(name: str) -> LinkState | None:
    """The link called name, or None if there is none."""
    name_attr = _attr(IFLA_IFNAME, name.encode() + b"\0")
    found = _request(RTM_GETLINK, IFINFOMSG.pack(0, 0, 0, 0, 0) + name_attr, f"looking up {name}")
    return _link(found[0]) if found else None


def link_by_index(index: int) -> LinkState | None:
    found = _request(RTM_GETLINK, IFINFOMSG.pack(0, 0, index, 0, 0), f"looking up link {index}")
    return _link(found[0]) if found else None


def addresses(index: int) -> list[str]:
    """The addresses on the link with this ifindex, as CIDR strings (10.0.0.1/24)."""
    out = []
    for body in _request(RTM_GETADDR, IFADDRMSG.pack(0, 0, 0, 0, 0), "listing addresses", True):
        family, prefix, _, _, where = IFADDRMSG.unpack_from(body)
        if where != index:
            continue
        attrs = dict(_attrs(body, IFADDRMSG.size))
        raw = attrs.get(IFA_LOCAL, attrs.get(IFA_ADDRESS))  # IFA_ADDRESS is the peer on ptp
        if raw is not None and family in (socket.AF_INET, socket.AF_INET6):
            out.append(f"{ipaddress.ip_address(raw)}/{prefix}")
    return out


def _link(body: bytes) -> LinkState:
    _, _, index, flags, _ = IFINFOMSG.unpack_from(body)
    attrs = dict(_attrs(body, IFINFOMSG.size))
    info = dict(_attrs(attrs.get(IFLA_LINKINFO, b""), 0))
    kind = info.get(IFLA_INFO_KIND)
    master = attrs.get(IFLA_MASTER)
    mtu = attrs.get(IFLA_MTU)
    return LinkState(
        name=attrs.get(IFLA_IFNAME, b"").rstrip(b"\0").decode(),
        index=index,
        kind=kind.rstrip(b"\0").decode() if kind else None,
        up=bool(flags & IFF_UP),
        mac=":".join(f"{b:02x}" for b in attrs.get(IFLA_ADDRESS, b"")),
        mtu=struct.unpack("=I", mtu)[0] if mtu else 0,
        master=(struct.unpack("=I", master)[0] or None) if master else None,
    )


def _attr(kind: int, value: bytes) -> bytes:
    length = RTATTR.size + len(value)
    return RTATTR.pack(length, kind) + value + bytes(-length % 4)


def _attrs(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    while offset + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, offset)
        if length < RTATTR.size:
            return
        yield kind & 0x3FFF, data[offset + RTATTR.size : offset + length]  # without NLA_F_ flags
        offset += (length + 3) & ~3


def _request(kind: int, payload: bytes, what: str, dump: bool = False) -> list[bytes]:
    """Send one request; the bodies of its answers ([] when the kernel says ENODEV)."""
    seq = next(_sequence)
    flags = NLM_F_REQUEST | (NLM_F_DUMP if dump else 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as s:
        s.sendto(NLMSG.pack(NLMSG.size + len(payload), kind, flags, seq, 0) + payload, (0, 0))
        try:
            return list(_answers(s, seq, dump))
        except OSError as e:
            if e.errno == errno.ENODEV:
                return []
            raise ActionError(f"{what}: {e.strerror}") from None


def _answers(s: socket.socket, seq: int, dump: bool) -> Iterator[bytes]:
    while True:
        for kind, got, body in _messages(s.recv(RECV_SIZE)):
            if got != seq:
                continue
            if kind == NLMSG_DONE:
                return
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", body)[0]
                if code:
                    raise OSError(code, os.strerror(code))
                return
            yield body
            if not dump:
                return


def _messages(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """The netlink messages in one datagram: (type, sequence number, body)."""
    offset = 0
    while offset + NLMSG.size <= len(data):
        length, kind, _, seq, _ = NLMSG.unpack_from(data, offset)
        if length < NLMSG.size:
            raise OSError(errno.EBADMSG, "malformed netlink message")
        yield kind, seq, data[offset + NLMSG.size : offset + length]
        offset += (length + 3) & ~3


class LinkWatch:
    """The kernel's announcements of link and address changes, for a poll loop: the health
    checks look again as soon as something happens to their link, not at the next period."""

    GROUPS = 0x1 | 0x10 | 0x100  # RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR

    def __init__(self, name: str) -> None:
        self.name = name
        flags = socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
        self.sock = socket.socket(socket.AF_NETLINK, flags, socket.NETLINK_ROUTE)
        try:
            self.sock.bind((0, self.GROUPS))
            found = link(name)  # after the bind: a change from now on is announced
        except (OSError, ActionError):
            self.sock.close()
            raise
        self.index = found.index if found is not None else None

    def fileno(self) -> int:
        return self.sock.fileno()

    def changed(self) -> bool:
        """Drain what was announced: True if any of it was about our link or its addresses,
        or if announcements were lost (the socket's buffer overran)."""
        hit = False
        while True:
            try:
                data = self.sock.recv(RECV_SIZE)
                # every message, not up to the first hit: a tap made again moves the index
                about = [self._about(kind, body) for kind, _, body in _messages(data)]
                hit = hit or True in about
            except BlockingIOError:
                return hit
            except OSError as e:  # lost or unreadable announcements: look anyway
                if e.errno != errno.ENOBUFS:
                    return True
                hit = True

    def _about(self, kind: int, body: bytes) -> bool:
        if kind in (RTM_NEWLINK, RTM_DELLINK) and len(body) >= IFINFOMSG.size:
            attrs = dict(_attrs(body, IFINFOMSG.size))
            if attrs.get(IFLA_IFNAME, b"").rstrip(b"\0") != self.name.encode():
                return False
            self.index = IFINFOMSG.unpack_from(body)[2]  # a tap made again has a new one
            return True
        if kind in (RTM_NEWADDR, RTM_DELADDR) and len(body) >= IFADDRMSG.size:
            return self.index is not None and IFADDRMSG.unpack_from(body)[4] == self.index
        return False

    def close(self) -> None:
        self.sock.close()
