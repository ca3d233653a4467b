"""The channels of a cable's switch and their life: local port, uplinks, downlinks, multicast.

Timing is rrqnet(8)'s: uplinks send a heartbeat every 30 s; an uplink not heard from
for three heartbeat intervals is stale (it keeps being tried); a downlink silent for
3 minutes is stale and forgotten. Everything here takes `now` as an argument.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

from rrqctl.engine.remotes import Multicast, Remote

if TYPE_CHECKING:
    from rrqctl.engine.group import GroupSender
    from rrqctl.engine.sessions import SealedPeer

HEARTBEAT_INTERVAL = 30.0
UPLINK_STALE_AFTER = 3 * HEARTBEAT_INTERVAL
DOWNLINK_FORGET_AFTER = 180.0
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
        "name",
        "next_heartbeat",
        "peer",
        "remote",
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
        self.fresh_for = UPLINK_STALE_AFTER if kind is Kind.UPLINK else DOWNLINK_FORGET_AFTER
        self.next_heartbeat = now  # uplinks greet at once
        self.peer: SealedPeer | None = None  # a sealed remote's sessions and handshakes
        self.group: GroupSender | None = None  # a sealed multicast channel's sender
        self.rx_frames = self.rx_bytes = self.rx_heartbeats = 0
        self.tx_frames = self.tx_bytes = self.tx_heartbeats = 0
        self.drops: dict[str, int] = {}

    @property
    def sealed(self) -> bool:
        return self.peer is not None or self.group is not None

    def heard(self, now: float) -> bool:
        """Note traffic from the far end; True when that makes the channel (newly) up."""
        was_up = now < self.fresh_until
        self.last_heard = now
        self.fresh_until = now + self.fresh_for
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
        return self.kind is Kind.DOWNLINK and self.state(now) is State.STALE

    def drop(self, reason: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1

    def status(self, now: float) -> dict[str, Any]:
        r = self.remote
        return {
            "name": self.name,
            "kind": str(self.kind),
            "declared": r.text() if r is not None else None,
            "state": str(self.state(now)),
            "sealed": self.sealed,
            "last_heard": None if self.last_heard is None else round(now - self.last_heard, 3),
            "rx_frames": self.rx_frames,
            "rx_bytes": self.rx_bytes,
            "rx_heartbeats": self.rx_heartbeats,
            "tx_frames": self.tx_frames,
            "tx_bytes": self.tx_bytes,
            "tx_heartbeats": self.tx_heartbeats,
            "drops": dict(self.drops),
            **({"sealing": self.peer.status(now)} if self.peer is not None else {}),
        }

    def __repr__(self) -> str:
        return f"<Channel {self.kind} {self.name}>"
