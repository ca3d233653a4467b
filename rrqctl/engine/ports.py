"""The I/O ends of a cable: tap, stdio (VDE stream framing), the UDP socket, multicast.

Ports only move bytes; what goes where is the switch's business.
"""

from __future__ import annotations

import errno
import hashlib
import os
import socket
import struct
import sys
import time
from collections import deque
from ipaddress import IPv4Address, IPv6Address

from rrqctl.engine.frames import ETH_HLEN
from rrqctl.engine.gro import PLAIN, VNET_HDR_LEN
from rrqctl.engine.pmtu import set_df
from rrqctl.engine.remotes import IPAddress, Multicast
from rrqctl.system import tun

# Linux socket options the socket module does not name
UDP_SEGMENT, UDP_GRO = 103, 104  # UDP GSO (send many datagrams in one call) and GRO (receive them)
GSO_MAX_SEGMENTS = 64
GSO_MAX_BYTES = 65000
GRO_CMSG = socket.CMSG_SPACE(4)
SOCKET_BUFFER = 4 << 20  # a GSO burst is up to 64 datagrams: room for dozens of them
SO_SNDBUFFORCE, SO_RCVBUFFORCE = 32, 33

UDP_MAX = 65507  # the largest UDP payload over IPv4
RECV_SIZE = 65536
STDIO_BACKLOG = 1 << 20  # bytes of frames waiting for a slow stdout before we drop

NO_GSO_FOR = 300.0  # s: a destination whose path refused a GSO send gets single sends
NO_GSO_LIMIT = 1024

SockKey = tuple[str, int]


class SendError(OSError):
    """A send of several datagrams failed part-way: `unsent` of them were not sent."""

    def __init__(self, error: OSError, unsent: int) -> None:
        super().__init__(error.errno, error.strerror)
        self.unsent = unsent


def sockaddr(ip: IPAddress, port: int, family: int) -> SockKey:
    """The (host, port) a socket of `family` reports for ip:port (v4-mapped on a v6 socket)."""
    if family == socket.AF_INET6 and isinstance(ip, IPv4Address):
        return (f"::ffff:{ip}", port)
    return (str(ip), port)


def peer_ip(host: str) -> IPAddress:
    """The address of a datagram's source, IPv4-mapped addresses unmapped."""
    if ":" not in host:
        return IPv4Address(host)
    ip6 = IPv6Address(host.partition("%")[0])
    return ip6.ipv4_mapped or ip6


class TapPort:
    """A tap device, opened with a virtio_net_hdr so runs of TCP segments can be written as
    one super-frame (see gro.py). Reads ask for no offloads: frames come complete. Writes to
    a tap that is down fail with EIO, which callers count."""

    kind = "tap"

    def __init__(self, name: str, fd: int | None = None) -> None:
        """Open tap `name`, or adopt fd: the same tap, opened so by an engine before us."""
        self.name = name
        if fd is None:
            self.fd = tun.open_tap(name, vnet_hdr=True)
        else:
            self.fd = tun.adopt_tap(fd, name, vnet_hdr=True)
        tun.set_vnet_hdr_size(self.fd, VNET_HDR_LEN)
        tun.set_offload(self.fd, 0)

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes | None:
        try:
            data = os.read(self.fd, RECV_SIZE + VNET_HDR_LEN)
        except BlockingIOError:
            return None
        return data[VNET_HDR_LEN:]

    def write(self, frame: bytes) -> None:
        os.writev(self.fd, (PLAIN, frame))

    def writev(self, iov: list[bytes | memoryview]) -> None:
        os.writev(self.fd, iov)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class StdioPort:
    """stdin/stdout as a VDE plug stream: each frame preceded by its 2-byte big-endian length."""

    kind = "stdio"

    def __init__(self, rfd: int = 0, wfd: int = 1) -> None:
        self.name = "stdio"
        self.fd = rfd
        self.wfd = wfd
        os.set_blocking(rfd, False)
        os.set_blocking(wfd, False)
        self._inbuf = bytearray()
        self._frames: deque[bytes] = deque()
        self._outbuf = bytearray()
        self.eof = False
        self.runts = 0

    def fileno(self) -> int:
        return self.fd

    def read(self) -> bytes | None:
        """The next whole frame, or None when none is complete yet (self.eof at end of stream)."""
        if self._frames:
            return self._frames.popleft()
        try:
            data = os.read(self.fd, RECV_SIZE)
        except BlockingIOError:
            return None
        if not data:
            self.eof = True
            return None
        self._inbuf += data
        self._split()
        return self._frames.popleft() if self._frames else None

    def _split(self) -> None:
        buf = self._inbuf
        pos = 0
        while len(buf) - pos >= 2:
            (n,) = struct.unpack_from(">H", buf, pos)
            if n > UDP_MAX:
                self.eof = True  # a protocol error: end the stream cleanly
                break
            if len(buf) - pos - 2 < n:
                break
            if n >= ETH_HLEN:
                self._frames.append(bytes(buf[pos + 2 : pos + 2 + n]))
            elif n:
                self.runts += 1
            pos += 2 + n
        del buf[:pos]

    def write(self, frame: bytes) -> None:
        if len(self._outbuf) > STDIO_BACKLOG:
            raise BlockingIOError(errno.EAGAIN, "stdout backlog full")
        self._outbuf += struct.pack(">H", len(frame)) + frame
        self.flush()

    def flush(self) -> None:
        while self._outbuf:
            try:
                n = os.write(self.wfd, self._outbuf)
            except BlockingIOError:
                return
            del self._outbuf[:n]

    @property
    def pending(self) -> bool:
        return bool(self._outbuf)

    def close(self) -> None:
        self.flush()


def _enable(s: socket.socket, level: int, option: int, value: int) -> bool:
    try:
        s.setsockopt(level, option, value)
    except OSError:
        return False
    return True


class UdpPort:
    """The cable's UDP socket: dual-stack IPv6 with v4-mapped addresses, or IPv4 only (-4).

    Datagrams for one destination go out in as few calls as UDP GSO allows (runs of equal
    size); received GRO batches are split back into datagrams. Peers see plain datagrams.
    """

    def __init__(
        self,
        port: int,
        ipv4_only: bool = False,
        source: IPAddress | None = None,
        *,
        df: bool = False,
    ) -> None:
        """df: send with don't-fragment, and fail with EMSGSIZE past the path MTU (pmtu.py);
        else let big datagrams fragment, as rrqnet does."""
        self.family = socket.AF_INET if ipv4_only else socket.AF_INET6
        s = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            if self.family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            set_df(s, self.family, df)
            host = "" if source is None else sockaddr(source, port, self.family)[0]
            s.bind((host, port))
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.port = port
        for force, plain in (
            (SO_RCVBUFFORCE, socket.SO_RCVBUF),
            (SO_SNDBUFFORCE, socket.SO_SNDBUF),
        ):
            if not _enable(s, socket.SOL_SOCKET, force, SOCKET_BUFFER):  # root ignores rmem_max
                _enable(s, socket.SOL_SOCKET, plain, SOCKET_BUFFER)
        self.gso = _enable(s, socket.SOL_UDP, UDP_SEGMENT, 0)
        self.gro = _enable(s, socket.SOL_UDP, UDP_GRO, 1)
        self._no_gso: dict[SockKey, float] = {}  # destinations whose path refused GSO, since

    def recv(self) -> tuple[list[bytes], SockKey]:
        """One datagram, or a GRO batch split into its datagrams; BlockingIOError when none."""
        data, anc, _, addr = self.sock.recvmsg(RECV_SIZE, GRO_CMSG)
        for level, kind, value in anc:  # a GRO batch comes with its datagrams' size
            if level == socket.SOL_UDP and kind == UDP_GRO:
                size = int.from_bytes(value[:4], sys.byteorder)
                if 0 < size < len(data):  # slices stop at the end: the last may be shorter
                    key = (addr[0], addr[1])
                    return [data[i : i + size] for i in range(0, len(data), size)], key
        return [data], (addr[0], addr[1])

    def send(self, datagrams: list[bytes], addr: SockKey) -> None:
        """Send datagrams to addr in order; runs of equal size as one GSO call. SendError
        says how many were not sent when a call fails part-way."""
        sock = self.sock
        n = len(datagrams)
        i = 0
        try:
            if not self.gso or n == 1 or self._gso_refused(addr):
                for i, d in enumerate(datagrams):  # noqa: B007  (i: for the error)
                    sock.sendto(d, addr)
                return
            while i < n:
                j = self._run_end(datagrams, i)
                if j - i == 1 or not datagrams[i]:
                    sock.sendto(datagrams[i], addr)
                    j = i + 1
                else:
                    self._gso(datagrams[i:j], len(datagrams[i]), addr)
                i = j
        except OSError as e:
            raise SendError(e, n - i) from e

    @staticmethod
    def _run_end(datagrams: list[bytes], i: int) -> int:
        """Where the GSO run that starts at i ends: equal sizes, the last one perhaps shorter."""
        n = len(datagrams)
        size = len(datagrams[i])
        j = i + 1
        limit = min(n, i + GSO_MAX_SEGMENTS, i + GSO_MAX_BYTES // max(size, 1))
        while j < limit and len(datagrams[j]) == size:
            j += 1
        if j < limit and 0 < len(datagrams[j]) < size:
            j += 1  # the last segment of a GSO send may be shorter
        return j

    def _gso_refused(self, addr: SockKey) -> bool:
        since = self._no_gso.get(addr)
        if since is None:
            return False
        if time.monotonic() - since < NO_GSO_FOR:
            return True
        del self._no_gso[addr]  # the path may have changed: try again
        return False

    def _gso(self, run: list[bytes], size: int, addr: SockKey) -> None:
        try:
            self.sock.sendmsg(
                run, [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("=H", size))], 0, addr
            )
        except OSError as e:
            if e.errno not in (errno.EINVAL, errno.EMSGSIZE, errno.EIO, errno.EOPNOTSUPP):
                raise
            self._no_gso[addr] = time.monotonic()  # this path will not take it, for now
            if len(self._no_gso) > NO_GSO_LIMIT:
                del self._no_gso[next(iter(self._no_gso))]
            for k, d in enumerate(run):
                try:
                    self.sock.sendto(d, addr)
                except OSError as e2:
                    raise SendError(e2, len(run) - k) from e2

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()


class McastPort:
    """The -m channel, as QEMU's multicast socket netdev sets it up (so QEMU is a peer)."""

    ECHO_MEMORY = 256

    def __init__(self, mc: Multicast) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((str(mc.group), mc.port))
            mreq = struct.pack("4s4s", mc.group.packed, socket.inet_aton("0.0.0.0"))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            s.setblocking(False)
        except OSError:
            s.close()
            raise
        self.sock = s
        self.addr: SockKey = (str(mc.group), mc.port)
        self.family = socket.AF_INET
        self._sent: deque[bytes] = deque(maxlen=self.ECHO_MEMORY)

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self) -> tuple[list[bytes], SockKey]:
        data, addr = self.sock.recvfrom(RECV_SIZE)
        return [data], (addr[0], addr[1])

    def send(self, datagrams: list[bytes], addr: SockKey) -> None:
        for d in datagrams:
            self.sock.sendto(d, addr)
            self.remember(d)

    def remember(self, datagram: bytes) -> None:
        """Note a datagram we sent: with multicast loop on, it comes back to us."""
        self._sent.append(hashlib.blake2b(datagram, digest_size=8).digest())

    def is_echo(self, datagram: bytes) -> bool:
        d = hashlib.blake2b(datagram, digest_size=8).digest()
        if d in self._sent:
            self._sent.remove(d)
            return True
        return False

    def close(self) -> None:
        self.sock.close()
