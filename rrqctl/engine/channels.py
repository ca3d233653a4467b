"""The channels of a cable's switch and their life: local port, uplinks, downlinks, multicast.

Timing is rrqnet(8)'s: uplinks send a heartbeat every 30 s, and a downlink silent for 3
minutes is forgotten. A remote is up only while something authentic arrives from it: one
not heard from for two heartbeat intervals is stale (an uplink keeps being tried), with the
reason when it is known. Everything here takes `now` as an argument.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from rrqctl.engine.frames import MAX_FRAME
from rrqctl.engine.remotes import Multicast, Remote

if TYPE_CHECKING:
    from rrqctl.engine.group import GroupSender
    from rrqctl.engine.sessions import SealedPeer

HEARTBEAT_INTERVAL = 30.0
STALE_AFTER = 2 * HEARTBEAT_INTERVAL  # silent this long: stale (the far end heartbeats)
UPLINK_STALE_AFTER = STALE_AFTER
DOWNLINK_FORGET_AFTER = 180.0
HEARTBEAT_REPLY_EVERY = 1.0  # s: a downlink answers heartbeats at most this often
# Downlinks one declaration holds at once: a plain mask admits any source in it, and a
# forged source address makes a channel (its state, a place in every flood) until it has
# been silent for 3 minutes. Past this, datagrams from new sources are dropped, counted.
DOWNLINK_LIMIT = 1024


class Kind(enum.StrEnum):
    LOCAL = "local"
    UPLINK = "uplink"
    DOWNLINK = "downlink"
    MULTICAST = "multicast"


class State(enum.StrEnum):
    WAITING = "waiting"  # an uplink never heard from
    UP = "up"
    STALE = "stale"


class Channel:
    """One port of the switch. Counters are plain attributes: the hot path bumps them."""

    __slots__ = (
        "addr",
        "created",
        "drops",
        "fresh_for",
        "fresh_until",
        "group",
        "ignore",
        "kind",
        "last_heard",
        "last_refusal",
        "max_frame",
        "name",
        "next_heartbeat",
        "path_mtu",
        "peer",
        "refusals",
        "remote",
        "replied",
        "reported",
        "rx_bytes",
        "rx_frames",
        "rx_heartbeats",
        "tx_bytes",
        "tx_frames",
        "tx_heartbeats",
    )

    def __init__(
        self,
        kind: Kind,
        name: str,
        now: float,
        remote: Remote | Multicast | None = None,
        addr: Any = None,
    ) -> None:
        self.kind = kind
        self.name = name
        self.remote = remote
        self.addr = addr  # the socket address datagrams go to
        self.ignore: frozenset[bytes] = frozenset(
            remote.ignore if isinstance(remote, Remote) else ()
        )
        self.created = now
        self.last_heard: float | None = None
        self.fresh_until = 0.0  # heard recently enough to be up until then (the hot path's test)
        self.fresh_for = STALE_AFTER
        self.next_heartbeat = now  # uplinks greet at once
        self.peer: SealedPeer | None = None  # a sealed remote's sessions and handshakes
        self.group: GroupSender | None = None  # a sealed multicast channel's sender
        self.rx_frames = self.rx_bytes = self.rx_heartbeats = 0
        self.tx_frames = self.tx_bytes = self.tx_heartbeats = 0
        self.drops: dict[str, int] = {}
        self.refusals = 0  # datagrams from it refused since it was last heard
        self.last_refusal = ""
        self.replied = float("-inf")  # when a heartbeat of its was last answered
        self.reported = State.WAITING  # the state last logged
        self.path_mtu: int | None = None  # to its address, as the kernel knows it (pmtu.py)
        self.max_frame = MAX_FRAME  # the largest frame one datagram to it carries whole

    @property
    def sealed(self) -> bool:
        return self.peer is not None or self.group is not None

    def heard(self, now: float) -> bool:
        """Note traffic from the far end; True when that makes the channel (newly) up."""
        was_up = now < self.fresh_until
        self.last_heard = now
        self.fresh_until = now + self.fresh_for
        self.refusals = 0
        return not was_up

    def state(self, now: float) -> State:
        if self.kind in (Kind.LOCAL, Kind.MULTICAST):
            return State.UP
        if self.last_heard is None:
            return State.WAITING
        return State.UP if now - self.last_heard < self.fresh_for else State.STALE

    def heartbeat_due(self, now: float) -> bool:
        return self.kind is Kind.UPLINK and now >= self.next_heartbeat

    def heartbeat_sent(self, now: float) -> None:
        self.tx_heartbeats += 1
        self.next_heartbeat = now + HEARTBEAT_INTERVAL

    def forgotten(self, now: float) -> bool:
        """A downlink silent for 3 minutes is dropped from the switch."""
        heard = self.last_heard
        return self.kind is Kind.DOWNLINK and (
            heard is None or now - heard >= DOWNLINK_FORGET_AFTER
        )

    def stale_reason(self, now: float) -> str | None:
        """Why a remote is not up, as far as this end can tell (None when it is up)."""
        state = self.state(now)
        if state is State.UP:
            return None
        if self.refusals:
            return f"{self.refusals} datagrams from it refused since ({self.last_refusal})"
        if self.last_heard is None:
            return "never heard from"
        silent = now - self.last_heard
        return f"{'no reply' if self.kind is Kind.UPLINK else 'silent'} for {silent:.0f}s"

    def answers_heartbeat(self, now: float) -> bool:
        """A downlink answers a heartbeat (at most every HEARTBEAT_REPLY_EVERY), so that the
        uplink at the other end knows it is heard."""
        if self.kind is not Kind.DOWNLINK or now - self.replied < HEARTBEAT_REPLY_EVERY:
            return False
        self.replied = now
        return True

    def drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def refuse(self, reason: str) -> None:
        """A datagram that came from it and was not taken (unlike a frame the switch drops,
        or a send that failed): counted, and kept to say why it may look silent."""
        self.drops[reason] = self.drops.get(reason, 0) + 1
        self.refusals += 1
        self.last_refusal = reason

    def status(self, now: float) -> dict[str, Any]:
        r = self.remote
        return {
            "name": self.name,
            "kind": str(self.kind),
            "declared": r.text() if r is not None else None,
            "state": str(self.state(now)),
            "stale_reason": self.stale_reason(now),
            "sealed": self.sealed,
            "last_heard": None if self.last_heard is None else round(now - self.last_heard, 3),
            "rx_frames": self.rx_frames,
            "rx_bytes": self.rx_bytes,
            "rx_heartbeats": self.rx_heartbeats,
            "tx_frames": self.tx_frames,
            "tx_bytes": self.tx_bytes,
            "tx_heartbeats": self.tx_heartbeats,
            "drops": dict(self.drops),
            **({"path_mtu": self.path_mtu} if self.path_mtu is not None else {}),
            **({"sealing": self.peer.status(now)} if self.peer is not None else {}),
        }

    def __repr__(self) -> str:
        return f"<Channel {self.kind} {self.name}>"
