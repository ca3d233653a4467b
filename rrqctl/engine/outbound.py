"""The outbound side of the datapath: a frame from anywhere switched to its channels, queued
per channel and sent in batches (or at once when it is a lone frame), sealed where the channel
is; frames too big for a path answered with ICMP; heartbeats."""

from __future__ import annotations

import errno
from collections.abc import Callable
from typing import TYPE_CHECKING

from rrqctl.engine import l3
from rrqctl.engine.channels import HEARTBEAT_INTERVAL, Channel, Kind
from rrqctl.engine.frames import ETH_HLEN
from rrqctl.engine.gro import Coalescer
from rrqctl.engine.ports import (
    TapPort,
)

if TYPE_CHECKING:
    pass

from rrqctl.engine.state import (
    LOCAL_BUSY,
    TAP_DOWN,
    TOO_BIG,
    TRACE,
    EngineState,
    overhead_of,
    tpg_pad,
)


class Outbound(EngineState):
    def _heartbeat(self, ch: Channel, now: float) -> None:
        ch.next_heartbeat = now + HEARTBEAT_INTERVAL
        data = self.peers.heartbeat(ch, now)
        if data is not None and self._send(ch, [data]):
            ch.tx_heartbeats += 1
            self.log.debug("heartbeat to %s", ch.name)

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
            if self._fp is not None and type(route) is list and len(route) == 1:
                self._cache(frame, src, route[0])
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
        if self._fp is not None and len(route) == 1:
            self._cache(frame, src, route[0])
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
            frame = tpg_pad(frame, overhead_of(ch))
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
