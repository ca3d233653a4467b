"""The datapath: one thread, blocking-free fds, each drained until EAGAIN, timers by deadline.

Per frame: one read, one table lookup, one send. Other threads talk to the loop only
through `call()` (run a function in the loop) and `stop()`. The engine is its state
(state.py), its inbound side (inbound.py) and its outbound side (outbound.py).
"""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from rrqctl.engine import group, transport
from rrqctl.engine.channels import Channel, Kind, State
from rrqctl.engine.fastpath import FastPath, Upcall
from rrqctl.engine.gro import Coalescer
from rrqctl.engine.ports import (
    McastPort,
    StdioPort,
    TapPort,
    UdpPort,
)
from rrqctl.engine.resolver import Answer, Resolver
from rrqctl.engine.stats import process_usage
from rrqctl.system import tun

if TYPE_CHECKING:
    from rrqctl.engine.settings import EngineSettings

from rrqctl.engine.inbound import Inbound
from rrqctl.engine.state import PMTU_EVERY, TICK, LocalPort


class Engine(Inbound):
    """A running cable: its ports, its switch, its channels and their counters."""

    # ---- set up and tear down -------------------------------------------------------

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
            self._fast_start()
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

    def _fast_start(self) -> None:
        """The C datapath on this tap and socket (fastpath.py), if it is built and wanted."""
        self._fp = None
        port, udp = self.local_port, self.udp
        if type(port) is TapPort and udp is not None and self.local is not None:
            self._fp = FastPath.open(
                self._poll.fileno(),
                port.fileno(),
                udp.fileno(),
                udp.family,
                macs=self.switch.macs,
                tap=self.local,
            )
        if self._fp is not None:  # new sessions' keys and counters where C can use them too
            self.peers.sealing.box = self._fp.box

    def attach_local(self, port: LocalPort) -> None:
        """Use `port` as the local end (also to re-attach a tap that was re-created)."""
        reattach = self._fp is not None or self.udp is not None
        self._fast_stop()
        if self.local_port is not None:
            self._unwatch(self.local_port.fileno())
            self.local_port.close()
        self.local_port = port
        self._gro = Coalescer() if isinstance(port, TapPort) else None
        if self.local is None:
            self.local = Channel(Kind.LOCAL, port.name, self.clock())
            self.switch.add(self.local)
        try:
            self.watch(port.fileno(), self._on_local)
        except PermissionError:  # epoll waits on pipes, sockets and ttys, not on files
            raise ValueError(
                f"{port.name}: standard input is a file (or /dev/null), which cannot be "
                "waited on: give -t - a pipe or a socket (dpipe, vde_plug)"
            ) from None
        if reattach:
            self._fast_start()

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
        self._fast_stop()
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
        clock = self.clock
        next_tick = clock()
        timeout = 0.0
        while not self._stopping:
            self.step(timeout)
            now = clock()  # after the handlers: they take the time they wake at themselves
            if now >= next_tick:
                next_tick = self._tick(now)
            timeout = max(0.0, next_tick - now)

    def step(self, timeout: float) -> None:
        """Wait up to timeout seconds for what is ready and handle it, once: in C what the
        C datapath's flows cover (fastpath.py), the rest by the handlers in Python."""
        handlers = self._handlers
        fp = self._fp
        changed = self.peers.sealing.changed
        if fp is None:
            for fd, _ in self._poll.poll(timeout):
                h = handlers.get(fd)
                if h is not None:
                    h()
            changed.clear()  # (only C needs to know)
            return
        ready, upcalls = fp.poll(timeout)
        if upcalls:
            self._upcalls(upcalls)
        for fd in ready:
            h = handlers.get(fd)
            if h is not None:
                h()
        if changed:
            fp.resync(changed)

    def _upcalls(self, upcalls: list[Upcall]) -> None:
        """What the C datapath read and left to Python, as Python would have read it: one
        frame or datagram alone as the lone paths take it (at once), else as a drain."""
        now = self.clock()
        self._rc_src = None
        if len(upcalls) == 1 and upcalls[0][0] == 0 and self.local is not None:
            self._local_frame(upcalls[0][1], self.local, now, self._forward_now)
            self._flush()
            return
        if len(upcalls) == 1 and upcalls[0][0] == 1:
            self._lone_datagrams(upcalls[0][1], upcalls[0][2], now)
            return
        for u in upcalls:
            if u[0] == 0:
                assert self.local is not None
                self._local_frame(u[1], self.local, now, self._forward)
            elif u[0] == 1:
                datagrams, key = u[1], u[2]
                self._take(datagrams, key, self.by_addr.get(key), now)
            elif u[0] == 2:
                self._udp_error(OSError(u[1], os.strerror(u[1])))
            else:
                self._upcall(u, now)
        self._flush()

    def _upcall(self, u: Upcall, now: float) -> None:
        """A frame C forwarded and could not send (Python sends it, or counts why); a payload
        C opened that no flow covers; a sealed datagram C could not send."""
        by_id = self._fp.by_id if self._fp is not None else {}
        src = by_id.get(u[2])
        if src is None or (src is not self.local and self.by_addr.get(src.addr) is not src):
            return  # (a channel forgotten since: what C did for it is not taken)
        if u[0] == 4:  # (C has said src was heard)
            self._deliver(src, [u[1]], now, 0)
            return
        size = len(u[1]) - (transport.OVERHEAD if u[0] == 5 else 0)
        src.rx_frames += 1
        src.rx_bytes += size
        if u[0] == 3:
            self._forward(u[1], src, now)
        elif (out := by_id.get(u[3])) is not None and self._send(out, [u[1]]):
            out.tx_frames += 1
            out.tx_bytes += size

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
        if self._fp is not None:
            self._fp.take_counters()
            self._fp.prune(self.switch.channels)
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

    def status(self, macs: bool = True) -> dict[str, Any]:
        """A JSON-able picture of the cable (call it in the loop thread: see call()).

        macs=False leaves out the MAC table (its size stays): a full one takes tens of ms."""
        now = self.clock()
        if self._fp is not None:
            self._fp.take_counters()
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
            "datapath": "c" if self._fp is not None else "python",
            "fast_frames": self._fp.forwarded if self._fp is not None else 0,
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
        if self._fp is not None:
            self._fp.take_counters()
        chans = [c for c in self.switch.channels if c.kind is not Kind.LOCAL]
        up = sum(1 for c in chans if c.state(now) is State.UP)
        rx = sum(c.rx_frames for c in chans)
        tx = sum(c.tx_frames for c in chans)
        return f"remotes {up}/{len(chans)} up, frames in {rx} out {tx}, dropped {self.drops.total}"
