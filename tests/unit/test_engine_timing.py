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
from rrqctl.engine.handshake import Keys
from rrqctl.engine.loop import Engine
from rrqctl.engine.sessions import SealedPeer, Sealing
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


def udp_socket() -> socket.socket:
    """A non-blocking UDP socket on loopback, on a port of its own."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


@pytest.fixture
def peer() -> Iterator[socket.socket]:
    s = udp_socket()
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
        assert received(peer) == [b""]  # answered: the uplink at the far end knows it is heard
        peer.sendto(b"", ("127.0.0.1", e.udp.port))
        e._on_udp()
        assert received(peer) == []  # at most once a second (the clock stands)
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
        assert received(other) == [b"", FRAME]  # its heartbeat answered; then byte for byte
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


class Client:
    """A sealed peer of the engine on a socket of its own: its own session layer."""

    def __init__(self, key: Path, engine_port: int, source: str = "127.0.0.5") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((source, 0))
        self.sock.setblocking(False)
        self.addr = self.sock.getsockname()
        self.engine = ("127.0.0.1", engine_port)
        self.keys = Keys.from_keyfile(key.read_bytes())
        self.sealing = Sealing(600.0)
        self.peer = SealedPeer(self.keys, self.engine, initiates=True)

    def initiate(self) -> bytes:
        data = self.sealing.initiate(self.peer, time.monotonic())
        self.sock.sendto(data, self.engine)
        return data

    def read(self) -> list[bytes | str | None]:
        out = [
            self.sealing.receive(d, self.engine, self.peer, self.keys, time.monotonic())
            for d in received(self.sock)
        ]
        self.sealing.events.clear()
        return out

    def send(self, payload: bytes) -> None:
        s = self.peer.sender(time.monotonic())
        assert s is not None, "no session"
        self.sock.sendto(s.seal(payload), self.engine)


def sock_at(addr: tuple[str, int]) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(addr)
    s.setblocking(False)
    return s


def test_a_sealed_mask_makes_a_downlink_only_once_a_handshake_is_confirmed(
    tmp_path: Path,
) -> None:
    key = tmp_path / "k"
    crypto.generate_keyfile(str(key))
    clock = Clock()
    e = engine([f"127.0.0.0/8={key}"], clock)
    c = Client(key, e.udp.port)  # type: ignore[union-attr]
    elsewhere = sock_at(("127.0.0.6", 0))
    try:
        init = c.initiate()
        e._on_udp()
        assert e.switch.channels == []  # answered, but nothing made yet
        assert c.read() == [None]  # the response: our handshake is complete
        elsewhere.sendto(init, c.engine)  # the initiation, replayed from another address
        e._on_udp()
        assert received(elsewhere) == []  # gets nothing
        assert e.drops.snapshot() == {"handshake-replay": 1}
        assert e.switch.channels == []
        c.send(b"")  # the first transport datagram confirms the handshake
        e._on_udp()
        (down,) = e.switch.channels
        assert (down.kind, down.addr, down.rx_heartbeats, down.sealed) == (
            "downlink",
            c.addr,
            1,
            True,
        )
    finally:
        elsewhere.close()
        c.sock.close()
        e.close()


def test_forged_traffic_from_a_peers_address_never_keeps_it_out(tmp_path: Path) -> None:
    """Junk, replayed initiations and forged transport datagrams, all from the peer's own
    address and port, cost the engine no handshake budget: the peer, restarted, is back
    at its first try."""
    key = tmp_path / "k"
    crypto.generate_keyfile(str(key))
    clock = Clock()
    e = engine([f"127.0.0.0/8={key}"], clock)
    c = Client(key, e.udp.port)  # type: ignore[union-attr]
    forger = sock_at(c.addr)
    try:
        recorded = [c.initiate() for _ in range(3)]
        e._on_udp()
        received(c.sock)
        for i in range(3000):
            kind = i % 3
            if kind == 0:
                data = recorded[i % 3]
            elif kind == 1:
                data = bytes.fromhex("24000000") + os.urandom(60)
            else:
                data = bytes.fromhex("21000000") + os.urandom(92)
            forger.sendto(data, c.engine)
            if i % 50 == 49:
                e._on_udp()
        e._on_udp()
        drops = e.drops.snapshot()
        assert sum(drops.values()) == 3000
        assert set(drops) == {"handshake-replay", "unknown-session", "bad-mac"}
        forger.close()  # (with SO_REUSEPORT, the answer could go to any socket on the port)
        c.sock.close()
        restarted = Client(key, c.engine[1])
        restarted.sock.close()
        restarted.sock = sock_at(c.addr)
        restarted.initiate()
        e._on_udp()
        assert restarted.read() == [None]  # answered at the first try
        restarted.send(b"")
        e._on_udp()
        assert [ch.addr for ch in e.switch.channels] == [c.addr]
        restarted.sock.close()
    finally:
        forger.close()
        c.sock.close()
        e.close()


def run_loop_for(e: Engine, seconds: float) -> None:
    """The engine's real loop, stopped after `seconds` (threads hand it what they found)."""
    import threading

    threading.Timer(seconds, e.stop).start()
    e.run()


def test_an_uplink_given_by_name_is_resolved_off_the_loop_and_heartbeated(
    peer: socket.socket,
) -> None:
    e = engine([f"localhost:{peer.getsockname()[1]}"], Clock())
    try:
        assert e.by_addr == {}  # nothing known before the resolver answers
        assert [u["name"] for u in e.status()["unresolved"]] == [
            f"localhost:{peer.getsockname()[1]}"
        ]
        run_loop_for(e, 0.3)
        (ch,) = e.by_addr.values()
        assert ch.addr == ("127.0.0.1", peer.getsockname()[1])
        assert ch.name == f"localhost:{peer.getsockname()[1]}"
        e.clock.t += 1.0  # type: ignore[attr-defined]
        e._tick(e.clock())
        assert received(peer) == [b""]  # its first heartbeat
        assert e.status()["unresolved"] == []
    finally:
        e.close()


def test_a_name_that_does_not_resolve_is_said_and_tried_again() -> None:
    e = engine(["no-such-host.invalid:3636"], Clock())
    try:
        run_loop_for(e, 0.5)
        (u,) = e.status()["unresolved"]
        assert u["name"] == "no-such-host.invalid:3636" and u["error"] != "resolving"
        assert e.by_addr == {}
    finally:
        e.close()
