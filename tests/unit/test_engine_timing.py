"""The engine's timers on an injected clock, over real UDP sockets on loopback."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from rrqctl.engine import crypto
from rrqctl.engine.channels import DOWNLINK_LIMIT
from rrqctl.engine.loop import Engine
from rrqctl.model import build_cable

FRAME = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x06" + bytes(28)


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def free_port() -> int:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port: int = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    yield s
    s.close()


def engine(remotes: list[str], clock: Clock) -> Engine:
    cable = build_cable(
        {"name": "t", "port": free_port(), "local": "none", "ipv4_only": True, "remotes": remotes}
    )
    e = Engine(cable.engine_settings(), clock=clock)
    e.open()
    return e


def received(sock: socket.socket) -> list[bytes]:
    """What arrived so far (loopback queues a datagram before sendto returns)."""
    out = []
    try:
        while True:
            out.append(sock.recv(65536))
    except BlockingIOError:
        return out


def test_uplink_heartbeats_are_empty_datagrams_every_30_seconds(peer: socket.socket) -> None:
    clock = Clock()
    e = engine([f"127.0.0.1:{peer.getsockname()[1]}"], clock)
    try:
        sent_at = []
        for dt in range(95):
            clock.t = 1000.0 + dt
            e._tick(clock.t)
            if received(peer):
                sent_at.append(dt)
        assert sent_at == [0, 30, 60, 90]
    finally:
        e.close()


def test_first_word_from_an_uplink_is_answered_with_a_heartbeat(peer: socket.socket) -> None:
    clock = Clock()
    e = engine([f"127.0.0.1:{peer.getsockname()[1]}"], clock)
    try:
        e._tick(clock.t)
        assert received(peer) == [b""]
        assert e.udp is not None
        peer.sendto(b"", ("127.0.0.1", e.udp.port))
        clock.t += 5
        e._on_udp()
        assert received(peer) == [b""]  # greeted back at once, not after 30 s
        peer.sendto(b"", ("127.0.0.1", e.udp.port))
        e._on_udp()
        assert received(peer) == []  # only on the first contact
    finally:
        e.close()


def test_short_datagrams_are_heartbeats_and_downlinks_are_forgotten_after_3_minutes(
    peer: socket.socket,
) -> None:
    clock = Clock()
    e = engine(["127.0.0.0/8"], clock)
    try:
        assert e.udp is not None
        peer.sendto(b"x" * 11, ("127.0.0.1", e.udp.port))
        e._on_udp()
        (down,) = e.switch.channels
        assert (down.kind, down.rx_heartbeats, down.rx_frames) == ("downlink", 1, 0)
        assert received(peer) == []  # downlinks are not greeted: the far end keeps them
        peer.sendto(b"x" * 12, ("127.0.0.1", e.udp.port))  # 12 bytes: not a heartbeat, a runt
        e._on_udp()
        assert e.drops.snapshot() == {"runt": 1}
        clock.t += 179.9
        e._tick(clock.t)
        assert e.switch.channels == [down]
        clock.t += 0.1
        e._tick(clock.t)
        assert e.switch.channels == [] and e.by_addr == {}
    finally:
        e.close()


def test_frames_flood_between_downlinks_of_a_pure_switch(peer: socket.socket) -> None:
    clock = Clock()
    e = engine(["127.0.0.0/8"], clock)
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.bind(("127.0.0.1", 0))
    other.setblocking(False)
    try:
        assert e.udp is not None
        other.sendto(b"", ("127.0.0.1", e.udp.port))
        e._on_udp()
        peer.sendto(FRAME, ("127.0.0.1", e.udp.port))
        e._on_udp()
        assert received(other) == [FRAME]  # byte for byte, plain
        assert received(peer) == []
    finally:
        other.close()
        e.close()


def heartbeat_from(source: str, port: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((source, 0))
        s.sendto(b"", ("127.0.0.1", port))
    finally:
        s.close()


def test_a_mask_holds_at_most_its_limit_of_downlinks_and_takes_new_ones_as_old_go(
    peer: socket.socket,
) -> None:
    clock = Clock()
    e = engine(["127.0.0.0/8", "127.1.0.0/16"], clock)
    try:
        assert e.udp is not None
        port = e.udp.port
        peer.sendto(b"", ("127.0.0.1", port))  # the first downlink: 127.0.0.1
        e._on_udp()
        sources = [f"127.0.{i // 200}.{i % 200 + 2}" for i in range(DOWNLINK_LIMIT)]
        for src in sources:
            clock.t += 0.1
            heartbeat_from(src, port)
            e._on_udp()
        addrs = {ch.addr[0] for ch in e.switch.channels}
        assert addrs == {"127.0.0.1", *sources[:-1]}  # the one past the limit made none
        assert e.drops.snapshot() == {"downlinks-full": 1}
        heartbeat_from("127.1.0.1", port)  # another declaration has a limit of its own
        e._on_udp()
        assert "127.1.0.1" in {ch.addr[0] for ch in e.switch.channels}
        peer.sendto(b"", ("127.0.0.1", port))  # a known downlink is still heard
        e._on_udp()
        assert e.drops.snapshot() == {"downlinks-full": 1}
        clock.t += 180.0 - 0.1 * DOWNLINK_LIMIT / 2  # the older half: silent for 3 minutes
        e._tick(clock.t)
        assert len(e.switch.channels) < DOWNLINK_LIMIT
        heartbeat_from(sources[-1], port)
        e._on_udp()
        assert sources[-1] in {ch.addr[0] for ch in e.switch.channels}
        assert e.drops.snapshot() == {"downlinks-full": 1}
    finally:
        e.close()


def forged_session() -> bytes:
    """A sealed frame of a fresh session that no key made: each costs a key derivation."""
    sid = int(time.time() * 1e6).to_bytes(8, "big") + os.urandom(4)
    return b"\x11" + sid + bytes(8) + os.urandom(60 + 16)


def test_key_derivations_are_limited_per_address_whatever_its_ports(tmp_path: Path) -> None:
    key = tmp_path / "k"
    crypto.generate_keyfile(str(key))
    clock = Clock()
    e = engine([f"127.0.0.0/8={key}"], clock)
    try:
        assert e.udp is not None
        for source in ["127.0.0.1"] * 30 + ["127.0.0.2"] * 30:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((source, 0))  # a port of its own each time
            s.sendto(forged_session(), ("127.0.0.1", e.udp.port))
            s.close()
            e._on_udp()
        burst = int(crypto.DerivationLimiter().burst)  # the clock stands: no refill
        assert e.drops.snapshot() == {"bad-tag": 2 * burst, "rate-limited": 60 - 2 * burst}
        assert e.switch.channels == []
    finally:
        e.close()
