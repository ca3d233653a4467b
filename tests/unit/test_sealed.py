"""Sealed channels (PROTOCOL.md section 4): exact vectors, replay, sessions, tampering."""

from __future__ import annotations

import hashlib

import pytest

from rrqctl.engine import crypto
from tests.unit import rfc8439

KEYFILE = bytes(range(256)) * 4  # a fixed 1 KiB "key file"
T0 = 1_790_000_000_000_000  # session start, us since the epoch
R0 = bytes.fromhex("a1b2c3d4")
FRAME = bytes.fromhex("ffffffffffff020000000001 0806".replace(" ", "")) + b"who has 10.0.0.2? " * 3

# (kind, counter, payload): each recomputed independently (hashlib + RFC 8439 above) and by rrqctl
VECTORS = [
    (0x11, 0, FRAME),
    (0x11, 7, FRAME),
    (0x12, 1, b""),
    (0x11, (1 << 48) - 2, b"\x00" * 14),
]
# Two of them frozen as bytes: a change of the format (or of its key schedule) must fail here.
FROZEN = {
    (0x11, 0): (
        "1100065bfeda25e000a1b2c3d40000000000000000715a1c7b72a6ad9a75beb18e0d3d38b3645c40b8"
        "d997bdce65e5e44ecdb0b11d2ff75ef9d868d4ed57e2ce4ac90a0b780f267a05da175efb03dd35b39f"
        "f2d0c01214052c811cccdf962f37d398c66b683d877ea4"
    ),
    (0x12, 1): "1200065bfeda25e000a1b2c3d4000000000000000145f51d90ab83eeb42a171f9b2ab1a71f",
}


def independent_datagram(kind: int, session_id: bytes, counter: int, payload: bytes) -> bytes:
    """PROTOCOL.md section 4, written out from the spec without rrqctl's code."""
    master = hashlib.blake2b(KEYFILE, digest_size=32, person=b"rrqctl-key-v1").digest()
    ks = hashlib.blake2b(
        b"", digest_size=32, key=master, salt=session_id + bytes(4), person=b"rrqctl-sess-v1"
    ).digest()
    header = bytes([kind]) + session_id + counter.to_bytes(8, "big")
    nonce = bytes(4) + counter.to_bytes(8, "big")
    return header + rfc8439.seal(ks, nonce, payload, header)


def make_sealer(t: int = T0, r: bytes = R0) -> crypto.Sealer:
    return crypto.Sealer(crypto.master_key(KEYFILE), clock_us=lambda: t, random=lambda n: r[:n])


def test_rfc8439_reference_implementation_matches_the_rfc() -> None:
    """RFC 8439 section 2.8.2: the independent implementation is itself right."""
    key = bytes(range(0x80, 0xA0))
    nonce = bytes.fromhex("070000004041424344454647")
    aad = bytes.fromhex("50515253c0c1c2c3c4c5c6c7")
    pt = (
        b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for "
        b"the future, sunscreen would be it."
    )
    out = rfc8439.seal(key, nonce, pt, aad)
    assert out[:16].hex() == "d31a8d34648e60db7b86afbc53ef7ec2"
    assert out[-16:].hex() == "1ae10b594f09e26a7e902ecbd0600691"


@pytest.mark.parametrize(("kind", "counter", "payload"), VECTORS)
def test_sealed_datagram_matches_independent_computation(
    kind: int, counter: int, payload: bytes
) -> None:
    sealer = make_sealer()
    sealer.counter = counter
    sid = T0.to_bytes(8, "big") + R0
    got = sealer.seal(payload, kind)
    assert got == independent_datagram(kind, sid, counter, payload)
    assert len(got) == len(payload) + crypto.OVERHEAD == len(payload) + 37
    assert got[0] == kind and got[1:13] == sid and got[13:21] == counter.to_bytes(8, "big")


@pytest.mark.parametrize(("kind", "counter"), list(FROZEN))
def test_frozen_vectors_never_drift(kind: int, counter: int) -> None:
    payload = FRAME if kind == 0x11 else b""
    sid = T0.to_bytes(8, "big") + R0
    frozen = bytes.fromhex(FROZEN[(kind, counter)])
    assert independent_datagram(kind, sid, counter, payload) == frozen
    sealer = make_sealer()
    sealer.counter = counter
    assert sealer.seal(payload, kind) == frozen


def opener(now_us: int = T0, freshness: float = 600.0) -> crypto.Opener:
    return crypto.Opener(
        crypto.master_key(KEYFILE), crypto.DerivationLimiter(), "peer", freshness, lambda: now_us
    )


def test_open_round_trip_and_heartbeat() -> None:
    s, o = make_sealer(), opener()
    assert o.open(s.seal(FRAME), 0.0) == (crypto.KIND_FRAME, FRAME)
    assert o.open(s.heartbeat(), 0.0) == (crypto.KIND_HEARTBEAT, b"")


def test_replayed_datagram_is_refused() -> None:
    s, o = make_sealer(), opener()
    d = s.seal(FRAME)
    o.open(d, 0.0)
    with pytest.raises(crypto.SealError, match="replay"):
        o.open(d, 0.0)


def test_reordering_within_the_window_is_fine_but_not_beyond() -> None:
    s, o = make_sealer(), opener()
    held = [s.seal(FRAME) for _ in range(5)]
    for d in (held[4], held[1], held[3], held[0], held[2]):
        o.open(d, 0.0)
    old = s.seal(FRAME)
    s.counter += crypto.WINDOW + 10
    o.open(s.seal(FRAME), 0.0)
    with pytest.raises(crypto.SealError, match="too-old"):
        o.open(old, 0.0)


def test_other_key_truncation_and_tampering_are_refused_without_state_change() -> None:
    o = opener()
    other = crypto.Sealer(crypto.master_key(b"x" * 64), clock_us=lambda: T0, random=lambda n: R0)
    with pytest.raises(crypto.SealError, match="bad-tag"):
        o.open(other.seal(FRAME), 0.0)
    assert o.current is None and o.tmax is None
    d = make_sealer().seal(FRAME)
    with pytest.raises(crypto.SealError, match="truncated"):
        o.open(d[:36], 0.0)
    flipped = d[:30] + bytes([d[30] ^ 1]) + d[31:]
    with pytest.raises(crypto.SealError, match="bad-tag"):
        o.open(flipped, 0.0)
    with pytest.raises(crypto.SealError, match="not-sealed"):
        o.open(FRAME + bytes(40), 0.0)
    assert o.current is None
    assert o.open(d, 0.0)[1] == FRAME  # the genuine one still opens


def test_old_sessions_are_refused_after_a_newer_one() -> None:
    o = opener()
    first = make_sealer(T0)
    old_datagram = first.seal(FRAME)
    second = make_sealer(T0 + 1_000_000, b"zzzz")
    o.open(second.seal(FRAME), 0.0)
    with pytest.raises(crypto.SealError, match="old-session"):
        o.open(old_datagram, 0.0)


class Clocks:
    """A wall clock (us since the epoch) and a monotonic one (s) that move together."""

    def __init__(self) -> None:
        self.us = T0

    def wall_us(self) -> int:
        return self.us

    def monotonic(self) -> float:
        return (self.us - T0) / 1e6

    def sealer(self, r: bytes = R0) -> crypto.Sealer:
        return crypto.Sealer(
            crypto.master_key(KEYFILE), self.wall_us, lambda n: r[:n], monotonic=self.monotonic
        )


def test_previous_session_is_accepted_for_a_grace_period() -> None:
    clock = Clocks()
    s = clock.sealer()
    o = opener()
    late = s.seal(FRAME)
    first = s.session_id
    o.open(s.seal(FRAME), 0.0)
    clock.us += int(crypto.SESSION_LIFETIME * 1e6)  # the sender starts a new session
    o.open(s.seal(FRAME), 10.0)
    assert s.session_id != first
    assert o.open(late, 10.0 + crypto.PREVIOUS_GRACE - 1)[1] == FRAME
    late2 = make_sealer().seal(FRAME)  # same first session, counter 0: a replay by now
    with pytest.raises(crypto.SealError):
        o.open(late2, 11.0)


def test_sender_sessions_strictly_increase_even_if_the_clock_steps_back() -> None:
    clock = Clocks()
    s = clock.sealer()
    first = s.session_id
    clock.us -= 5_000_000
    s.rekey()
    assert int.from_bytes(s.session_id[:8], "big") == T0 + 1 > int.from_bytes(first[:8], "big") - 1


def test_sender_starts_a_new_session_every_120s_and_before_the_counter_limit() -> None:
    clock = Clocks()
    s = clock.sealer()
    sid = s.session_id
    s.seal(FRAME)
    clock.us += 119_000_000
    s.seal(FRAME)
    assert s.session_id == sid
    clock.us += 2_000_000
    s.seal(FRAME)
    assert s.session_id != sid and s.counter == 1
    assert int.from_bytes(s.session_id[:8], "big") == T0 + 121_000_000  # T: the wall clock
    sid = s.session_id
    s.counter = crypto.COUNTER_LIMIT - 1
    d = s.seal(FRAME)
    assert s.session_id != sid and d[13:21] == bytes(8)


def test_unfresh_first_session_is_refused_and_freshness_can_be_off() -> None:
    d = make_sealer(T0).seal(FRAME)
    eleven_minutes = 11 * 60 * 1_000_000
    with pytest.raises(crypto.SealError, match="unfresh-session"):
        opener(now_us=T0 + eleven_minutes).open(d, 0.0)
    assert opener(now_us=T0 + eleven_minutes, freshness=0).open(d, 0.0)[1] == FRAME


def test_key_derivations_for_unknown_sessions_are_rate_limited() -> None:
    limiter = crypto.DerivationLimiter(rate=1.0, burst=3.0)
    o = crypto.Opener(crypto.master_key(KEYFILE), limiter, "peer", 600.0, lambda: T0)
    junk = [make_sealer(T0 + i, b"junk").seal(FRAME)[:-1] + b"\0" for i in range(1, 6)]
    reasons = []
    for d in junk:
        with pytest.raises(crypto.SealError) as e:
            o.open(d, 0.0)
        reasons.append(e.value.reason)
    assert reasons == ["bad-tag"] * 3 + ["rate-limited"] * 2


def test_key_file_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        crypto.master_key(b"short")


def test_replay_window_matches_a_plain_set_model() -> None:
    """The ring bitmap says what a set of the counters seen (within the window) would."""
    import random

    rnd = random.Random(3)
    w, seen, top = crypto.ReplayWindow(), set[int](), -1
    for _ in range(20000):
        step = rnd.choice(
            [1, 1, 1, rnd.randrange(2, 2 * crypto.WINDOW), -rnd.randrange(0, 2 * crypto.WINDOW)]
        )
        c = max(top + step, 0)
        if c > top:
            expected = None
        elif top - c >= crypto.WINDOW:
            expected = crypto.TOO_OLD
        else:
            expected = crypto.REPLAY if c in seen else None
        assert w.check(c) == expected, (c, top)
        if expected is None:
            w.mark(c)
            seen.add(c)
            top = max(top, c)


def test_a_step_of_the_wall_clock_neither_hurries_nor_holds_a_new_session() -> None:
    wall, mono = [T0], [0.0]
    s = crypto.Sealer(crypto.master_key(KEYFILE), lambda: wall[0], monotonic=lambda: mono[0])
    sid = s.session_id
    wall[0] += 3600_000_000  # an hour ahead: NTP steps the clock
    s.seal(FRAME)
    assert s.session_id == sid
    wall[0] -= 7200_000_000  # and back
    mono[0] += crypto.SESSION_LIFETIME
    s.seal(FRAME)
    assert s.session_id != sid
    assert int.from_bytes(s.session_id[:8], "big") == T0 + 1  # still after the first session
