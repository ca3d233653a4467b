"""The native fast path (fastpath.c), as the engine's loop uses it.

Python decides and C repeats: after Python's switch routes a unicast frame between two
channels to one channel, the decision is cached in C as a flow (the channel it came from
and its MAC header -> where it goes), valid while the MAC table keeps the version it was
made at. `FastPath.poll` waits in C with the GIL released and forwards what the flows
cover; everything else comes back as upcalls, handled by the Python datapath unchanged.
What C did that Python's rules depend on (a source MAC seen again, a channel heard or
said something to, the frames counted) is merged into the Python objects (`_merge`,
`take_counters`).

Sealed channels: their sessions' keys, counters and replay windows live in C Boxes
(seal.c), which Python's sessions use too while C runs (`Sealing.box`), so either side may
seal or open the next datagram. Python tells C which sessions a channel has (`_sessions`,
again whenever they change); C opens and seals with those only, and hands up as read what
it does not open (a handshake, a refusal, Python's to count), and opened what no flow
covers (a heartbeat, a frame to flood).

The pure-Python datapath stays the reference and the fallback: it runs when the extension
is not built or RRQNET_DATAPATH=python.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from rrqctl.engine.channels import Channel, Kind
from rrqctl.engine.switch import UNICAST_HOLD, MacTable

if TYPE_CHECKING:
    from rrqctl.engine.ports import SockKey
    from rrqctl.engine.sessions import SealedPeer
    from rrqctl.engine.transport import MakeBox


class Native(Protocol):
    def channel(
        self, id: int, addr: SockKey | None, max_frame: int, fresh_for: float, fresh_until: float
    ) -> None: ...
    def forget(self, id: int) -> None: ...
    def sessions(
        self, id: int, box: object, until: float, opens: Sequence[tuple[bytes, object, float]]
    ) -> None: ...
    def flow(self, src: int, header: bytes, out: int, version: int) -> None: ...
    def poll(self, timeout: float, version: int) -> tuple[Any, Any, Any, Any]: ...
    def take_counters(self) -> list[tuple[int, int, int, int, int]]: ...
    def stop(self) -> None: ...


def _extension() -> Any:
    """The extension (its Datapath and Box): None if RRQNET_DATAPATH=python or it is not
    built. RRQCTL_FASTPATH_MODULE names another build of it (`make sanitize`: ASan, UBSan)."""
    if os.environ.get("RRQNET_DATAPATH", "") == "python":
        return None
    other = os.environ.get("RRQCTL_FASTPATH_MODULE")
    try:
        return _load(other) if other else importlib.import_module("rrqctl.engine._fastpath")
    except ImportError:
        return None


def _load(path: str) -> Any:
    spec = importlib.util.spec_from_file_location("rrqctl.engine._fastpath", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path}: not an extension module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def which() -> str:
    """The datapath an engine started now would run: "c" or "python"."""
    return "c" if _extension() is not None else "python"


# What C hands up: (0, a frame from the tap), (1, datagrams, their source), (2, errno of a
# queued ICMP error), (3, a frame C could not send, the id of the channel it came from),
# (4, a payload C opened, the id of the sealed channel it came from), (5, a sealed datagram
# C could not send, the ids of the channels it came from and went to)
Upcall = tuple[Any, ...]


class FastPath:
    """The C datapath of one engine: its channels by id, and what to merge back."""

    def __init__(self, native: Native, macs: MacTable, box: MakeBox) -> None:
        self.native = native
        self.macs = macs
        self.box = box  # C's sessions: the Box type
        self.ids: dict[Channel, int] = {}
        self.by_id: dict[int, Channel] = {}
        self._free: list[int] = []
        self.forwarded = 0  # frames C forwarded (each counted once, where it came in)

    @classmethod
    def open(
        cls, epoll_fd: int, tap_fd: int, udp_fd: int, family: int, *, macs: MacTable, tap: Channel
    ) -> FastPath | None:
        """The C datapath on these fds (tap: the tap's channel), or None if not built or
        not wanted. From now on C reads the tap (opened to offloads): Python never does."""
        ext = _extension()
        if ext is None:
            return None
        fp = cls(ext.Datapath(epoll_fd, tap_fd, udp_fd, family), macs, ext.Box)
        fp._id(tap)
        return fp

    def _id(self, ch: Channel) -> int:
        """ch's id in C, registered (or refreshed: its path may have changed) now."""
        id = self.ids.get(ch)
        if id is None:
            id = self._free.pop() if self._free else len(self.ids)
            self.ids[ch] = id
            self.by_id[id] = ch
        addr = None if ch.kind is Kind.LOCAL else (ch.addr[0], ch.addr[1])
        self.native.channel(id, addr, ch.max_frame, ch.fresh_for, ch.fresh_until)
        if ch.peer is not None:
            self._sessions(id, ch.peer)
        return id

    def _sessions(self, id: int, peer: SealedPeer) -> None:
        """Tell C the sessions of sealed channel id: the one that seals, those it opens."""
        box = self.box
        opens = [(s.index, s.box, s.until) for s in peer.sessions if type(s.box) is box]
        s = peer.current
        if s is not None and type(s.box) is box:
            self.native.sessions(id, s.box, s.until, opens)
        else:
            self.native.sessions(id, None, 0.0, opens)

    def resync(self, changed: set[SealedPeer]) -> None:
        """The channels of peers whose sessions changed, told again (and the set emptied):
        a forgotten channel's peer has none left, so C opens nothing more of it."""
        for ch, id in self.ids.items():
            if ch.peer is not None and ch.peer in changed:
                self._sessions(id, ch.peer)
        changed.clear()

    def cache(self, src: Channel, header: bytes, out: Channel) -> None:
        """Cache Python's decision: frames from src with this MAC header go to out."""
        self.native.flow(self._id(src), header, self._id(out), self.macs.version)

    def poll(self, timeout: float) -> tuple[list[int], list[Upcall]]:
        """Wait and forward; the fds Python's handlers must read, and what came up."""
        ready, upcalls, hits, heard = self.native.poll(timeout, self.macs.version)
        if hits or heard:
            self._merge(hits, heard)
        return ready, upcalls

    def _merge(
        self, hits: list[tuple[int, bytes, float]], heard: list[tuple[int, float, float]]
    ) -> None:
        """What the switch and the channels would have noted, had Python forwarded it."""
        entries = self.macs.entries
        for id, mac, when in hits:
            ch = self.by_id.get(id)
            b = entries.get(mac)
            if ch is not None and b is not None and b.channel is ch:
                b.last_seen = max(b.last_seen, when)
                b.held_until = max(b.held_until, when + UNICAST_HOLD)
        for id, when, said in heard:  # (-1: not since the last poll)
            ch = self.by_id.get(id)
            if ch is None:
                continue
            peer = ch.peer
            if peer is not None and 0 <= said < when:
                peer.said(said)  # (in the order they happened)
            if when >= 0 and (ch.last_heard is None or when > ch.last_heard):
                ch.last_heard = when
                ch.fresh_until = max(ch.fresh_until, when + ch.fresh_for)
                ch.refusals = 0
                if peer is not None:
                    peer.heard(when)
            if peer is not None and said >= 0 and said >= when:
                peer.said(said)

    def take_counters(self) -> None:
        """Add what C forwarded to its channels' counters."""
        for id, rx_frames, rx_bytes, tx_frames, tx_bytes in self.native.take_counters():
            self.forwarded += rx_frames
            ch = self.by_id.get(id)
            if ch is not None:
                ch.rx_frames += rx_frames
                ch.rx_bytes += rx_bytes
                ch.tx_frames += tx_frames
                ch.tx_bytes += tx_bytes

    def stop(self) -> None:
        """The counters taken, the tap's offloads off again: Python reads it from now on."""
        self.take_counters()
        self.native.stop()

    def prune(self, alive: list[Channel]) -> None:
        """Forget channels that are gone (their flows already are: the version moved)."""
        keep = set(alive)
        for ch in [c for c in self.ids if c not in keep]:
            id = self.ids.pop(ch)
            del self.by_id[id]
            self.native.forget(id)
            self._free.append(id)
