"""The C datapath against the Python one: the same frames and datagrams, authentic and
hostile, through each (an engine in this process, its tap a SEQPACKET socket pair, its
remotes UDP sockets on loopback) give the same frames out, the same datagrams sent and the
same counters. On plain channels, and on sealed ones whose sessions are set up alike in
both (the same keys and indexes: ChaCha20-Poly1305 seals the same frame alike), where the
test's peers seal, replay, forge and truncate."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrqctl.engine import fastpath, transport
from rrqctl.engine.gro import VNET_HDR_LEN
from rrqctl.engine.loop import Engine
from rrqctl.engine.ports import TapPort
from rrqctl.model import build_cable
from tests.unit.test_engine_timing import free_port, received, udp_socket

pytest.importorskip("rrqctl.engine._fastpath")

LOCAL_MACS = [bytes.fromhex(f"0200000001{i:02x}") for i in range(3)]
REMOTE_MACS = [bytes.fromhex(f"0200000002{i:02x}") for i in range(4)]
MACS = LOCAL_MACS + REMOTE_MACS + [b"\xff" * 6, bytes.fromhex("010000000001")]
PEERS = 3  # two declared uplinks, and a stranger
ETHERTYPE = b"\x88\xb5"  # (not IP: nothing coalesces, nothing is clamped)

MAC = st.integers(0, len(MACS) - 1)
PEER = st.integers(0, PEERS - 1)
NONE = st.just(0)
PLAIN_EVENTS = [  # (what, from which peer, source MAC, destination MAC, size)
    st.tuples(st.just("tap"), NONE, MAC, MAC, st.integers(0, 300)),
    st.tuples(st.just("udp"), PEER, MAC, MAC, st.integers(0, 300)),
    st.tuples(st.just("heartbeat"), PEER, NONE, NONE, NONE),
    st.tuples(st.just("runt"), PEER, NONE, NONE, st.integers(1, 13)),
]
EVENTS = st.lists(st.one_of(*PLAIN_EVENTS), min_size=1, max_size=30)
HOSTILE = st.sampled_from(["replay", "flip", "truncate", "old-session", "plain"])
SEALED_EVENTS = st.lists(
    st.one_of(*PLAIN_EVENTS, st.tuples(HOSTILE, PEER, MAC, MAC, st.integers(0, 100))),
    min_size=1,
    max_size=30,
)
KEYFILE = Path(tempfile.mkdtemp(prefix="rrq-diff-")) / "key"
KEYFILE.write_bytes(bytes(range(64)))
KEYFILE.chmod(0o600)


def session_keys(peer: int) -> tuple[bytes, bytes, bytes, bytes]:
    """(engine's index, peer's index, engine -> peer key, peer -> engine key): made up, the
    same in both rigs (a handshake would make them at random)."""
    return (bytes([1, 0, 0, peer]), bytes([2, 0, 0, peer]), bytes([peer + 1]) * 32,
            bytes([peer + 101]) * 32)  # fmt: skip


@dataclass
class Rig:
    engine: Engine
    tap: socket.socket  # the other end of the engine's "tap"
    peers: list[socket.socket]
    boxes: list[transport.PyBox] = field(default_factory=list)  # the peers' ends, if sealed

    def port(self) -> int:
        assert self.engine.udp is not None
        return self.engine.udp.port


@contextmanager
def rig(datapath: str, sealed: bool = False) -> Iterator[Rig]:
    old = os.environ.get("RRQNET_DATAPATH")
    os.environ["RRQNET_DATAPATH"] = datapath
    peers = [udp_socket() for _ in range(PEERS)]
    engine_end, test_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    test_end.setblocking(False)
    key = f"={KEYFILE}" if sealed else ""
    remotes = [f"127.0.0.1:{p.getsockname()[1]}{key}" for p in peers[:2]]
    cable = build_cable(
        {"name": "d", "port": free_port(), "local": "none", "ipv4_only": True,
         "remotes": remotes}
    )  # fmt: skip
    e = Engine(cable.engine_settings())
    try:
        e.open()
        tap = object.__new__(TapPort)  # a tap as the engine sees one: frames after a header
        tap.name, tap.fd = "tap0", engine_end.detach()
        os.set_blocking(tap.fd, False)
        e.attach_local(tap)
        assert (e._fp is not None) == (datapath == "c")
        yield Rig(e, test_end, peers, [_session(e, p, n) for n, p in enumerate(peers[:2])])
    finally:
        e.close()
        test_end.close()
        for p in peers:
            p.close()
        if old is None:
            del os.environ["RRQNET_DATAPATH"]
        else:
            os.environ["RRQNET_DATAPATH"] = old


def _session(e: Engine, peer: socket.socket, n: int) -> transport.PyBox:
    """A session of the engine with peer (if its channel is sealed), as if a handshake had
    made it; the peer's end of it."""
    ch = e.by_addr[("127.0.0.1", peer.getsockname()[1])]
    ours, theirs, out, back = session_keys(n)
    if ch.peer is not None:
        sealing = e.peers.sealing
        s = transport.Session(ours, theirs, (out, back), endpoint=ch.addr, keys=ch.peer.keys,
                              initiator=True, now=e.clock(), box=sealing.box)  # fmt: skip
        sealing.sessions[ours] = s
        sealing.adopt(ch.peer, s)
    return transport.PyBox(back, out, transport.TRANSPORT_PREFIX + ours)


def settle(e: Engine) -> None:
    for _ in range(4):
        e.step(0.002)


def run(
    events: list[tuple[Any, ...]], datapath: str, sealed: bool = False
) -> tuple[list[Any], dict[str, Any]]:
    outputs: list[Any] = []
    with rig(datapath, sealed) as r:
        to_engine = ("127.0.0.1", r.port())
        last: dict[int, bytes] = {}  # what each peer sent last (to replay)
        for n, (kind, peer, src, dst, size) in enumerate(events):
            frame = MACS[dst] + MACS[src] + ETHERTYPE + bytes([n]) * size
            if kind == "tap":
                r.tap.send(bytes(VNET_HDR_LEN) + frame)
            else:
                data = _datagram(r, kind, peer, frame, size, last.get(peer, b"junk"))
                last[peer] = data
                r.peers[peer].sendto(data, to_engine)
            settle(r.engine)
            out_tap = []
            while True:
                try:
                    out_tap.append(r.tap.recv(70000)[VNET_HDR_LEN:])
                except BlockingIOError:
                    break
            outputs.append((out_tap, [received(p) for p in r.peers]))
        st_ = r.engine.status()
    counters = {
        "local": _counts(st_["local"]),
        "remotes": [_counts(x) for x in st_["remotes"]],
        "drops": st_["drops"],
        "macs": sorted((m["mac"], m["channel"].split(":")[0]) for m in st_["macs"]),
    }
    return outputs, counters


def _datagram(r: Rig, kind: str, peer: int, frame: bytes, size: int, last: bytes) -> bytes:
    """What a peer sends: plain, or sealed by its end of the session (the stranger's, peer
    2, by the first peer's session), or a hostile change of what it sent last."""
    payload = {"udp": frame, "heartbeat": b"", "runt": b"r" * size}.get(kind, frame)
    if not r.boxes:
        return payload
    if kind == "replay":
        return last
    if kind == "plain":
        return frame
    sealed = r.boxes[peer % 2].seal(payload)
    if kind == "flip":
        return sealed[:-1] + bytes([sealed[-1] ^ 1])
    if kind == "truncate":
        return sealed[: size % len(sealed)]
    if kind == "old-session":
        return sealed[:4] + b"\xee" * 4 + sealed[8:]
    return sealed


def _counts(ch: dict[str, Any]) -> dict[str, Any]:
    keys = ("kind", "state", "rx_frames", "rx_bytes", "rx_heartbeats", "tx_frames", "tx_bytes",
            "tx_heartbeats", "drops")  # fmt: skip
    return {k: ch[k] for k in keys}


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(EVENTS)
def test_the_c_and_python_datapaths_do_the_same(events: list[tuple[Any, ...]]) -> None:
    assert fastpath.which() == "c"
    py_out, py_counts = run(events, "python")
    c_out, c_counts = run(events, "c")
    for n, (p, c) in enumerate(zip(py_out, c_out, strict=True)):
        assert p == c, f"after event {n} {events[n]}"
    assert c_counts == py_counts


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(SEALED_EVENTS)
def test_on_sealed_channels_too(events: list[tuple[Any, ...]]) -> None:
    py_out, py_counts = run(events, "python", sealed=True)
    c_out, c_counts = run(events, "c", sealed=True)
    for n, (p, c) in enumerate(zip(py_out, c_out, strict=True)):
        assert p == c, f"after event {n} {events[n]}"
    assert c_counts == py_counts


def test_sealed_frames_cross_in_c() -> None:
    """Both ways learned on a sealed channel, then the same flows again: C opens and seals
    them (its counters and replay window are the session's), with Python's result."""
    there = ("tap", 0, 0, 3, 60)
    back = ("udp", 0, 3, 0, 60)
    events = [there, back, there, back, there, back, there, back, ("replay", 0, 0, 0, 0)]
    py_out, py_counts = run(events, "python", sealed=True)
    c_out, c_counts = run(events, "c", sealed=True)
    assert c_out == py_out and c_counts == py_counts
    assert c_counts["remotes"][0]["tx_frames"] == 4 and c_counts["local"]["tx_frames"] == 4
    assert c_counts["drops"].get("replay") == 1
    with rig("c", sealed=True) as r:
        to_engine = ("127.0.0.1", r.port())
        for kind, peer, src, dst, size in events[:-1]:
            frame = MACS[dst] + MACS[src] + ETHERTYPE + bytes(size)
            if kind == "tap":
                r.tap.send(bytes(VNET_HDR_LEN) + frame)
            else:
                r.peers[peer].sendto(r.boxes[peer].seal(frame), to_engine)
            settle(r.engine)
        got = [r.boxes[0].open(d) for d in received(r.peers[0])]
        assert [len(g) for g in got if isinstance(g, bytes)] == [74] * 4
        assert r.engine.status()["fast_frames"] >= 3


def test_a_known_flow_crosses_in_c_as_it_does_in_python() -> None:
    """Both ways learned, then the same flows again: C forwards them, with the same result."""
    there = ("tap", 0, 0, 3, 60)  # LOCAL_MACS[0] -> REMOTE_MACS[0]
    back = ("udp", 0, 3, 0, 60)
    events = [there, back, there, back, there, back, there, back]
    py_out, py_counts = run(events, "python")
    c_out, c_counts = run(events, "c")
    assert c_out == py_out and c_counts == py_counts
    assert c_counts["remotes"][0]["tx_frames"] == 4 and c_counts["local"]["tx_frames"] == 4
    with rig("c") as r:  # (and C did forward them)
        to_engine = ("127.0.0.1", r.port())
        for kind, peer, src, dst, size in events:
            frame = MACS[dst] + MACS[src] + ETHERTYPE + bytes(size)
            if kind == "tap":
                r.tap.send(bytes(VNET_HDR_LEN) + frame)
            else:
                r.peers[peer].sendto(frame, to_engine)
            settle(r.engine)
        assert r.engine.status()["fast_frames"] >= 3


@pytest.mark.parametrize("datapath", ["c", "python"])
def test_a_forgotten_sealed_channel_gets_nothing_in(datapath: str) -> None:
    """The key file changes (reload forgets the channel): the peer that held the old key
    keeps sending under its old session, and nothing of it reaches the tap, on either
    datapath (C is told at once that the channel has no sessions left)."""
    with rig(datapath, sealed=True) as r:
        e, to = r.engine, ("127.0.0.1", r.port())
        r.peers[0].sendto(
            r.boxes[0].seal(LOCAL_MACS[0] + REMOTE_MACS[0] + ETHERTYPE + bytes(50)), to
        )
        settle(e)
        r.tap.send(bytes(VNET_HDR_LEN) + REMOTE_MACS[0] + LOCAL_MACS[0] + ETHERTYPE + bytes(50))
        settle(e)
        received(r.tap)
        e.peers.rekeyed({str(KEYFILE)})  # (as reload does when the key file changed)
        e.peers.set_remotes(e.settings.remotes, e._family(), e.clock())
        settle(e)
        r.peers[0].sendto(
            r.boxes[0].seal(LOCAL_MACS[1] + REMOTE_MACS[3] + ETHERTYPE + b"x" * 50), to
        )
        settle(e)
        assert received(r.tap) == []
        assert e.status()["drops"].get("unknown-session") == 1
