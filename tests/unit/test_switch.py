"""The switch rules of rrqnet(8) NOTES, on an injected clock."""

from __future__ import annotations

from collections import Counter, deque

import pytest

from rrqctl.engine.channels import (
    DOWNLINK_FORGET_AFTER,
    HEARTBEAT_INTERVAL,
    UPLINK_STALE_AFTER,
    Channel,
    Kind,
    State,
)
from rrqctl.engine.remotes import parse_remote
from rrqctl.engine.switch import (
    BROADCAST_HOLD,
    LOCAL_MAC_LIMIT,
    MAC_AGE,
    MAC_LIMIT,
    MAC_SHARE,
    UNICAST_HOLD,
    Switch,
)

A = bytes.fromhex("02000000000a")
B = bytes.fromhex("02000000000b")
C = bytes.fromhex("02000000000c")
BCAST = b"\xff" * 6


def frame(dst: bytes, src: bytes, payload: bytes = b"\x08\x00hello") -> bytes:
    return dst + src + payload


def chan(name: str, kind: Kind = Kind.UPLINK, remote: str | None = None) -> Channel:
    return Channel(kind, name, 0.0, parse_remote(remote) if remote else None)


@pytest.fixture
def sw() -> tuple[Switch, Channel, Channel, Channel]:
    s = Switch()
    local, r1, r2 = chan("tap", Kind.LOCAL), chan("r1"), chan("r2")
    for c in (local, r1, r2):
        s.add(c)
    return s, local, r1, r2


def test_broadcast_floods_all_known_channels_but_the_incoming(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    assert s.route(frame(BCAST, A), r1, 0.0) == [local, r2]


def test_unicast_goes_where_the_destination_was_learned(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    s.route(frame(BCAST, B), r2, 0.0)
    assert s.route(frame(B, A), local, 1.0) == [r2]


def test_unknown_unicast_floods(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    assert s.route(frame(C, A), local, 0.0) == [r1, r2]


def test_binding_after_broadcast_holds_6_seconds(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    s.route(frame(BCAST, A), r1, 100.0)
    assert s.route(frame(BCAST, A), r2, 100.0 + BROADCAST_HOLD - 0.01) == "binding-conflict"
    assert s.route(frame(BCAST, A), r2, 100.0 + BROADCAST_HOLD) == [local, r1]


def test_binding_after_unicast_holds_20_seconds(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    s.route(frame(B, A), r1, 100.0)
    assert s.route(frame(BCAST, A), r2, 100.0 + UNICAST_HOLD - 0.01) == "binding-conflict"
    assert s.route(frame(BCAST, A), r2, 100.0 + UNICAST_HOLD) != "binding-conflict"


def test_binding_is_refreshed_by_traffic_on_its_channel(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, ch, other = sw
    conflict = "binding-conflict"
    assert s.route(frame(C, A), ch, 0.0) != conflict  # held until 20
    assert s.route(frame(BCAST, A), ch, 5.0) != conflict  # a broadcast does not shorten it to 11
    assert s.route(frame(C, A), other, 19.9) == conflict
    assert s.route(frame(BCAST, A), ch, 16.0) != conflict  # but extends it to 22
    assert s.route(frame(C, A), other, 21.9) == conflict
    assert s.route(frame(C, A), other, 22.0) != conflict
    assert s.macs.lookup(A) is other


def test_frames_back_to_their_own_channel_are_dropped(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    s.route(frame(BCAST, B), r1, 0.0)
    assert s.route(frame(B, A), r1, 1.0) == "same-channel"


def test_multicast_source_mac_is_dropped(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    assert s.route(frame(BCAST, b"\x03" + A[1:]), r1, 0.0) == "bad-source-mac"


def test_ignore_list_drops_both_ways() -> None:
    s = Switch()
    local = chan("tap", Kind.LOCAL)
    r1 = Channel(Kind.UPLINK, "r1", 0.0, parse_remote("10.0.0.1:1", ignore=(C,)))
    r2 = chan("r2")
    for c in (local, r1, r2):
        s.add(c)
    assert s.route(frame(BCAST, C), r1, 0.0) == "ignored-mac"  # as source, from that channel
    assert s.route(frame(C, A), r1, 0.0) == "ignored-mac"  # as destination, from that channel
    assert s.route(frame(BCAST, C), local, 0.0) == [r2]  # flooded everywhere but r1
    assert s.route(frame(A, B), r1, 0.0) == [local, r2]  # B learned on r1
    assert s.route(frame(B, C), local, 30.0) == "ignored-mac"  # unicast towards r1


def test_removed_channel_forgets_its_macs(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    s.route(frame(BCAST, B), r2, 0.0)
    s.remove(r2)
    assert s.macs.lookup(B) is None
    assert s.route(frame(B, A), local, 1.0) == [r1]


def test_macs_age_out_after_300_seconds(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, ch, _ = sw
    s.route(frame(B, A), ch, 0.0)
    t = s.macs
    t.expire(299.0)
    assert t.lookup(A) is ch
    t.expire(300.0)
    assert t.lookup(A) is None


def made_up(n: int, base: int = 0x100) -> list[bytes]:
    return [(0x020000000000 + base + i).to_bytes(6, "big") for i in range(n)]


def test_a_flood_from_one_remote_takes_its_share_only(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    s.route(frame(BCAST, A), local, 0.0)  # A, behind the tap, learned before the flood
    flood = made_up(MAC_SHARE + 100)
    refused = [m for m in flood if isinstance(s.route(frame(BCAST, m), r1, 1.0), str)]
    assert len(s.macs.entries) == MAC_SHARE + 1
    assert refused == flood[MAC_SHARE:]
    assert s.route(frame(BCAST, B), r2, 2.0) == [local, r1]  # another remote still learns
    assert s.route(frame(BCAST, C), local, 2.0) == [r1, r2]  # and the local end, always
    assert s.route(frame(A, flood[0]), r1, 2.0) == [local]  # known ones still switch
    assert s.route(frame(flood[0], A), local, 2.0) == [r1]
    s.macs.expire(1.0 + MAC_AGE)  # the flood ages out; A, B, C and flood[0] were seen at 2.0
    assert len(s.macs.entries) == 4
    assert s.route(frame(BCAST, flood[1]), r1, 1.0 + MAC_AGE) == [local, r2]  # learning again


def test_remotes_together_hold_at_most_the_limit_and_the_local_end_its_own_room() -> None:
    s, local = Switch(), chan("tap", Kind.LOCAL)
    remotes = [chan(f"r{i}", Kind.DOWNLINK) for i in range(MAC_LIMIT // MAC_SHARE + 1)]
    for ch in (local, *remotes):
        s.add(ch)
    for i, r in enumerate(remotes):
        for m in made_up(MAC_SHARE, base=0x100000 * (i + 1)):
            s.route(frame(BCAST, m), r, 1.0)
    assert len(s.macs.entries) == MAC_LIMIT  # the last remote found no room
    assert s.route(frame(BCAST, made_up(1, base=0x900000)[0]), remotes[-1], 1.0) == "mac-table-full"
    locals_ = made_up(LOCAL_MAC_LIMIT + 10, base=0xA00000)
    refused = [m for m in locals_ if isinstance(s.route(frame(BCAST, m), local, 1.0), str)]
    assert refused == locals_[LOCAL_MAC_LIMIT:]  # the local end's own room, full at its limit
    s.remove(remotes[0])
    assert s.macs.remote_total == MAC_LIMIT - MAC_SHARE
    assert s.route(frame(BCAST, made_up(1, base=0x900000)[0]), remotes[-1], 1.0) != "mac-table-full"


def test_a_mac_moving_to_a_remote_whose_share_is_full_is_refused(sw) -> None:  # type: ignore[no-untyped-def]
    s, local, r1, r2 = sw
    for m in made_up(MAC_SHARE):
        s.route(frame(BCAST, m), r1, 0.0)
    s.route(frame(BCAST, B), r2, 0.0)
    assert s.route(frame(BCAST, B), r1, 100.0) == "mac-table-full"  # past its hold: a move
    assert s.macs.lookup(B) is r2


def test_uplink_heartbeats_every_30_seconds_from_the_start() -> None:
    up = chan("up")
    sent = []
    for now in range(95):
        if up.heartbeat_due(float(now)):
            up.heartbeat_sent(float(now))
            sent.append(now)
    assert sent == [0, 30, 60, 90]
    assert HEARTBEAT_INTERVAL == 30.0
    assert not chan("down", Kind.DOWNLINK).heartbeat_due(0.0)


def test_uplink_states_waiting_up_stale() -> None:
    up = chan("up")
    assert up.state(0.0) is State.WAITING
    up.heard(10.0)
    assert up.state(10.0 + UPLINK_STALE_AFTER - 0.1) is State.UP
    assert up.state(10.0 + UPLINK_STALE_AFTER) is State.STALE
    assert not up.forgotten(1e6)  # uplinks are kept and retried


def test_downlink_silent_for_3_minutes_is_forgotten() -> None:
    down = chan("down", Kind.DOWNLINK)
    down.heard(0.0)
    assert not down.forgotten(DOWNLINK_FORGET_AFTER - 0.1)
    assert down.forgotten(DOWNLINK_FORGET_AFTER)
    assert DOWNLINK_FORGET_AFTER == 180.0


def test_triangle_of_mutual_uplinks_does_not_multiply_broadcasts() -> None:
    """Three switches, each with an uplink to the two others. One ARP broadcast from X's
    host must reach each other host exactly once, and the flood must die out."""
    names = ("X", "Y", "Z")
    switches = {n: Switch() for n in names}
    locals_ = {n: chan(f"tap{n}", Kind.LOCAL) for n in names}
    links: dict[tuple[str, str], Channel] = {}
    for n in names:
        switches[n].add(locals_[n])
        for m in names:
            if m != n:
                links[(n, m)] = chan(f"{n}->{m}")
                switches[n].add(links[(n, m)])
    delivered: Counter[str] = Counter()
    queue: deque[tuple[str, Channel, bytes]] = deque([("X", locals_["X"], frame(BCAST, A))])
    hops = 0
    while queue:
        node, src, f = queue.popleft()
        hops += 1
        assert hops < 100, "broadcast storm"
        out = switches[node].route(f, src, 1.0)
        if isinstance(out, str):
            continue
        for ch in out:
            if ch.kind is Kind.LOCAL:
                delivered[node] += 1
            else:
                peer = ch.name.split("->")[1]
                queue.append((peer, links[(peer, node)], f))
    assert delivered == {"Y": 1, "Z": 1}
    assert hops == 5  # X's tap, then Y and Z directly, then each one's forward to the other
