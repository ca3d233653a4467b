"""python -m bench.micro: the engine's own cost per frame, without the kernel.

An Engine whose ports take frames and do nothing, fed runs of real TCP segments, small UDP
datagrams and sealed datagrams: microseconds of Python per frame on each path (tap -> UDP
and UDP -> tap), plain and sealed. Deterministic enough to judge a change to the datapath.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from collections.abc import Callable
from typing import Any

from rrqctl.engine import cpucaps, crypto
from rrqctl.engine.channels import Channel, Kind
from rrqctl.engine.gro import Coalescer
from rrqctl.engine.loop import Engine
from rrqctl.engine.ports import TapPort
from rrqctl.engine.remotes import parse_remote
from rrqctl.engine.settings import EngineSettings

MAC_A, MAC_B = bytes.fromhex("020000000001"), bytes.fromhex("020000000002")


class NullTap(TapPort):
    """A tap that hands out the given frames and swallows what is written."""

    def __init__(self, frames: list[bytes]) -> None:  # opens nothing
        self.name = "null0"
        self.fd = -1
        self.frames = frames
        self.i = 0

    def read(self) -> bytes | None:
        if self.i >= len(self.frames):
            return None
        self.i += 1
        return self.frames[self.i - 1]

    def write(self, frame: bytes) -> None:
        pass

    def writev(self, iov: list[Any]) -> None:
        pass

    def fileno(self) -> int:
        return -1

    def close(self) -> None:
        pass


class NullUdp:
    family = 10
    port = 3636

    def send(self, datagrams: list[bytes], addr: Any) -> None:
        pass

    def close(self) -> None:
        pass


def tcp_segments(n: int, size: int = 1348, dst: bytes = MAC_B, src: bytes = MAC_A) -> list[bytes]:
    out = []
    for i in range(n):
        tcp = struct.pack(
            "!HHIIBBHHH", 40000, 5201, 1000 + i * size, 9, 0x80, 0x10, 500, 0, 0
        ) + bytes(12)
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            20 + len(tcp) + size,
            i,
            0x4000,
            64,
            6,
            0,
            bytes([10, 0, 0, 1]),
            bytes([10, 0, 0, 2]),
        )
        out.append(dst + src + b"\x08\x00" + ip + tcp + bytes(size))
    return out


def udp_datagrams(n: int, size: int = 64) -> list[bytes]:
    out = []
    for i in range(n):
        udp = struct.pack("!HHHH", 40000, 5201, 8 + size, 0xBEEF)
        ip = struct.pack(
            "!BBHHHBBH4s4s",
            0x45,
            0,
            28 + size,
            i,
            0x4000,
            64,
            17,
            0,
            bytes([10, 0, 0, 1]),
            bytes([10, 0, 0, 2]),
        )
        out.append(MAC_B + MAC_A + b"\x08\x00" + ip + udp + bytes(size))
    return out


def engine(sealed: bool) -> tuple[Engine, Channel]:
    e = Engine(EngineSettings(name="null0", port=3636, local="tap"))
    e.local = Channel(Kind.LOCAL, "null0", 0.0)
    e.switch.add(e.local)
    e.udp = NullUdp()  # type: ignore[assignment]
    e._gro = Coalescer()
    e.local_port = NullTap([])
    r = parse_remote("10.0.0.2:3636")
    ch = Channel(Kind.UPLINK, "10.0.0.2:3636", 0.0, r, ("::ffff:10.0.0.2", 3636))
    if sealed:
        master = crypto.master_key(bytes(64))
        ch.sealer = crypto.Sealer(master)
        ch.opener = crypto.Opener(master, crypto.DerivationLimiter(), "x", 600)
    e.by_addr[ch.addr] = ch
    e.switch.add(ch)
    # both MACs learned where they belong
    e.switch.route(MAC_A + MAC_B + b"\x08\x00", e.local, 0.0)
    e.switch.route(MAC_B + MAC_A + b"\x08\x00", ch, 0.0)
    return e, ch


def per_frame(fn: Callable[[], int], rounds: int = 300) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        n = fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best * 1e6


def from_udp(sealed: bool, frames: list[bytes], rounds: int = 300) -> float:
    e, ch = engine(sealed)
    if not sealed:

        def run_plain() -> int:
            e._plain(ch, frames, 1.0)
            e._rc_src = None
            e._flush()
            return len(frames)

        return per_frame(run_plain, rounds)
    # A peer's sealer makes every round's datagrams ahead (counters never repeat); the
    # session is opened once beforehand, so rounds time the steady state.
    peer = crypto.Sealer(crypto.master_key(bytes(64)))
    e._sealed(ch, [peer.heartbeat()], 1.0)
    batches = iter([[peer.seal(f) for f in frames] for _ in range(rounds)])

    def run_sealed() -> int:
        datagrams = next(batches)
        e._sealed(ch, datagrams, 1.0)
        e._rc_src = None
        e._flush()
        return len(datagrams)

    return per_frame(run_sealed, rounds)


def from_tap(sealed: bool, frames: list[bytes]) -> float:
    e, _ = engine(sealed)
    rev = [MAC_A + MAC_B + f[12:] for f in frames]  # local host to the remote one

    def run() -> int:
        e.local_port = NullTap(rev)
        e._gro = None
        e._lone_local = False  # a stream: the whole batch in one wake
        e._on_local()
        return len(rev)

    e.batch = len(rev) + 1
    return per_frame(run)


def main() -> int:
    tcp, udp = tcp_segments(64), udp_datagrams(64)
    print(
        f"Python per frame, microseconds (best of 300 runs of 64 frames), {sys.version.split()[0]}"
    )
    print(f"{'path':30} {'plain':>8} {'sealed':>8}")
    for label, fn, frames in (
        ("UDP -> tap, TCP segments", from_udp, tcp),
        ("UDP -> tap, 64-byte UDP", from_udp, udp),
        ("tap -> UDP, TCP segments", from_tap, tcp),
        ("tap -> UDP, 64-byte UDP", from_tap, udp),
    ):
        print(f"{label:30} {fn(False, frames):8.2f} {fn(True, frames):8.2f}")
    return 0


def as_the_engine_runs() -> None:
    """Start again in the engine's environment (OpenSSL's code choice, cpucaps.py) with a
    fixed hash seed: Python and OpenSSL read both only when they start."""
    env = cpucaps.for_datagrams(os.environ, os.uname().machine)
    env.setdefault("PYTHONHASHSEED", "0")
    if env != os.environ:
        os.execve(sys.executable, [sys.executable, "-m", "bench.micro", *sys.argv[1:]], env)


if __name__ == "__main__":
    as_the_engine_runs()
    sys.exit(main())
