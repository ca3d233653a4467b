"""Remote declarations (rrqnet(8) REMOTE DECLARATIONS): parsing, uplink vs downlink, matching.

    ipv4 block           a.b.c.d[/n][:port][=keyfile]
    plain ipv6 block     addr[/n][=keyfile]            (no port: a source mask only)
    bracketed ipv6       [addr[/n]][:port][=keyfile]
    host name            name:port[=keyfile]  or  [name]:port[=keyfile]   (an uplink)

A full-length prefix with a port is an uplink; anything else a downlink mask. A host name is
an uplink to whatever address the name has: the engine resolves it (resolver.py) and admits
its datagrams from that address and port only.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from rrqctl.engine.frames import format_mac, parse_mac

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
MULTICAST_V4 = IPv4Network("224.0.0.0/4")
UNRESOLVED = IPv4Address(0)  # a host name's address until it is resolved
_HOSTNAME = re.compile(
    r"^(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$"
)


def is_host_name(text: str) -> bool:
    """A DNS name (RFC 1123), and not something that is meant as an IPv4 address."""
    return bool(_HOSTNAME.match(text)) and not text.rstrip(".").replace(".", "").isdigit()


@dataclass(frozen=True, slots=True)
class Remote:
    """One remote declaration: the sources it admits and, for an uplink, where to send.

    The address block is kept as its first address and prefix length (`network` makes the
    ipaddress object when asked: a big configuration has tens of thousands of remotes)."""

    ip: IPAddress  # the block's first address
    prefixlen: int
    port: int | None = None
    keyfile: str | None = None
    ignore: tuple[bytes, ...] = field(default=())
    host: str | None = None  # a host name: ip is then UNRESOLVED, or where it resolved
    _text: str = field(default="", init=False, repr=False, compare=False)  # text(), once made

    @property
    def network(self) -> IPNetwork:
        return ipaddress.ip_network((int(self.ip), self.prefixlen))

    @property
    def is_uplink(self) -> bool:
        if self.host is not None:
            return True
        return self.port is not None and self.prefixlen == self.ip.max_prefixlen

    @property
    def resolved(self) -> bool:
        return self.host is None or self.ip != UNRESOLVED

    def at(self, ip: IPAddress) -> Remote:
        """A host name's declaration, resolved to ip."""
        return replace(self, ip=ip, prefixlen=ip.max_prefixlen)

    def declared(self) -> Remote:
        """The declaration as written (a resolved host name unresolved again)."""
        return self if self.host is None else replace(self, ip=UNRESOLVED, prefixlen=32)

    @property
    def kind(self) -> str:
        return "uplink" if self.is_uplink else "downlink"

    @property
    def sealed(self) -> bool:
        return self.keyfile is not None

    @property
    def address(self) -> IPAddress:
        return self.ip

    def admits(self, ip: IPAddress, port: int) -> bool:
        mine = self.ip
        if ip.version != mine.version or not self.resolved:
            return False
        shift = mine.max_prefixlen - self.prefixlen
        return int(ip) >> shift == int(mine) >> shift and (self.port is None or self.port == port)

    def text(self) -> str:
        """The declaration as rrqnet(8) writes it (without the -i list)."""
        if not self._text:
            object.__setattr__(self, "_text", self._make_text())  # (frozen: said once)
        return self._text

    def _make_text(self) -> str:
        if self.host is not None:
            key = f"={self.keyfile}" if self.keyfile is not None else ""
            return f"{self.host}:{self.port}{key}"
        ip = self.ip
        host = str(ip)
        prefix = "" if self.prefixlen == ip.max_prefixlen else f"/{self.prefixlen}"
        key = f"={self.keyfile}" if self.keyfile is not None else ""
        if ip.version == 4:
            port = f":{self.port}" if self.port is not None else ""
            return f"{host}{prefix}{port}{key}"
        if self.port is None:
            return f"{host}{prefix}{key}"
        return f"[{host}{prefix}]:{self.port}{key}"

    def argv(self) -> list[str]:
        """The declaration as rrqnet(8) arguments, with its -i list."""
        if not self.ignore:
            return [self.text()]
        return [self.text(), "-i", ",".join(format_mac(m) for m in self.ignore)]

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True, slots=True)
class Multicast:
    """The -m channel: an IPv4 multicast group joined as one persistent remote."""

    group: IPv4Address
    port: int
    keyfile: str | None = None

    @property
    def sealed(self) -> bool:
        return self.keyfile is not None

    def text(self) -> str:
        key = f"={self.keyfile}" if self.keyfile is not None else ""
        return f"{self.group}:{self.port}{key}"

    def __str__(self) -> str:
        return self.text()


def parse_port(text: str) -> int:
    if not text.isdigit():
        raise ValueError(f"port '{text}' is not a number")
    port = int(text)
    if not 1 <= port <= 65535:
        raise ValueError(f"port {port} is out of range 1-65535")
    return port


def _split_key(text: str) -> tuple[str, str | None]:
    decl, eq, key = text.partition("=")
    if eq and not key:
        raise ValueError(f"'{text}' has '=' but no key file after it")
    return decl, (key if eq else None)


def _address(text: str) -> IPAddress:
    """ipaddress.ip_address, a few times faster for a plain dotted quad (a big interfaces file
    has thousands): inet_pton is as strict, and the form must read back the same."""
    if "." in text and ":" not in text:
        with contextlib.suppress(OSError):  # (inet_pton takes dotted quads only, no 010.x)
            return IPv4Address(socket.inet_pton(socket.AF_INET, text))
    return ipaddress.ip_address(text)


def _network(text: str, version: int) -> tuple[IPAddress, int]:
    """An address block: its first address and its prefix length."""
    addr, slash, plen = text.partition("/")
    try:
        ip = _address(addr)
    except ValueError:
        kind = "an IPv4" if version == 4 else "an IPv6"
        raise ValueError(f"'{addr}' is not {kind} address") from None
    if ip.version != version:
        raise ValueError(f"'{addr}' is not an IPv{version} address")
    maxlen = ip.max_prefixlen
    if not slash:
        return ip, maxlen
    if not plen.isdigit() or not 0 <= int(plen) <= maxlen:
        raise ValueError(f"prefix length '{plen}' is out of range 0-{maxlen}")
    n = int(plen)
    first = int(ip) >> (maxlen - n) << (maxlen - n)  # the host bits cleared (10.2.3.4/16)
    return type(ip)(first), n


def parse_remote(text: str, ignore: tuple[bytes, ...] = ()) -> Remote:
    """Parse one remote declaration; ValueError says what is wrong with it."""
    text = text.strip()
    if not text:
        raise ValueError("empty remote declaration")
    decl, keyfile = _split_key(text)
    port: int | None = None
    if decl.startswith("["):
        inner, close, rest = decl[1:].partition("]")
        if not close:
            raise ValueError(f"'{decl}' has no closing ']'")
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"unexpected '{rest}' after ']' (want ]:port)")
            port = parse_port(rest[1:])
        if is_host_name(inner):
            return _named(inner, port, keyfile, ignore)
        ip, plen = _network(inner, 6)
    elif decl.count(":") >= 2:
        ip, plen = _network(decl, 6)
    else:
        addr, colon, port_text = decl.partition(":")
        if colon:
            port = parse_port(port_text)
        try:
            ip, plen = _network(addr, 4)
        except ValueError:
            if is_host_name(addr):
                return _named(addr, port, keyfile, ignore)
            raise
    return Remote(ip, plen, port, keyfile, ignore)


def _named(host: str, port: int | None, keyfile: str | None, ignore: tuple[bytes, ...]) -> Remote:
    if port is None:
        raise ValueError(
            f"'{host}' is a host name: it needs a port (name:port); a mask is addresses only"
        )
    return Remote(UNRESOLVED, 32, port, keyfile, ignore, host=host.rstrip(".") or host)


def parse_ignore_list(text: str) -> tuple[bytes, ...]:
    """The -i argument: a comma separated list of MAC addresses."""
    macs = [m for m in text.split(",") if m]
    if not macs:
        raise ValueError("-i needs a comma separated list of MAC addresses")
    return tuple(parse_mac(m) for m in macs)


def parse_multicast(text: str) -> Multicast:
    """-m ipv4:port[=keyfile]; the group must be an IPv4 multicast address."""
    decl, keyfile = _split_key(text.strip())
    addr, colon, port_text = decl.partition(":")
    if not colon:
        raise ValueError(f"multicast channel '{text}' needs a port (ipv4:port[=keyfile])")
    try:
        group = IPv4Address(addr)
    except ValueError:
        raise ValueError(f"'{addr}' is not an IPv4 address") from None
    if group not in MULTICAST_V4:
        hint = ""
        first = int(addr.split(".")[0])
        if 240 <= first <= 249:  # the man page's own example writes 244.0.2.1
            hint = f"; did you mean {first - 20}{addr[len(str(first)) :]}?"
        raise ValueError(f"{group} is not an IPv4 multicast address (224.0.0.0/4){hint}")
    return Multicast(group, parse_port(port_text), keyfile)


def best_match(
    remotes: tuple[Remote, ...] | list[Remote], ip: IPAddress, port: int
) -> Remote | None:
    """The declaration that admits (ip, port): longest prefix first, then declaration order
    (a resolved host name admits its address as a full-length prefix does)."""
    found: Remote | None = None
    for r in remotes:
        if r.admits(ip, port) and (found is None or r.prefixlen > found.prefixlen):
            found = r
    return found


def endpoint_name(ip: IPAddress, port: int) -> str:
    """'10.0.0.1:3636' or '[fd::1]:3636': how a channel to one endpoint is named."""
    return f"[{ip}]:{port}" if ip.version == 6 else f"{ip}:{port}"


def unmap(ip: IPAddress) -> IPAddress:
    """An IPv4-mapped IPv6 address (from a dual-stack socket) as the IPv4 address it is."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip
