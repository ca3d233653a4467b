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
