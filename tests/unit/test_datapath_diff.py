"""The C datapath against the Python one: the same frames and datagrams, authentic and
hostile, through each (an engine in this process, its tap a SEQPACKET socket pair, its
remotes UDP sockets on loopback) give the same frames out, the same datagrams sent and the
same counters."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrqctl.engine import fastpath
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
EVENTS = st.lists(  # (what, from which peer, source MAC, destination MAC, size)
    st.one_of(
        st.tuples(st.just("tap"), NONE, MAC, MAC, st.integers(0, 300)),
        st.tuples(st.just("udp"), PEER, MAC, MAC, st.integers(0, 300)),
        st.tuples(st.just("heartbeat"), PEER, NONE, NONE, NONE),
        st.tuples(st.just("runt"), PEER, NONE, NONE, st.integers(1, 13)),
    ),
    min_size=1,
    max_size=30,
)


@dataclass
class Rig:
    engine: Engine
    tap: socket.socket  # the other end of the engine's "tap"
    peers: list[socket.socket]

    def port(self) -> int:
        assert self.engine.udp is not None
        return self.engine.udp.port


@contextmanager
def rig(datapath: str) -> Iterator[Rig]:
    old = os.environ.get("RRQNET_DATAPATH")
    os.environ["RRQNET_DATAPATH"] = datapath
    peers = [udp_socket() for _ in range(PEERS)]
    engine_end, test_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    test_end.setblocking(False)
    remotes = [f"127.0.0.1:{p.getsockname()[1]}" for p in peers[:2]]
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
        yield Rig(e, test_end, peers)
    finally:
        e.close()
        test_end.close()
        for p in peers:
            p.close()
        if old is None:
            del os.environ["RRQNET_DATAPATH"]
        else:
            os.environ["RRQNET_DATAPATH"] = old


def settle(e: Engine) -> None:
    for _ in range(4):
        e.step(0.002)


def run(events: list[tuple[Any, ...]], datapath: str) -> tuple[list[Any], dict[str, Any]]:
    outputs: list[Any] = []
    with rig(datapath) as r:
        to_engine = ("127.0.0.1", r.port())
        for n, (kind, peer, src, dst, size) in enumerate(events):
            frame = MACS[dst] + MACS[src] + ETHERTYPE + bytes([n]) * size
            if kind == "tap":
                r.tap.send(bytes(VNET_HDR_LEN) + frame)
            elif kind == "udp":
                r.peers[peer].sendto(frame, to_engine)
            elif kind == "heartbeat":
                r.peers[peer].sendto(b"", to_engine)
            else:
                r.peers[peer].sendto(b"r" * size, to_engine)
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
