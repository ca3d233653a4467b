"""Sealed channels v2 (docs/protocol.md): the bytes on the wire, frozen and computed again
independently; the refusals each message kind owes; the group (multicast) format."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterator

import pytest

from rrqctl.engine import crypto, group, handshake, sessions, transport
from rrqctl.engine.handshake import Keys
from rrqctl.engine.sessions import SealedPeer, Sealing
from rrqctl.engine.state import tpg_pad
from tests.unit import rfc8439

KEYFILE = bytes(range(256)) * 4  # a fixed 1 KiB "key file"
KEYS = Keys.from_keyfile(KEYFILE)
T0 = 1_790_000_000_000_000  # the wall clock, us since the epoch
A, B = ("10.0.0.1", 3636), ("10.0.0.2", 3636)
FRAME = bytes.fromhex("ffffffffffff020000000001 0806".replace(" ", "")) + b"who has 10.0.0.2? " * 3

ZERO_MAC = bytes(16)


def counter_random(seed: int) -> Callable[[int], bytes]:
    """Deterministic 'random' bytes: indexes and nonces the vectors can be frozen with."""
    numbers = itertools.count()

    def random(n: int) -> bytes:
        return hashlib.blake2s(b"%d-%d" % (seed, next(numbers)), digest_size=n).digest()

    return random


def fixed_keys(seed: int) -> Callable[[], crypto.DhKey]:
    numbers = itertools.count()
    return lambda: crypto.DhKey(hashlib.blake2s(b"dh-%d-%d" % (seed, next(numbers))).digest())


def sealing(seed: int, wall: int = T0, freshness: float = 600.0) -> Sealing:
    return Sealing(freshness, wall=lambda: wall, random=counter_random(seed), dh=fixed_keys(seed))


def pair(b_wall: int = T0) -> tuple[Sealing, SealedPeer, Sealing, SealedPeer]:
    """A initiates to B; both know each other (B's side as an uplink too)."""
    a, b = sealing(1), sealing(2, wall=b_wall)
    return a, SealedPeer(KEYS, B, initiates=True), b, SealedPeer(KEYS, A, initiates=False)


def sent(s: Sealing) -> list[tuple[object, ...]]:
    out, s.events = s.events, []
    return out


def handshake_done(now: float = 0.0) -> tuple[Sealing, SealedPeer, Sealing, SealedPeer]:
    a, pa, b, pb = pair()
    init = a.initiate(pa, now)
    assert b.receive(init, A, pb, KEYS, now) is None
    ((_, to, response),) = sent(b)
    assert to == A
    assert a.receive(response, B, pa, KEYS, now) is None
    assert sent(a) == [("established", pa)]
    return a, pa, b, pb


def frozen_exchange() -> Iterator[bytes]:
    """The first datagrams of a cable made with the fixed keys: initiation, response, a
    frame each way."""
    a, pa, b, pb = pair()
    init = a.initiate(pa, 0.0)
    yield init
    b.receive(init, A, pb, KEYS, 0.0)
    response = sent(b)[0][2]
    yield response
    a.receive(response, B, pa, KEYS, 0.0)
    s = pa.sender(0.0)
    assert s is not None
    to_b = s.seal(FRAME)
    yield to_b
    b.receive(to_b, A, pb, KEYS, 0.0)
    back = pb.sender(0.0)
    assert back is not None
    yield back.seal(FRAME)


EXCHANGE = [
    "21000000e319af8d76e08304deb0bf23b8d31c2aca9059ee5fcf2c443d0b068e3782633c6361f36044d6"
    "4d255f7b1c1b72d796810f5176789b3f6f07e5cb2049627f7ffc3d98ad5d3ebd7a8d06a959680000000000"
    "0000000000000000000000",
    "220000003c94ee6ee319af8dc32baff800570b79a29e97b47affcc5fe6e774220d8fa2ce18d1de06ef47a2"
    "5a6fde52556a30608a625476f082d3d8ba28a6b3c01ea85053b763f29b00564f6c00000000000000000000"
    "000000000000",
    "240000003c94ee6e000000000000000038a36f0fbb89277d910792a4da6e02fe59fbdd10ad6340b4f1ceae"
    "78c4f170b490c51e8ae6d2747151b5292585174639fcabe1cf5733e614241b84031f6144a1243126c72d94"
    "12956ad76249107f108bc68defa7",
    "24000000e319af8d0000000000000000737df48f080477621ff9f3a9f99898943b2acd80b692b715761248"
    "eeedc2cfd5fc352fbd36865359fd9fa0bb0c908a927b37a3268e72ce13395cb5628c3dd7f8ac374a397108"
    "0ffba67778a3cc60cbbcb2e0dea1",
]


def test_message_sizes_and_no_amplification() -> None:
    init, response, to_b, back = frozen_exchange()
    assert len(init) == handshake.INITIATION_LEN == 96
    assert len(response) == handshake.RESPONSE_LEN == 92 <= len(init)
    assert len(to_b) == len(back) == len(FRAME) + transport.OVERHEAD == len(FRAME) + 32
    assert handshake.COOKIE_LEN == 52 <= len(init)


def test_the_exchange_is_frozen() -> None:
    got = [d.hex() for d in frozen_exchange()]
    assert got == EXCHANGE


def test_the_wire_format_computed_independently() -> None:
    """Keys from the key file, mac1, and the transport datagrams, each written out from
    docs/protocol.md with hashlib and the RFC 8439 implementation in this directory (the
    Noise handshake itself is checked against its published vectors in test_noise.py)."""
    psk = hashlib.blake2s(KEYFILE, person=b"rrq2-psk").digest()
    mac1_key = hashlib.blake2s(b"mac1----" + psk).digest()
    init, response, to_b, back = frozen_exchange()
    for m in (init, response):
        assert m[-32:-16] == hashlib.blake2s(m[:-32], key=mac1_key, digest_size=16).digest()
        assert m[-16:] == ZERO_MAC
    assert init[:4] == bytes.fromhex("21000000") and response[:4] == bytes.fromhex("22000000")
    assert response[8:12] == init[4:8]  # the response names the initiator's index
    for d, index in ((to_b, response[4:8]), (back, init[4:8])):
        assert d[:4] == bytes.fromhex("24000000")
        assert d[4:8] == index  # the receiver's index, as the receiver chose it
        assert d[8:16] == bytes(8)  # counter 0, little-endian


def test_transport_datagram_is_rfc8439_under_the_split_keys() -> None:
    """A transport datagram is header || ChaCha20-Poly1305(k, 0^4 || counter LE, frame, "")
    with k the initiator's first Split() key."""
    from rrqctl.engine import noise

    a, pa, b, pb = pair()
    init = a.initiate(pa, 0.0)
    b.receive(init, A, pb, KEYS, 0.0)
    response = sent(b)[0][2]
    # the same handshake again, outside the session layer, to learn the split keys
    ini = noise.Initiator(handshake.PROLOGUE, KEYS.psk, fixed_keys(1)())
    assert ini.write_message_1(T0.to_bytes(8, "big")) == init[8:64]
    ini.read_message_2(response[12:60])
    k1, _ = ini.transport_keys()
    a.receive(response, B, pa, KEYS, 0.0)
    s = pa.sender(0.0)
    assert s is not None
    datagram = s.seal(FRAME)
    nonce = bytes(4) + bytes(8)
    assert datagram == bytes.fromhex("24000000") + response[4:8] + bytes(8) + rfc8439.seal(
        k1, nonce, FRAME, b""
    )


# ---- refusals ----------------------------------------------------------------------------


def test_round_trip_each_way_with_its_own_key() -> None:
    a, pa, b, pb = handshake_done()
    sa = pa.sender(0.0)
    assert sa is not None
    d = sa.seal(FRAME)
    assert b.receive(d, A, pb, KEYS, 0.0) == FRAME  # B confirms and adopts the session
    assert pb.sender(0.0) is not None
    back = pb.sender(0.0).seal(FRAME)  # type: ignore[union-attr]
    assert a.receive(back, B, pa, KEYS, 0.0) == FRAME
    # a datagram reflected to its sender does not open there
    assert a.receive(d, B, pa, KEYS, 0.0) in (transport.UNKNOWN_SESSION, handshake.BAD_TAG)
    assert b.receive(back, A, pb, KEYS, 0.0) in (transport.UNKNOWN_SESSION, handshake.BAD_TAG)


def test_replay_reorder_and_too_old() -> None:
    a, pa, b, pb = handshake_done()
    s = pa.sender(0.0)
    assert s is not None
    held = [s.seal(FRAME) for _ in range(5)]
    for d in (held[4], held[1], held[3], held[0], held[2]):
        assert b.receive(d, A, pb, KEYS, 0.0) == FRAME
    assert b.receive(held[2], A, pb, KEYS, 0.0) == transport.REPLAY
    old = s.seal(FRAME)
    s.counter += transport.WINDOW
    assert b.receive(s.seal(FRAME), A, pb, KEYS, 0.0) == FRAME
    assert b.receive(old, A, pb, KEYS, 0.0) == transport.TOO_OLD


def test_a_session_is_bound_to_the_endpoint_that_made_it() -> None:
    """A datagram recorded from A and sent from anywhere else opens nothing, and the
    responder's session is not confirmed by it."""
    a, pa, b, pb = handshake_done()
    s = pa.sender(0.0)
    assert s is not None
    d = s.seal(FRAME)
    other = ("10.0.0.9", 3636)
    assert b.receive(d, other, None, KEYS, 0.0) == transport.WRONG_ENDPOINT
    assert b.receive(d, (A[0], A[1] + 1), None, KEYS, 0.0) == transport.WRONG_ENDPOINT
    assert pb.sessions == [] and sent(b) == []
    assert b.receive(d, A, pb, KEYS, 0.0) == FRAME  # the real one still opens, once


def test_a_replayed_initiation_gets_nothing_from_anywhere() -> None:
    a, pa, b, pb = pair()
    init = a.initiate(pa, 0.0)
    assert b.receive(init, A, pb, KEYS, 0.0) is None
    assert len(sent(b)) == 1
    for source in (A, ("10.0.0.9", 3636), (A[0], 9999)):
        assert b.receive(init, source, None, KEYS, 1.0) == handshake.HANDSHAKE_REPLAY
    assert sent(b) == []
    assert a.receive(init, B, pa, KEYS, 1.0) == handshake.HANDSHAKE_REPLAY  # our own, reflected


def test_responses_and_cookies_for_handshakes_not_in_flight_are_refused() -> None:
    a, pa, b, pb = pair()
    init = a.initiate(pa, 0.0)
    b.receive(init, A, pb, KEYS, 0.0)
    response = sent(b)[0][2]
    assert a.receive(response, ("10.0.0.9", 3636), pa, KEYS, 0.0) == transport.WRONG_ENDPOINT
    assert a.receive(response, B, pa, KEYS, 0.0) is None
    assert a.receive(response, B, pa, KEYS, 0.0) == transport.UNKNOWN_SESSION  # used up
    assert b.receive(response, A, pb, KEYS, 0.0) == transport.UNKNOWN_SESSION  # reflected


@pytest.mark.parametrize(
    ("offset_s", "freshness", "refused"),
    [(30, 600, False), (-30, 600, False), (601, 600, True), (-601, 600, True), (86400, 0, False)],
)
def test_every_handshake_is_dated_and_judged_against_the_clock(
    offset_s: int, freshness: float, refused: bool
) -> None:
    a, pa = sealing(1, wall=T0 + offset_s * 1_000_000), SealedPeer(KEYS, B, initiates=True)
    b = sealing(2, freshness=freshness)
    got = b.receive(a.initiate(pa, 0.0), A, None, KEYS, 0.0)
    assert got == (handshake.UNFRESH if refused else None)
    assert (sent(b) == []) is refused


def test_junk_forged_macs_and_other_keys_change_nothing() -> None:
    a, pa, b, pb = pair()
    stranger = SealedPeer(Keys.from_keyfile(b"x" * 64), B, initiates=True)
    init = a.initiate(pa, 0.0)
    flipped = init[:50] + bytes([init[50] ^ 1]) + init[51:]
    cases = [
        (b"", transport.TRUNCATED),
        (b"\x21\x01\0\0" + bytes(92), transport.NOT_SEALED),
        (init[:95], handshake.MALFORMED),
        (flipped, handshake.BAD_MAC),
        (a.initiate(stranger, 0.0), handshake.BAD_MAC),
        (bytes.fromhex("24000000") + bytes(40), transport.UNKNOWN_SESSION),
        (bytes.fromhex("26000000") + bytes(40), transport.NOT_SEALED),
    ]
    for data, reason in cases:
        assert b.receive(data, A, pb, KEYS, 0.0) == reason
    assert sent(b) == [] and b.sessions == {} and len(b.seen) == 0


def test_under_load_an_initiation_needs_a_cookie_and_then_gets_through() -> None:
    """Past the budget, an initiation gets a cookie reply (once) instead of any DH work; the
    initiator sends it again with the cookie's mac2, and that one is answered."""
    b = sealing(2)
    for i in range(int(sessions.HANDSHAKES_PER_SECOND)):
        other = sealing(100 + i)
        b.receive(
            other.initiate(SealedPeer(KEYS, B, True), 0.0), ("10.0.1.1", 1000 + i), None, KEYS, 0.0
        )
    sent(b)
    a, pa = sealing(1), SealedPeer(KEYS, B, initiates=True)
    init = a.initiate(pa, 0.0)
    assert b.receive(init, A, None, KEYS, 0.0) == handshake.UNDER_LOAD
    ((_, to, cookie),) = sent(b)
    assert to == A and len(cookie) == handshake.COOKIE_LEN
    assert b.receive(init, A, None, KEYS, 0.0) == handshake.UNDER_LOAD
    assert sent(b) == []  # one cookie reply per initiation, however often it comes
    assert a.receive(cookie, B, pa, KEYS, 0.0) is None
    ((_, to, again),) = sent(a)
    assert to == B and again[:-16] == init[:-16] and again[-16:] != ZERO_MAC
    assert b.receive(again, A, None, KEYS, 0.0) is None
    assert [e[0] for e in sent(b)] == ["send"]  # the response
    # the cookie is bound to A's address: the same initiation from elsewhere gets nothing
    assert b.receive(again, ("10.0.0.9", 3636), None, KEYS, 0.0) == handshake.HANDSHAKE_REPLAY


def test_rekey_keeps_the_old_session_open_until_it_expires() -> None:
    a, pa, b, pb = handshake_done()
    first = pa.sender(0.0)
    assert first is not None
    late = first.seal(FRAME)
    assert not pa.needs_handshake(119.0)
    assert pa.needs_handshake(transport.REKEY_AFTER)
    init = a.initiate(pa, 120.0)
    b.receive(init, A, pb, KEYS, 120.0)
    a.receive(sent(b)[0][2], B, pa, KEYS, 120.0)
    assert pa.sender(120.0) is not first
    assert b.receive(late, A, pb, KEYS, 121.0) == FRAME  # the old one still opens
    a.expire(transport.REJECT_AFTER)
    b.expire(transport.REJECT_AFTER)
    assert b.receive(first.seal(FRAME), A, pb, KEYS, transport.REJECT_AFTER) in (
        transport.UNKNOWN_SESSION,
        transport.EXPIRED_SESSION,
    )


def test_replay_window_matches_a_plain_set_model() -> None:
    """The ring bitmap says what a set of the counters seen (within the window) would."""
    import random

    rnd = random.Random(3)
    w, seen, top = transport.ReplayWindow(), set[int](), -1
    for _ in range(20000):
        step = rnd.choice(
            [
                1,
                1,
                1,
                rnd.randrange(2, 2 * transport.WINDOW),
                -rnd.randrange(0, 2 * transport.WINDOW),
            ]
        )
        c = max(top + step, 0)
        if c > top:
            expected = None
        elif top - c >= transport.WINDOW:
            expected = transport.TOO_OLD
        else:
            expected = transport.REPLAY if c in seen else None
        assert w.check(c) == expected, (c, top)
        if expected is None:
            w.mark(c)
            seen.add(c)
            top = max(top, c)


# ---- multicast ---------------------------------------------------------------------------


def group_pair() -> tuple[group.GroupSender, group.GroupReceiver, group.GroupSender]:
    me = group.GroupSender(KEYS.group, wall=lambda: T0)
    other = group.GroupSender(KEYS.group, wall=lambda: T0)
    rx = group.GroupReceiver(KEYS.group, me.own, 600.0, wall=lambda: T0)
    return me, rx, other


def test_group_sessions_are_bound_to_their_first_source() -> None:
    me, rx, other = group_pair()
    d = other.seal(FRAME)
    assert rx.open(d, ("10.0.0.5", 7000), 0.0) == FRAME
    assert rx.open(d, ("10.0.0.5", 7000), 0.0) == transport.REPLAY
    assert rx.open(d, ("10.0.0.5", 7001), 0.0) == group.WRONG_SOURCE  # replayed from a new port
    assert rx.open(other.seal(FRAME), ("10.0.0.6", 7000), 0.0) == group.WRONG_SOURCE
    assert rx.open(other.seal(FRAME), ("10.0.0.5", 7000), 0.0) == FRAME


def test_group_refuses_our_own_sessions_junk_and_stale_ones() -> None:
    me, rx, other = group_pair()
    assert rx.open(me.seal(FRAME), ("10.0.0.5", 7000), 0.0) == group.OWN_SESSION
    junk = other.seal(FRAME)[:-1] + b"\0"
    assert rx.open(junk, ("10.0.0.5", 7000), 0.0) == handshake.BAD_TAG
    assert rx.sessions == {}  # nothing kept of what did not open
    old = group.GroupSender(KEYS.group, wall=lambda: T0 - 601_000_000)
    assert rx.open(old.seal(FRAME), ("10.0.0.7", 7000), 0.0) == group.UNFRESH_SESSION
    stranger = group.GroupSender(Keys.from_keyfile(b"y" * 64).group, wall=lambda: T0)
    assert rx.open(stranger.seal(FRAME), ("10.0.0.8", 7000), 0.0) == handshake.BAD_TAG


def test_group_datagram_computed_independently() -> None:
    me = group.GroupSender(KEYS.group, wall=lambda: T0, random=lambda n: b"\xab" * n)
    d = me.seal(FRAME)
    sid = T0.to_bytes(8, "big") + b"\xab" * 4
    group_key = hashlib.blake2s(KEYFILE, person=b"rrq2-grp").digest()
    key = hashlib.blake2s(sid, key=group_key, person=b"rrq2-mcs").digest()
    header = bytes.fromhex("25000000") + sid + bytes(8)
    assert d == header + rfc8439.seal(key, bytes(12), FRAME, header)
    assert len(d) == len(FRAME) + group.OVERHEAD == len(FRAME) + 40


# ---- -tpg --------------------------------------------------------------------------------


@pytest.mark.parametrize("overhead", [0, transport.OVERHEAD, group.OVERHEAD])
def test_tpg_pads_before_sealing_so_no_datagram_is_1461_to_1477_bytes(overhead: int) -> None:
    for n in range(1400, 1500):
        size = len(tpg_pad(bytes(n), overhead)) + overhead
        assert not 1461 <= size <= 1477
        assert size == (1478 if 1461 <= n + overhead <= 1477 else n + overhead)


def test_key_file_must_be_long_enough(tmp_path: object) -> None:
    import pathlib

    p = pathlib.Path(str(tmp_path)) / "k"
    p.write_bytes(b"short")
    with pytest.raises(ValueError, match="shorter than 32 bytes"):
        crypto.read_keyfile(str(p))
    with pytest.raises(ValueError, match="at least 32 bytes"):
        crypto.generate_keyfile(str(p) + "2", 16)
