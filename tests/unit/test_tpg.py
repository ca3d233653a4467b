"""-tpg on a sealed cable: padding goes inside the seal, so every frame size crosses."""

from __future__ import annotations

import os
import time
from pathlib import Path

from rrqctl.engine import crypto
from rrqctl.engine.loop import Engine
from rrqctl.model import build_cable
from tests.unit.test_engine_timing import free_port, received, udp_socket


def engine(port: int, remotes: list[str]) -> Engine:
    settings = build_cable(
        {
            "name": "t",
            "port": port,
            "local": "none",
            "ipv4_only": True,
            "tpg": True,
            "remotes": remotes,
        }
    ).engine_settings()
    e = Engine(settings)
    e.open()
    return e


def pump(*engines: Engine) -> None:
    for _ in range(6):
        for e in engines:
            e._tick(time.monotonic())
            e._on_udp()


def test_frames_of_every_size_cross_a_sealed_tpg_cable(tmp_path: Path) -> None:
    """P -> A (plain) -> B (sealed, -tpg both) -> Q (plain): sizes 1400..1480, each intact
    (a frame whose datagram would be 1461..1477 bytes arrives padded, as upstream pads)."""
    key = tmp_path / "k"
    crypto.generate_keyfile(str(key))
    p, q = udp_socket(), udp_socket()
    pa, pb = free_port(), free_port()
    a = engine(pa, [f"127.0.0.1:{p.getsockname()[1]}", f"127.0.0.1:{pb}={key}"])
    b = engine(pb, [f"127.0.0.1:{pa}={key}", f"127.0.0.1:{q.getsockname()[1]}"])
    try:
        pump(a, b)
        received(p), received(q)
        sent = []
        for n in range(1400, 1481):
            frame = b"\xff" * 6 + b"\x02\0\0\0\0\x01" + b"\x88\xb5" + os.urandom(n - 14)
            p.sendto(frame, ("127.0.0.1", pa))
            sent.append(frame)
            pump(a, b)
        got = [d for d in received(q) if len(d) >= 14]
        assert len(got) == len(sent)
        for frame, d in zip(sent, got, strict=True):
            assert d[: len(frame)] == frame and not d[len(frame) :].strip(b"\0")
        assert "bad-tag" not in b.drops.snapshot()
    finally:
        a.close()
        b.close()
        p.close()
        q.close()


def test_rrqnet_mss_clamp_lowers_the_mss_of_syns_crossing_the_engine() -> None:
    """P -> engine (a switch, rrqnet_mss_clamp 1000) -> Q: a SYN's MSS arrives lowered."""
    from tests.unit.test_l3 import l4_ok, syn

    p, q = udp_socket(), udp_socket()
    settings = build_cable(
        {
            "name": "t",
            "port": free_port(),
            "local": "none",
            "ipv4_only": True,
            "mss_clamp": 1000,
            "remotes": [f"127.0.0.1:{p.getsockname()[1]}", f"127.0.0.1:{q.getsockname()[1]}"],
        }
    ).engine_settings()
    e = Engine(settings)
    e.open()
    try:
        pump(e)
        received(p), received(q)
        frame = b"\xff" * 6 + syn(4, 1460)[6:]  # broadcast: the switch floods it to Q
        assert e.udp is not None
        p.sendto(frame, ("127.0.0.1", e.udp.port))
        pump(e)
        (got,) = [d for d in received(q) if d]
        i = got.index(bytes([2, 4]), 54)
        assert int.from_bytes(got[i + 2 : i + 4], "big") == 1000 and l4_ok(got)
    finally:
        e.close()
        p.close()
        q.close()
