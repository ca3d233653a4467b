"""The inbound side of the datapath: frames from the tap (or stdin), datagrams from the UDP
socket and the multicast group, drained until EAGAIN, admitted by remote declaration and
session, then handed to the outbound side."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from rrqctl.engine.channels import Channel, Kind
from rrqctl.engine.frames import ETH_HLEN, HEARTBEAT_MAX
from rrqctl.engine.ports import (
    SockKey,
    StdioPort,
    TapPort,
)

if TYPE_CHECKING:
    pass

from rrqctl.engine.outbound import Outbound
from rrqctl.engine.state import LONE_GAP, RUNT, SEND_ERROR, Forward, plain_payload


class Inbound(Outbound):
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
            self._local_frame(frame, ch, now, self._forward_now)

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
            if len(frame) < ETH_HLEN:  # (a tap never makes one; a stdio peer may)
                self._local_frame(frame, ch, now, forward)
                continue
            ch.rx_frames += 1
            ch.rx_bytes += len(frame)
            forward(frame, ch, now)
        self._lone_local = n <= 1
        if isinstance(port, StdioPort):
            self._drain_stdio(port, ch, now)
        self._flush()

    def _drain_stdio(self, port: StdioPort, ch: Channel, now: float) -> None:
        while (frame := port.read()) is not None:
            self._local_frame(frame, ch, now, self._forward)
        if port.eof:
            self.log.info("end of stdin")
            self.stop()

    def _local_frame(self, frame: bytes, ch: Channel, now: float, forward: Forward) -> None:
        """A frame from the local end: forwarded, or dropped as a runt (counted)."""
        self._frame_from(ch, frame, now, forward, ch.drop)

    def _frame_from(
        self, ch: Channel, frame: bytes, now: float, forward: Forward, runt: Callable[[str], None]
    ) -> None:
        """A frame from ch: counted and forwarded, or a runt, dropped and said to runt()."""
        if len(frame) < ETH_HLEN:
            self.drops.count(RUNT)
            runt(RUNT)
            return
        ch.rx_frames += 1
        ch.rx_bytes += len(frame)
        forward(frame, ch, now)

    def _local_lost(self, e: OSError) -> None:
        port = self.local_port
        assert port is not None
        self._fast_stop()
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
        self._lone_datagrams(datagrams, key, now)

    def _lone_datagrams(self, datagrams: list[bytes], key: SockKey, now: float) -> None:
        """What one read brought after a quiet spell: a lone frame goes on at once."""
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
        """The hot path: plain datagrams from a known channel (frames, or heartbeats; runts
        alone do not make a channel heard, as they do not on the lone path)."""
        n = len(datagrams[0])
        if (n <= HEARTBEAT_MAX or n >= ETH_HLEN or any(_carries(d) for d in datagrams)) and (
            ch.heard(now)
        ):
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
        result = plain_payload(data)
        if isinstance(result, str):
            self.drops.count(result)
            self._ratelog.info(("reject", key[0]), "rejected datagram from %s: %s", key, result)
            return
        self._accept(self.peers.downlink(decl, key, now), result, now, self._forward)

    def _receive(self, ch: Channel, data: bytes, now: float, forward: Forward) -> None:
        """One plain datagram from ch: its frame forwarded (queued or at once), or the drop
        counted."""
        result = plain_payload(data)
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
        self._frame_from(ch, frame, now, forward, ch.refuse)

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


def _carries(datagram: bytes) -> bool:
    """A plain datagram that is a frame or a heartbeat (not a runt)."""
    n = len(datagram)
    return n <= HEARTBEAT_MAX or n >= ETH_HLEN
