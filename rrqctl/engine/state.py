"""The datapath's state, and what every part of it uses: its ports and tables, watching fds,
sending datagrams, measuring paths. The loop (loop.py) is this, plus the inbound side
(inbound.py: what arrives, from the tap and from the network) and the outbound side
(outbound.py: switching frames and sending them on).
"""

from __future__ import annotations

import errno
import logging
import os
import queue
import select
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from rrqctl.engine import group, pmtu, transport
from rrqctl.engine.channels import Channel, Kind
from rrqctl.engine.fastpath import FastPath
from rrqctl.engine.frames import ETH_HLEN, HEARTBEAT_MAX, MAX_FRAME
from rrqctl.engine.gro import Coalescer
from rrqctl.engine.handshake import TokenBucket
from rrqctl.engine.peers import Peers
from rrqctl.engine.ports import (
    McastPort,
    SendError,
    SockKey,
    StdioPort,
    TapPort,
    UdpPort,
    peer_ip,
)
from rrqctl.engine.remotes import Remote
from rrqctl.engine.stats import Drops, RateLimitedLog
from rrqctl.engine.switch import Switch

if TYPE_CHECKING:
    from rrqctl.engine.settings import EngineSettings

TRACE = 5
logging.addLevelName(TRACE, "TRACE")
TICK = 1.0
DEFAULT_BATCH = 64
# A wake this long after the previous one, when that one found a lone frame, is interactive
# traffic: handle one frame and go back to epoll, which is level-triggered and wakes us at once
# if more is waiting, instead of draining to EAGAIN (a syscall and an exception, each costly on
# an interpreter whose caches went cold while it slept). A lone frame also skips the batching
# (the per-channel queues, the route cache and the coalescer): it is sent or written at once,
# on a path of few steps, since each step of Python costs many times more just after a sleep.
LONE_GAP = 0.001
TPG_RANGE = (1461, 1477)
ICMP_PER_SECOND = 1000.0  # answers to frames too big, at most (as a router's are limited)
PMTU_EVERY = 30.0  # s: every remote's path MTU is asked of the kernel again
TPG_SIZE = 1478

# Drop reasons owned by the loop (the switch, peers and sessions have their own)
RUNT = "runt"
TOO_BIG = "too-big"  # a frame bigger than one datagram on the path carries
TAP_DOWN = "tap-down"
LOCAL_BUSY = "local-busy"
SEND_ERROR = "send-error"

LocalPort = TapPort | StdioPort
Forward = Callable[[bytes, Channel, float], None]  # a frame from a channel, at a time


class EngineState:
    """A running cable's ports, switch, channels and counters."""

    def __init__(
        self,
        settings: EngineSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
        stdio_fds: tuple[int, int] = (0, 1),
        tap_fd: int | None = None,
    ) -> None:
        """tap_fd: the tap, as an engine before this one opened it (kept across its death)."""
        self.settings = settings
        self.clock = clock
        self.log = log or logging.getLogger("rrqctl.engine")
        self._stdio_fds = stdio_fds
        self._tap_fd = tap_fd
        self.switch = Switch()
        self.drops = Drops()
        self.batch = settings.buffers or DEFAULT_BATCH
        self.local: Channel | None = None
        self.local_port: LocalPort | None = None
        self.udp: UdpPort | None = None
        self.mcast: McastPort | None = None
        self.mcast_channel: Channel | None = None
        self.mcast_rx: group.GroupReceiver | None = None  # a sealed group's other members
        self._ratelog = RateLimitedLog(self.log)
        self.peers = Peers(self.switch, self.drops, self.log, self._send_own, settings.freshness)
        self.peers.on_added = self.measure
        self._icmp_budget = TokenBucket(ICMP_PER_SECOND, ICMP_PER_SECOND)
        self._mss4 = self._mss6 = 0  # clamp TCP SYNs' MSS to these (0: no clamping)
        self._measured = 0.0
        self._periodic: list[list[Any]] = []  # [interval, fn, next_due]
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], Future[Any]]] = queue.SimpleQueue()
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._poll = select.epoll()
        self._handlers: dict[int, Callable[[], None]] = {}
        self._out: dict[Channel, list[bytes]] = {}  # per channel, sent at the end of a drain
        self._gro: Coalescer | None = None  # frames for a tap, coalesced at flush
        self._fp: FastPath | None = None  # the C datapath (fastpath.py), when it runs
        # the last forwarding decision (valid within one drain, while the MAC table is unchanged)
        self._rc_src: Channel | None = None
        self._rc_hdr = b""
        self._rc_route: list[Channel] | str = ""
        self._rc_version = -1
        # the last drain brought a lone frame: latency first (see LONE_GAP)
        self._lone_local = self._lone_udp = True
        self._local_woke = self._udp_woke = 0.0
        self._stopping = False
        self.failure: str | None = None
        self.started = time.time()
        self.on_local_lost: Callable[[OSError], None] | None = None
        self._trace = self.log.isEnabledFor(TRACE)

    @property
    def by_addr(self) -> dict[SockKey, Channel]:
        return self.peers.by_addr

    @property
    def remotes(self) -> tuple[Remote, ...]:
        return self.peers.remotes

    def measure(self, ch: Channel) -> None:
        """ch's path MTU as the kernel knows it, and the largest frame that fits (pmtu.py)."""
        if not self.settings.pmtu or ch.kind is Kind.LOCAL:
            return
        ip = peer_ip(ch.addr[0])
        mtu = pmtu.path_mtu(ip)
        ch.path_mtu = mtu
        room = None if mtu is None else mtu - pmtu.ip_overhead(ip) - overhead_of(ch)
        ch.max_frame = room if room and room > ETH_HLEN else MAX_FRAME
        self._clamp_to_paths()

    def _clamp_to_paths(self) -> None:
        clamp = self.settings.mss_clamp
        if clamp:
            self._mss4 = self._mss6 = clamp
            return
        rooms = [c.max_frame for c in self.switch.channels if c.max_frame < MAX_FRAME]
        if clamp is None or not rooms:
            self._mss4 = self._mss6 = 0
            return
        self._mss4 = min(rooms) - ETH_HLEN - 40  # IPv4 and TCP headers
        self._mss6 = self._mss4 - 20

    def _fast_stop(self) -> None:
        """Back to Python alone (before a port the C datapath uses is closed)."""
        if self._fp is not None:
            self._fp.stop()
            self._fp = None
            self.peers.sealing.box = transport.PyBox  # (C's Boxes still work in Python)

    def _cache(self, frame: bytes, src: Channel, out: Channel) -> None:
        """Hand a unicast decision between two channels to the C datapath, which repeats it
        while the MAC table is unchanged (nothing that C does not do may apply to it)."""
        fp = self._fp
        if (
            fp is not None
            and not frame[0] & 1
            and src.group is None
            and out.group is None
            and src.kind is not Kind.MULTICAST
            and out.kind is not Kind.MULTICAST
            and not self._mss4
            and not self.settings.tpg
            and not self._trace
        ):
            fp.cache(src, frame[:12], out)

    def watch(self, fd: int, handler: Callable[[], None]) -> None:
        """Call handler in the loop thread whenever fd is readable."""
        self._handlers[fd] = handler
        self._poll.register(fd, select.EPOLLIN)

    def _unwatch(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is not None:
            self._poll.unregister(fd)

    def stop(self, failure: str | None = None) -> None:
        """Ask the loop to end (any thread, or a signal handler); failure says what broke."""
        if failure and self.failure is None:
            self.failure = failure
        self._stopping = True
        if self._wake >= 0:
            os.eventfd_write(self._wake, 1)

    def _send(self, ch: Channel, datagrams: list[bytes]) -> bool:
        port: UdpPort | McastPort | None = self.mcast if ch.kind is Kind.MULTICAST else self.udp
        assert port is not None
        try:
            port.send(datagrams, ch.addr)
        except SendError as e:
            self._send_failed(ch, e, e.unsent)
            return False
        except OSError as e:
            self._send_failed(ch, e)
            return False
        return True

    def _send_own(self, ch: Channel | None, addr: SockKey, data: bytes) -> None:
        """A datagram of the engine's own (a handshake, a reply, a keepalive) to addr."""
        if self.udp is None:
            return
        try:
            self.udp.sock.sendto(data, addr)
        except OSError as e:
            if ch is not None:
                self._send_failed(ch, e)
            else:
                self.drops.count(SEND_ERROR)

    def _send_failed(self, ch: Channel, e: OSError, lost: int = 1) -> None:
        """Count each datagram lost (a failed batch loses what it had not sent yet). EMSGSIZE:
        the kernel learned a smaller path MTU (ICMP from the path): learn it too."""
        reason = SEND_ERROR
        if e.errno == errno.EMSGSIZE and self.settings.pmtu:
            reason = TOO_BIG
            self.measure(ch)
        for _ in range(lost):
            self.drops.count(reason)
            ch.drop(reason)
        if reason == TOO_BIG:
            return
        self._ratelog.warning(("send", ch.name, e.errno), "sending to %s: %s", ch.name, e.strerror)


def plain_payload(data: bytes) -> bytes | str:
    """The frame in a plain datagram (b'' for a heartbeat), or the reason to drop it."""
    n = len(data)
    if n <= HEARTBEAT_MAX:
        return b""
    return data if n >= ETH_HLEN else RUNT


def overhead_of(ch: Channel) -> int:
    """What sealing adds to a frame on ch."""
    if ch.peer is not None:
        return transport.OVERHEAD
    return group.OVERHEAD if ch.group is not None else 0


def tpg_pad(frame: bytes, overhead: int) -> bytes:
    """-tpg: the frame, padded so that its datagram (overhead bytes more) is not 1461..1477
    bytes long but 1478 (padded before sealing: the padding is sealed with the frame)."""
    size = len(frame) + overhead
    if TPG_RANGE[0] <= size <= TPG_RANGE[1]:
        return frame + bytes(TPG_SIZE - size)
    return frame
