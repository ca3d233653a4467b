"""Any datagrams at all into a running engine, over real UDP on loopback: authentic frames
cross intact and in order, everything else is dropped and counted, nothing escapes."""

from __future__ import annotations

import itertools
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrqctl.engine.handshake import Keys
from rrqctl.engine.loop import Engine
from rrqctl.engine.sessions import SealedPeer, Sealing
from rrqctl.model import build_cable
from tests.unit.test_engine_timing import free_port, received, udp_socket

BROADCAST = b"\xff" * 6
MAC_A, MAC_B = bytes.fromhex("02000000000a"), bytes.fromhex("02000000000b")

# What the sealed peer A sends, and a number that picks sizes and places. Only the first
# sending of an authentic frame may reach the other side; every other datagram is dropped.
A_KINDS = ["frame"] * 6 + ["runt", "heartbeat", "rekey", "other-key", "junk"]
A_KINDS += ["flip", "cut", "replay"] * 2
A_STEPS = st.tuples(st.sampled_from(A_KINDS), st.integers(0, 10_000))
# What the plain peer B sends: a frame, or a datagram too short to be one.
B_STEPS = st.tuples(st.sampled_from(["frame", "frame", "short"]), st.integers(0, 200))
STEPS = st.lists(
    st.one_of(st.tuples(st.just("A"), A_STEPS), st.tuples(st.just("B"), B_STEPS)),
    min_size=1,
    max_size=40,
)


@dataclass
class Peer:
    sock: socket.socket
    sent: list[bytes] = field(default_factory=list)
    delivered: list[bytes] = field(default_factory=list)  # frames that must come out
    drops: int = 0  # datagrams the engine must drop
    heartbeats: int = 0


class SealedEnd:
    """Peer A's end of the sealed channel: its own session layer, on its own socket."""

    def __init__(self, peer: Peer, key: bytes, engine_addr: tuple[str, int]) -> None:
        self.peer = peer
        self.keys = Keys.from_keyfile(key)
        self.sealing = Sealing(600.0)
        self.state = SealedPeer(self.keys, engine_addr, initiates=True)
        self.engine_addr = engine_addr
        self.payloads: list[bytes] = []  # what the engine sent A, opened

    def handshake(self, e: Engine) -> None:
        """Initiate and read the engine's answer (so that A has a session to seal with)."""
        self.peer.sock.sendto(self.sealing.initiate(self.state, time.monotonic()), self.engine_addr)
        e._on_udp()
        self.read()
        assert self.state.sender(time.monotonic()) is not None, "no handshake with the engine"
        self.peer.sock.sendto(self.seal(b""), self.engine_addr)  # confirms it, as engines do
        self.peer.heartbeats += 1
        e._on_udp()

    def read(self) -> list[bytes]:
        """Payloads of all the engine sent A so far (handshake messages handled, not
        answered)."""
        for d in received(self.peer.sock):
            got = self.sealing.receive(d, self.engine_addr, self.state, self.keys, time.monotonic())
            if isinstance(got, bytes):
                self.payloads.append(got)
        self.sealing.events.clear()
        return self.payloads

    def seal(self, payload: bytes) -> bytes:
        s = self.state.sender(time.monotonic())
        assert s is not None
        return s.seal(payload)


@contextmanager
def cable(key: bytes, lone: bool) -> Iterator[tuple[Engine, Peer, Peer]]:
    """An engine (no local end: a switch) with a sealed uplink to A and a plain one to B.

    lone: its clock makes every wake come 10 ms after the one before, so each datagram is
    a lone one (forwarded at once); else they come in one burst (queued, flushed)."""
    with tempfile.TemporaryDirectory() as d:
        keyfile = os.path.join(d, "k")
        with open(keyfile, "wb") as f:
            f.write(key)
        socks = [udp_socket(), udp_socket()]
        a, b = (Peer(s) for s in socks)
        remotes = [
            f"127.0.0.1:{a.sock.getsockname()[1]}={keyfile}",
            f"127.0.0.1:{b.sock.getsockname()[1]}",
        ]
        settings_ = build_cable(
            {
                "name": "f",
                "port": free_port(),
                "local": "none",
                "ipv4_only": True,
                "remotes": remotes,
            }
        ).engine_settings()
        wakes = itertools.count()
        clock = (lambda: time.monotonic() + 0.01 * next(wakes)) if lone else time.monotonic
        e = Engine(settings_, clock=clock)
        e.open()
        try:
            yield e, a, b
        finally:
            e.close()
            for s in socks:
                s.close()


def frame(src: bytes, n: int) -> bytes:
    return BROADCAST + src + b"\x88\xb5" + os.urandom(n)  # broadcast: flooded to the other side


def sealed_step(a: Peer, end: SealedEnd, stranger: SealedEnd, what: str, n: int) -> bytes:
    """The datagram A sends for one step, and what the engine must make of it."""
    if what == "frame":
        payload = frame(MAC_A, n % 201)
        a.delivered.append(payload)
        return end.seal(payload)
    if what == "heartbeat":
        a.heartbeats += 1
        return end.seal(b"")
    a.drops += 1
    if what == "runt":
        return end.seal(os.urandom(1 + n % 13))
    if what == "other-key":  # a handshake under another key file
        return stranger.sealing.initiate(stranger.state, time.monotonic())
    if what == "junk":
        return os.urandom(n % 121)
    if what == "replay" and a.sent:
        return a.sent[n % len(a.sent)]
    d = bytearray(end.seal(frame(MAC_A, 20)))
    if what == "flip":  # the kind, the reserved bytes, the index, the counter, the ciphertext
        i = n % len(d)
        d[i] ^= 1 << (n % 8)
        return bytes(d)
    return bytes(d[: len(d) - 1 - n % len(d)])  # cut


@pytest.mark.parametrize("lone", [True, False], ids=["lone", "burst"])
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(STEPS)
def test_only_authentic_frames_cross_and_every_other_datagram_is_counted(
    lone: bool, steps: list[tuple[str, tuple[str, int]]]
) -> None:
    key = os.urandom(64)
    with cable(key, lone) as (e, a, b):
        assert e.udp is not None
        to_engine = ("127.0.0.1", e.udp.port)
        end = SealedEnd(a, key, to_engine)
        stranger = SealedEnd(a, os.urandom(64), to_engine)
        end.handshake(e)
        for side, (what, n) in steps:
            if side == "B":
                data = frame(MAC_B, n) if what == "frame" else b"x" * (n % 14)
                if what == "frame":
                    b.delivered.append(data)
                elif len(data) < 12:
                    b.heartbeats += 1
                else:
                    b.drops += 1  # a runt
                b.sock.sendto(data, to_engine)
                e._on_udp()
                continue
            if what == "rekey":  # a new handshake: the old session stays open meanwhile
                end.handshake(e)
                continue
            data = sealed_step(a, end, stranger, what, n)
            a.sent.append(data)
            a.sock.sendto(data, to_engine)
            e._on_udp()
        e._on_udp()

        # B got A's authentic frames, plain, in order (and perhaps a greeting heartbeat)
        assert [d for d in received(b.sock) if d] == a.delivered
        # A got B's frames sealed, in order (and perhaps sealed heartbeats, handshakes)
        assert [p for p in end.read() if p] == b.delivered
        ch_a, ch_b = (e.by_addr[("127.0.0.1", p.sock.getsockname()[1])] for p in (a, b))
        for ch, peer in ((ch_a, a), (ch_b, b)):
            assert ch.rx_frames == len(peer.delivered)
            assert ch.rx_heartbeats == peer.heartbeats
            assert sum(ch.drops.values()) == peer.drops
        assert e.drops.total == a.drops + b.drops
