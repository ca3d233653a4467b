"""The datapath: one thread, blocking-free fds, each drained until EAGAIN, timers by deadline.

Per frame: one read, one table lookup, one send. Other threads talk to the loop only
through `call()` (run a function in the loop) and `stop()`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import queue
import select
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from rrqctl.engine import group, l3, pmtu, transport
from rrqctl.engine.channels import HEARTBEAT_INTERVAL, Channel, Kind, State
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
from rrqctl.engine.resolver import Answer, Resolver
from rrqctl.engine.stats import Drops, RateLimitedLog, process_usage
from rrqctl.engine.switch import Switch
from rrqctl.system import tun

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


class Engine:
    """A running cable: its ports, its switch, its channels and their counters."""

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

    # ---- set up and tear down -------------------------------------------------------

    @property
    def by_addr(self) -> dict[SockKey, Channel]:
        return self.peers.by_addr

    @property
    def remotes(self) -> tuple[Remote, ...]:
        return self.peers.remotes

    def open(self) -> None:
        """Open every port; on failure close what was opened and raise OSError/ValueError."""
        try:
            self.peers.load_keys(self.settings.keyfiles)
            now = self.clock()
            if self.settings.local == "tap":
                self.attach_local(self._tap_port())
            elif self.settings.local == "stdio":
                self.attach_local(StdioPort(*self._stdio_fds))
            if self.settings.port is not None:
                self.udp = UdpPort(
                    self.settings.port,
                    self.settings.ipv4_only,
                    self.settings.source,
                    df=self.settings.pmtu,
                )
                self.watch(self.udp.fileno(), self._on_udp)
                family = socket.AF_INET if self.settings.ipv4_only else socket.AF_UNSPEC
                self.peers.resolver = Resolver(family, self._resolved)
            if self.settings.multicast is not None:
                self._open_multicast(now)
            self.peers.set_remotes(self.settings.remotes, self._family(), now)
            self.watch(self._wake, self._on_wake)
        except BaseException:
            self.close()
            raise

    def _tap_port(self) -> TapPort:
        """The tap: tap_fd if it still is this tap as opened here, else opened by name."""
        fd, self._tap_fd = self._tap_fd, None
        if fd is not None:
            try:
                return TapPort(self.settings.name, fd)
            except OSError as e:
                self.log.warning("%s: not adopting the tap kept for us: %s", self.settings.name, e)
                os.close(fd)
        return TapPort(self.settings.name)

    def attach_local(self, port: LocalPort) -> None:
        """Use `port` as the local end (also to re-attach a tap that was re-created)."""
        if self.local_port is not None:
            self._unwatch(self.local_port.fileno())
            self.local_port.close()
        self.local_port = port
        self._gro = Coalescer() if isinstance(port, TapPort) else None
        if self.local is None:
            self.local = Channel(Kind.LOCAL, port.name, self.clock())
            self.switch.add(self.local)
        self.watch(port.fileno(), self._on_local)

    def measure(self, ch: Channel) -> None:
        """ch's path MTU as the kernel knows it, and the largest frame that fits (pmtu.py)."""
        if not self.settings.pmtu or ch.kind is Kind.LOCAL:
            return
        ip = peer_ip(ch.addr[0])
        mtu = pmtu.path_mtu(ip)
        ch.path_mtu = mtu
        room = None if mtu is None else mtu - pmtu.ip_overhead(ip) - _overhead(ch)
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

    def _family(self) -> int | None:
        return self.udp.family if self.udp is not None else None

    def _open_multicast(self, now: float) -> None:
        mc = self.settings.multicast
        assert mc is not None
        self.mcast = McastPort(mc)
        ch = Channel(Kind.MULTICAST, mc.text(), now, mc, self.mcast.addr)
        self.mcast_channel = ch
        self._seal_group()
        self.switch.add(ch)
        self.measure(ch)
        self.watch(self.mcast.fileno(), self._on_mcast)

    def _seal_group(self) -> None:
        """The multicast channel's group sessions, new (from its key file as read now)."""
        mc, ch = self.settings.multicast, self.mcast_channel
        if mc is None or ch is None or not mc.keyfile:
            return
        key = self.peers.keys[mc.keyfile].group
        ch.group = sender = group.GroupSender(key)
        self.mcast_rx = group.GroupReceiver(key, sender.own, self.settings.freshness)

    def _resolved(self, host: str, answer: Answer) -> None:
        """(The resolver's thread) hand a lookup's answer to the loop."""
        self.call(lambda: self.peers.resolved(host, answer, self.clock()))

    def close(self) -> None:
        if self.peers.resolver is not None:
            self.peers.resolver.close()
        for port in (self.local_port, self.udp, self.mcast):
            if port is not None:
                port.close()
        self.local_port = self.udp = self.mcast = None
        if self._wake >= 0:
            os.close(self._wake)
            self._wake = -1
        self._poll.close()

    def watch(self, fd: int, handler: Callable[[], None]) -> None:
        """Call handler in the loop thread whenever fd is readable."""
        self._handlers[fd] = handler
        self._poll.register(fd, select.EPOLLIN)

    def _unwatch(self, fd: int) -> None:
        if self._handlers.pop(fd, None) is not None:
            self._poll.unregister(fd)

    # ---- remotes and keys -----------------------------------------------------------

    def reload(self, settings: EngineSettings) -> None:
        """New remotes and keys, same tap, same learned MACs (runs in the loop thread)."""
        changed = self.peers.load_keys(settings.keyfiles)
        old_mc = self.settings.multicast
        self.settings = settings
        self.peers.rekeyed(changed)
        self.peers.set_remotes(settings.remotes, self._family(), self.clock())
        mc = settings.multicast
        if mc is not None and mc.keyfile and (mc.keyfile in changed or mc != old_mc):
            self._seal_group()
            self.log.info("multicast %s: new group key", mc.group)
        self.log.info("reloaded: %d remote declarations", len(settings.remotes))

    # ---- the loop -------------------------------------------------------------------

    def every(self, interval: float, fn: Callable[[], None]) -> None:
        """Run fn in the loop thread every `interval` seconds (first run at once)."""
        self._periodic.append([interval, fn, self.clock()])

    def run(self) -> None:
        handlers = self._handlers
        poll = self._poll.poll
        clock = self.clock
        next_tick = clock()
        timeout = 0.0
        while not self._stopping:
            for fd, _ in poll(timeout):
                h = handlers.get(fd)
                if h is not None:
                    h()
            now = clock()  # after the handlers: they take the time they wake at themselves
            if now >= next_tick:
                next_tick = self._tick(now)
            timeout = max(0.0, next_tick - now)

    def stop(self, failure: str | None = None) -> None:
        """Ask the loop to end (any thread, or a signal handler); failure says what broke."""
        if failure and self.failure is None:
            self.failure = failure
        self._stopping = True
        if self._wake >= 0:
            os.eventfd_write(self._wake, 1)

    def call(self, fn: Callable[[], Any]) -> Future[Any]:
        """Run fn in the loop thread; the future holds its result."""
        fut: Future[Any] = Future()
        self._calls.put((fn, fut))
        os.eventfd_write(self._wake, 1)
        return fut

    def _on_wake(self) -> None:
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._wake)
        while True:
            try:
                fn, fut = self._calls.get_nowait()
            except queue.Empty:
                return
            if fut.set_running_or_notify_cancel():
                try:
                    fut.set_result(fn())
                except Exception as e:
                    fut.set_exception(e)

    def _tick(self, now: float) -> float:
        for ch in list(self.switch.channels):
            if ch.heartbeat_due(now):
                self._heartbeat(ch, now)
            elif ch.forgotten(now):
                self.peers.forget(ch, "silent for 3 minutes")
                continue
            state = ch.state(now)
            if state is not ch.reported:  # said once, as it changes ("is up" said on arrival)
                if state is State.STALE:
                    self.log.warning("%s %s is stale: %s", ch.kind, ch.name, ch.stale_reason(now))
                ch.reported = state
        self.peers.tick(now)
        if self.settings.pmtu and now - self._measured >= PMTU_EVERY:
            self._measured = now
            for ch in self.switch.channels:
                self.measure(ch)
        if self.mcast_rx is not None:
            self.mcast_rx.expire(now)
        self.switch.macs.expire(now)
        nxt = now + TICK
        for entry in self._periodic:
            interval, fn, due = entry
            if now >= due:
                fn()
                entry[2] = due = max(due + interval, now)
            nxt = min(nxt, due)
        return nxt

    def _heartbeat(self, ch: Channel, now: float) -> None:
        ch.next_heartbeat = now + HEARTBEAT_INTERVAL
        data = self.peers.heartbeat(ch, now)
        if data is not None and self._send(ch, [data]):
            ch.tx_heartbeats += 1
            self.log.debug("heartbeat to %s", ch.name)

    # ---- local end ------------------------------------------------------------------

    def _on_local(self) -> None:
        now = self.clock()
        lone = self._lone_local and now - self._local_woke >= LONE_GAP
        self._local_woke = now
        port, ch = self.local_port, self.local
        if not lone or type(port) is not TapPort:
            self._local_drain(now)
            return
        # a lone frame from the tap, sent on at once (see LONE_GAP)
        assert ch is not None
        try:
            frame = port.read()
        except OSError as e:
            self._local_lost(e)
            return
        if frame is not None:
            ch.rx_frames += 1
            ch.rx_bytes += len(frame)
            self._forward_now(frame, ch, now)

    def _local_drain(self, now: float) -> None:
        self._rc_src = None
        port = self.local_port
        ch = self.local
        assert port is not None and ch is not None
        forward = self._forward
        n, batch = 0, self.batch
        while n < batch:
            try:
                frame = port.read()
            except OSError as e:
                self._local_lost(e)
                return
            if frame is None:
                break
            n += 1
            ch.rx_frames += 1
            ch.rx_bytes += len(frame)
            forward(frame, ch, now)
        self._lone_local = n <= 1
        if isinstance(port, StdioPort):
            self._drain_stdio(port, ch, now)
        self._flush()

    def _drain_stdio(self, port: StdioPort, ch: Channel, now: float) -> None:
        while (frame := port.read()) is not None:
            ch.rx_frames += 1
            ch.rx_bytes += len(frame)
            self._forward(frame, ch, now)
        if port.eof:
            self.log.info("end of stdin")
            self.stop()

    def _local_lost(self, e: OSError) -> None:
        port = self.local_port
        assert port is not None
        self._unwatch(port.fileno())
        self.log.error("local %s lost: %s", port.name, e.strerror)
        if self.on_local_lost is not None:
            self.on_local_lost(e)
        else:
            self.stop(f"local {port.name} lost: {e.strerror}")

    # ---- UDP ------------------------------------------------------------------------

    def _on_udp(self) -> None:
        now = self.clock()
        lone = self._lone_udp and now - self._udp_woke >= LONE_GAP
        self._udp_woke = now
        if not lone:
            self._udp_drain(now)
            return
        # one datagram; a lone frame from a known channel goes on at once (see LONE_GAP)
        assert self.udp is not None
        try:
            datagrams, key = self.udp.recv()
        except BlockingIOError:
            return
        except OSError as e:
            self._udp_error(e)
            return
        ch = self.by_addr.get(key)
        if ch is None or len(datagrams) > 1:
            self._rc_src = None
            self._lone_udp = len(datagrams) == 1
            self._take(datagrams, key, ch, now)
            self._flush()
            return
        frame = datagrams[0]
        if ch.peer is None and now < ch.fresh_until and len(frame) >= ETH_HLEN:
            # the common case in fewest steps: a plain frame on a channel that is up (so
            # ch.heard(now) is these two lines, inlined: a call costs µs on a cold wake)
            ch.last_heard = now
            ch.fresh_until = now + ch.fresh_for
            ch.refusals = 0
            ch.rx_frames += 1
            ch.rx_bytes += len(frame)
            self._forward_now(frame, ch, now)
            return
        if ch.peer is None:
            self._receive(ch, frame, now, self._forward_now)
            return
        for payload in self.peers.opened(ch, datagrams, now):
            self._accept(ch, payload, now, self._forward_now)

    def _udp_drain(self, now: float) -> None:
        self._rc_src = None
        assert self.udp is not None
        recv = self.udp.recv
        by_addr = self.by_addr
        n, batch = 0, self.batch
        while n < batch:
            n += 1
            try:
                datagrams, key = recv()
            except BlockingIOError:
                break
            except OSError as e:
                self._udp_error(e)
                continue
            self._take(datagrams, key, by_addr.get(key), now)
        self._lone_udp = n <= 2  # one datagram, then EAGAIN
        self._flush()

    def _udp_error(self, e: OSError) -> None:
        """A queued ICMP error: nothing to do with it but count it."""
        self.drops.count(SEND_ERROR)
        self._ratelog.warning(("icmp", e.errno), "UDP error: %s", e.strerror)

    def _take(self, datagrams: list[bytes], key: SockKey, ch: Channel | None, now: float) -> None:
        """Datagrams from one source (a GRO batch always is), queued for the flush."""
        if ch is not None:
            if ch.peer is None:
                self._plain(ch, datagrams, now)
            else:  # authentic ones are frames or heartbeats (an empty payload)
                self._deliver(ch, self.peers.opened(ch, datagrams, now), now, 0)
            return
        for data in datagrams:
            ch = self.by_addr.get(key)  # the first datagram may have made the downlink
            if ch is None:
                self._admit(key, data, now)
            elif ch.peer is None:
                self._receive(ch, data, now, self._forward)
            else:
                self._deliver(ch, self.peers.opened(ch, [data], now), now, 0)

    def _plain(self, ch: Channel, datagrams: list[bytes], now: float) -> None:
        """The hot path: plain datagrams from a known channel (frames, or heartbeats)."""
        if ch.heard(now):
            self._came_up(ch, now)
        self._deliver(ch, datagrams, now, HEARTBEAT_MAX)

    def _admit(self, key: SockKey, data: bytes, now: float) -> None:
        """A datagram from a source without a channel: a new downlink, or a drop. A sealed
        one makes a downlink only once a handshake has proved the source receives at its
        address (peers.py)."""
        decl = self.peers.declaration(key)
        if isinstance(decl, str):
            return
        if decl.keyfile:
            admitted = self.peers.admit(key, data, decl, now)
            if admitted is not None:
                self._accept(admitted[0], admitted[1], now, self._forward)
            return
        result = _plain_payload(data)
        if isinstance(result, str):
            self.drops.count(result)
            self._ratelog.info(("reject", key[0]), "rejected datagram from %s: %s", key, result)
            return
        self._accept(self.peers.downlink(decl, key, now), result, now, self._forward)

    def _receive(self, ch: Channel, data: bytes, now: float, forward: Forward) -> None:
        """One plain datagram from ch: its frame forwarded (queued or at once), or the drop
        counted."""
        result = _plain_payload(data)
        if isinstance(result, str):
            self.drops.count(result)
            ch.refuse(result)
            return
        self._accept(ch, result, now, forward)

    def _deliver(
        self, ch: Channel, payloads: Iterable[bytes], now: float, heartbeat_max: int
    ) -> None:
        """Frames from ch to the switch, heartbeats (up to heartbeat_max bytes) counted, runts
        dropped. A run of frames whose MAC header went to the tap alone skips the switch."""
        forward = self._forward
        gro, hdr = self._gro, None  # hdr: the MAC header that goes straight to the tap
        vouched = ch.sealed  # a tag vouched for each frame's bytes (gro.py)
        for data in payloads:
            n = len(data)
            if n >= ETH_HLEN:
                ch.rx_frames += 1
                ch.rx_bytes += n
                if hdr is not None and data[:12] == hdr:
                    gro.add(data, vouched)  # type: ignore[union-attr]  # hdr: only with a tap
                    continue
                forward(data, ch, now)
                hdr = self._to_tap_only(ch)
            elif n <= heartbeat_max:
                self._heartbeat_from(ch, now)
            else:
                self.drops.count(RUNT)
                ch.refuse(RUNT)

    def _to_tap_only(self, src: Channel) -> bytes | None:
        """The MAC header whose frames from src go to the local tap alone (the last decision)."""
        route = self._rc_route
        if (
            self._gro is not None
            and self._rc_src is src
            and type(route) is list
            and len(route) == 1
        ) and route[0] is self.local:
            return self._rc_hdr
        return None

    def _heartbeat_from(self, ch: Channel, now: float) -> None:
        """A heartbeat: counted; a plain downlink answers it (a sealed one keeps alive by its
        own timer), so the uplink at the far end knows it is heard."""
        ch.rx_heartbeats += 1
        self.log.debug("heartbeat from %s", ch.name)
        if ch.peer is None and ch.answers_heartbeat(now):
            self._send_own(ch, ch.addr, b"")
            ch.tx_heartbeats += 1

    def _came_up(self, ch: Channel, now: float) -> None:
        self.log.info("%s %s is up", ch.kind, ch.name)
        if ch.kind is Kind.UPLINK:
            self._heartbeat(ch, now)  # greet back: the far end may have missed ours

    def _accept(self, ch: Channel, frame: bytes, now: float, forward: Forward) -> None:
        if ch.heard(now):
            self._came_up(ch, now)
        if not frame:
            self._heartbeat_from(ch, now)
            return
        if len(frame) < ETH_HLEN:
            self.drops.count(RUNT)
            ch.refuse(RUNT)
            return
        ch.rx_frames += 1
        ch.rx_bytes += len(frame)
        forward(frame, ch, now)

    def _on_mcast(self) -> None:
        self._rc_src = None
        port, ch = self.mcast, self.mcast_channel
        assert port is not None and ch is not None
        now = self.clock()
        for _ in range(self.batch):
            try:
                (data,), key = port.recv()
            except BlockingIOError:
                break
            if port.is_echo(data):
                continue
            if self.mcast_rx is None:
                self._receive(ch, data, now, self._forward)
                continue
            result = self.mcast_rx.open(data, key, now)
            if isinstance(result, str):
                self.drops.count(result)
                ch.refuse(result)
            else:
                self._accept(ch, result, now, self._forward)
        self._flush()

    # ---- forwarding -----------------------------------------------------------------

    def _forward(self, frame: bytes, src: Channel, now: float) -> None:  # noqa: PLR0912
        # HOT PATH, in one function on purpose: a call costs more than a branch here
        if self._mss4:
            frame = l3.clamp_mss(frame, self._mss4, self._mss6)
        # Frames of one flow come in runs: reuse the decision while nothing it rests on changed
        hdr = frame[:12]
        if (
            src is self._rc_src
            and hdr == self._rc_hdr
            and self.switch.macs.version == self._rc_version
        ):
            route = self._rc_route
        else:
            route = self.switch.route(frame, src, now)
            self._rc_src, self._rc_hdr, self._rc_route = src, hdr, route
            self._rc_version = self.switch.macs.version
        if isinstance(route, str):
            self._refused(frame, src, route)
            return
        local = self.local
        out = self._out
        plain = not self.settings.tpg
        n = len(frame)
        for ch in route:
            if ch is local:
                gro = self._gro
                if gro is not None:
                    gro.add(frame, src.sealed)
                else:
                    self._write_local(frame)
                continue
            if n > ch.max_frame:
                self._too_big(frame, src, ch, now, self._queue_one)
                continue
            data = frame if plain and not ch.sealed else self._wire(frame, ch, now)
            if data is None:
                continue  # waits for a handshake
            if (queue := out.get(ch)) is None:
                out[ch] = [data]
            else:
                queue.append(data)
            ch.tx_frames += 1
            ch.tx_bytes += n
            if self._trace:
                self.log.log(TRACE, "%d bytes %s -> %s", n, src.name, ch.name)

    def _queue_one(self, ch: Channel, frame: bytes, now: float) -> None:
        """One frame for ch, queued for the flush (the cold path's way)."""
        data = self._wire(frame, ch, now)
        if data is not None:
            self._out.setdefault(ch, []).append(data)
            ch.tx_frames += 1
            ch.tx_bytes += len(frame)

    def _send_one(self, ch: Channel, frame: bytes, now: float) -> None:
        """One frame for ch, sent at once (the cold path's way)."""
        data = self._wire(frame, ch, now)
        if data is not None and self._send(ch, [data]):
            ch.tx_frames += 1
            ch.tx_bytes += len(frame)

    def _too_big(
        self, frame: bytes, src: Channel, ch: Channel, now: float, send: Callable[..., None]
    ) -> None:
        """A frame that one datagram to ch cannot carry whole: counted, and answered as a
        router would (l3.py) if it came from the local end: ICMP back into the tap, or
        (IPv4 without DF) sent on in fragments that fit."""
        self.drops.count(TOO_BIG)
        ch.drop(TOO_BIG)
        if src is not self.local or not self._icmp_budget.take(None, now):
            return
        what, frames = l3.answer_too_big(frame, ch.max_frame - ETH_HLEN)
        for f in frames:
            if what == "back":
                self._write_local(f)
            else:
                send(ch, f, now)

    def _forward_now(self, frame: bytes, src: Channel, now: float) -> None:
        """A lone frame: decided afresh and sent or written at once, nothing queued."""
        if self._mss4:
            frame = l3.clamp_mss(frame, self._mss4, self._mss6)
        route = self.switch.route(frame, src, now)
        if isinstance(route, str):
            self._refused(frame, src, route)
            return
        plain = not self.settings.tpg
        for ch in route:
            if ch is self.local:
                self._write_local(frame)
                continue
            if len(frame) > ch.max_frame:
                self._too_big(frame, src, ch, now, self._send_one)
                continue
            data = frame if plain and not ch.sealed else self._wire(frame, ch, now)
            if data is None:
                continue  # waits for a handshake
            if ch.kind is Kind.MULTICAST:
                if not self._send(ch, [data]):
                    continue
            else:
                try:
                    self.udp.sock.sendto(data, ch.addr)  # type: ignore[union-attr]
                except OSError as e:
                    self._send_failed(ch, e)
                    continue
            ch.tx_frames += 1
            ch.tx_bytes += len(frame)
            if self._trace:
                self.log.log(TRACE, "%d bytes %s -> %s", len(frame), src.name, ch.name)

    def _wire(self, frame: bytes, ch: Channel, now: float) -> bytes | None:
        """The datagram that carries frame on ch: padded as -tpg says, then sealed if ch is
        (None while a sealed channel has no session: the frame waits for its handshake)."""
        if self.settings.tpg:
            frame = tpg_pad(frame, _overhead(ch))
        if ch.peer is not None:
            return self.peers.seal(ch, frame, now)
        if ch.group is not None:
            return ch.group.seal(frame)
        return frame

    def _refused(self, frame: bytes, src: Channel, reason: str) -> None:
        self.drops.count(reason)
        src.drop(reason)
        if self._trace:
            self.log.log(TRACE, "drop %d bytes from %s: %s", len(frame), src.name, reason)

    def _write_local(self, frame: bytes) -> None:
        """One frame to the local end, now (a tap's runs are coalesced at flush instead)."""
        port, ch = self.local_port, self.local
        assert port is not None and ch is not None
        try:
            port.write(frame)
        except OSError as e:
            self._local_write_failed(e, 1)
        else:
            ch.tx_frames += 1
            ch.tx_bytes += len(frame)

    def _flush_local(self, gro: Coalescer) -> None:
        port, ch = self.local_port, self.local
        assert isinstance(port, TapPort) and ch is not None
        for w in gro.flush():
            try:
                port.writev(w.iov)
            except OSError as e:
                if e.errno == errno.EINVAL and w.proto:
                    gro.protocols.discard(w.proto)  # this kernel will not take such frames
                    self.log.warning(
                        "the tap refused a coalesced %s frame (%s): writing them one by one",
                        "TCP" if w.proto == 6 else "UDP",
                        e.strerror,
                    )
                    for f in w.frames:
                        self._write_local(f)
                    continue
                self._local_write_failed(e, len(w.frames))
            else:
                ch.tx_frames += len(w.frames)
                ch.tx_bytes += w.nbytes

    def _local_write_failed(self, e: OSError, frames: int) -> None:
        ch = self.local
        assert ch is not None
        if isinstance(e, BlockingIOError):
            reason = LOCAL_BUSY
        elif e.errno == errno.EIO:
            reason = TAP_DOWN
        else:
            reason = f"local-{errno.errorcode.get(e.errno or 0, 'error').lower()}"
        for _ in range(frames):
            self.drops.count(reason)
            ch.drop(reason)

    def _flush(self) -> None:
        """Send what the drain queued, each channel's datagrams in as few calls as possible."""
        gro = self._gro
        if gro is not None and gro.pending:
            self._flush_local(gro)
        if not self._out:
            return
        for ch, datagrams in self._out.items():
            self._send(ch, datagrams)
        self._out.clear()

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

    # ---- status ---------------------------------------------------------------------

    def status(self, macs: bool = True) -> dict[str, Any]:
        """A JSON-able picture of the cable (call it in the loop thread: see call()).

        macs=False leaves out the MAC table (its size stays): a full one takes tens of ms."""
        now = self.clock()
        remotes = [ch.status(now) for ch in self.switch.channels if ch.kind is not Kind.LOCAL]
        if self.mcast_rx is not None:
            for r in remotes:
                if r["kind"] == Kind.MULTICAST:
                    r["group_sessions"] = len(self.mcast_rx.sessions)
        local = self.local.status(now) if self.local is not None else None
        if local is not None and self.local_port is not None:
            local["name"] = self.local_port.name
            local["kind"] = self.local_port.kind
            if isinstance(self.local_port, TapPort):
                local["mtu"] = tun.get_mtu(self.local_port.name)
        return {
            "name": self.settings.name,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started, 1),
            **process_usage(),
            "port": self.settings.port,
            "local": local,
            "declared": [r.text() for r in self.remotes],
            "unresolved": self.peers.unresolved(),
            "sealed_sessions": len(self.peers.sealing.sessions),
            "remotes": remotes,
            "mac_count": len(self.switch.macs.entries),
            **({"macs": self.switch.macs.snapshot(now)} if macs else {}),
            "drops": self.drops.snapshot(),
        }

    def summary(self) -> str:
        """One line for systemd's STATUS=: remotes up/total, frames in/out."""
        now = self.clock()
        chans = [c for c in self.switch.channels if c.kind is not Kind.LOCAL]
        up = sum(1 for c in chans if c.state(now) is State.UP)
        rx = sum(c.rx_frames for c in chans)
        tx = sum(c.tx_frames for c in chans)
        return f"remotes {up}/{len(chans)} up, frames in {rx} out {tx}, dropped {self.drops.total}"


def _plain_payload(data: bytes) -> bytes | str:
    """The frame in a plain datagram (b'' for a heartbeat), or the reason to drop it."""
    n = len(data)
    if n <= HEARTBEAT_MAX:
        return b""
    return data if n >= ETH_HLEN else RUNT


def _overhead(ch: Channel) -> int:
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
