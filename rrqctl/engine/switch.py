"""The learning switch among a cable's channels, with rrqnet(8)'s broadcast-cycle protection.

A source MAC is bound to the channel it arrived on. The binding is sticky for 6 s after
a broadcast/multicast frame and 20 s after a unicast one: a frame from that MAC arriving
via another channel meanwhile is dropped. That is what keeps a triangle of mutual uplinks
from looping. Unicast goes to the channel where the destination was learned; broadcast,
multicast and unknown destinations go to every known channel except the incoming one.

The MAC table is bounded, in shares: the addresses learned from remotes (MAC_LIMIT in all,
MAC_SHARE from any one remote) and those learned from the local end (LOCAL_MAC_LIMIT, a room
of their own, so that no remote can crowd out the host's own). A frame from one address more
than its share holds is dropped (counted as mac-table-full) until old ones age out. Learning
it anyway would let a flood of made-up source MACs eat the host's memory; forwarding it
unlearned would take it out of the broadcast-cycle protection.
"""

from __future__ import annotations

from typing import Any

from rrqctl.engine.channels import Channel, Kind
from rrqctl.engine.frames import format_mac

BROADCAST_HOLD = 6.0
UNICAST_HOLD = 20.0
MAC_AGE = 300.0  # forget a MAC not seen for this long (as a Linux bridge does)
MAC_LIMIT = 16384  # addresses learned from all remotes together (about 200 bytes each)
MAC_SHARE = 4096  # ... from any one remote
LOCAL_MAC_LIMIT = 16384  # addresses learned from the local end, a room of their own

# Drop reasons (also the keys of the drop counters)
IGNORED_MAC = "ignored-mac"
BINDING_CONFLICT = "binding-conflict"
SAME_CHANNEL = "same-channel"
BAD_SOURCE_MAC = "bad-source-mac"
MAC_TABLE_FULL = "mac-table-full"


class Binding:
    __slots__ = ("channel", "held_until", "last_seen")

    def __init__(self, channel: Channel, held_until: float, last_seen: float) -> None:
        self.channel = channel
        self.held_until = held_until
        self.last_seen = last_seen


class MacTable:
    """Where each source MAC was seen (Switch.route learns them) and how long it is held."""

    def __init__(self) -> None:
        self.entries: dict[bytes, Binding] = {}
        self.version = 0  # bumped whenever a forwarding decision could change
        self.held: dict[Channel, int] = {}  # addresses bound to each channel
        self.remote_total = 0  # ... to remote channels, all together

    def lookup(self, mac: bytes) -> Channel | None:
        b = self.entries.get(mac)
        return None if b is None else b.channel

    def has_room(self, channel: Channel) -> bool:
        """Whether channel may bind one more address (its share, and the remotes' limit)."""
        held = self.held.get(channel, 0)
        if channel.kind is Kind.LOCAL:
            return held < LOCAL_MAC_LIMIT
        return held < MAC_SHARE and self.remote_total < MAC_LIMIT

    def bound(self, channel: Channel, n: int) -> None:
        """n more (or fewer) addresses are bound to channel."""
        self.held[channel] = self.held.get(channel, 0) + n
        if channel.kind is not Kind.LOCAL:
            self.remote_total += n

    def forget_channel(self, channel: Channel) -> None:
        for mac in [m for m, b in self.entries.items() if b.channel is channel]:
            del self.entries[mac]
        n = self.held.pop(channel, 0)
        if channel.kind is not Kind.LOCAL:
            self.remote_total -= n
        self.version += 1

    def expire(self, now: float) -> None:
        old = [m for m, b in self.entries.items() if now - b.last_seen >= MAC_AGE]
        for mac in old:
            self.bound(self.entries.pop(mac).channel, -1)
        if old:
            self.version += 1

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        return [
            {
                "mac": format_mac(mac),
                "channel": b.channel.name,
                "age": round(now - b.last_seen, 3),
                "held_for": round(max(0.0, b.held_until - now), 3),
            }
            for mac, b in sorted(self.entries.items())
        ]


class Switch:
    """Where a frame goes. `channels` are the known ones: the flood set."""

    def __init__(self) -> None:
        self.macs = MacTable()
        self.channels: list[Channel] = []

    def add(self, channel: Channel) -> None:
        self.channels.append(channel)
        self.macs.version += 1

    def remove(self, channel: Channel) -> None:
        self.channels.remove(channel)
        self.macs.forget_channel(channel)

    def route(self, frame: bytes, src: Channel, now: float) -> list[Channel] | str:
        """The channels frame goes to, or the reason it is dropped. Learns its source MAC.

        One function, no calls: a lone frame runs it cold (see engine.loop.LONE_GAP)."""
        dst = frame[0:6]
        smac = frame[6:12]
        if smac[0] & 1:
            return BAD_SOURCE_MAC
        ignore = src.ignore
        if ignore and (smac in ignore or dst in ignore):
            return IGNORED_MAC
        group = dst[0] & 1
        # learn: bind smac to src, unless another channel holds it
        macs = self.macs
        hold = now + (BROADCAST_HOLD if group else UNICAST_HOLD)
        b = macs.entries.get(smac)
        if b is None:
            if not macs.has_room(src):
                return MAC_TABLE_FULL
            macs.entries[smac] = Binding(src, hold, now)
            macs.bound(src, 1)
            macs.version += 1
        else:
            if b.channel is not src:
                if now < b.held_until:
                    return BINDING_CONFLICT
                if not macs.has_room(src):
                    return MAC_TABLE_FULL
                macs.bound(b.channel, -1)
                macs.bound(src, 1)
                b.channel = src
                b.held_until = hold
                macs.version += 1
            elif hold > b.held_until:
                b.held_until = hold
            b.last_seen = now
        if not group and (to := macs.entries.get(dst)) is not None:
            out = to.channel
            if out is src:
                return SAME_CHANNEL
            if out.ignore and (dst in out.ignore or smac in out.ignore):
                return IGNORED_MAC
            return [out]
        return [
            c
            for c in self.channels
            if c is not src and not (c.ignore and (smac in c.ignore or dst in c.ignore))
        ]
