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

from rrqctl.engine import cpucaps
from rrqctl.engine.channels import Channel, Kind
from rrqctl.engine.gro import Coalescer
from rrqctl.engine.handshake import Keys
from rrqctl.engine.loop import Engine
from rrqctl.engine.ports import TapPort
from rrqctl.engine.remotes import parse_remote
from rrqctl.engine.sessions import SealedPeer, Sealing
from rrqctl.engine.settings import EngineSettings
from rrqctl.engine.transport import Session

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


class NullSocket:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def sendto(self, data: bytes, addr: Any) -> None:
        self.sent.append(data)


class NullUdp:
    family = 10
    port = 3636

    def __init__(self) -> None:
        self.sock = NullSocket()

    def send(self, datagrams: list[bytes], addr: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _csum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of data, as a sender's kernel fills it in."""
    if len(data) & 1:
        data += b"\0"
    s: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _ipv4(proto: int, ip_id: int, l4: bytes) -> bytes:
    """An IPv4 frame (10.0.0.1 -> 10.0.0.2, don't-fragment) around l4, every checksum right."""
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    at = 16 if proto == 6 else 6
    pseudo = src + dst + struct.pack("!BBH", 0, proto, len(l4))
    l4 = l4[:at] + struct.pack("!H", _csum(pseudo + l4) or 0xFFFF) + l4[at + 2 :]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), ip_id, 0x4000, 64, proto, 0, src, dst)
    return ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:] + l4


def tcp_segments(n: int, size: int = 1348, dst: bytes = MAC_B, src: bytes = MAC_A) -> list[bytes]:
    out = []
    for i in range(n):
        payload = bytes((i + k) & 0xFF for k in range(size))
        tcp = struct.pack("!HHIIBBHHH", 40000, 5201, 1000 + i * size, 9, 0x80, 0x10, 500, 0, 0)
        out.append(dst + src + b"\x08\x00" + _ipv4(6, i, tcp + bytes(12) + payload))
    return out


def udp_datagrams(n: int, size: int = 64) -> list[bytes]:
    out = []
    for i in range(n):
        udp = struct.pack("!HHHH", 40000, 5201, 8 + size, 0) + bytes(size)
        out.append(MAC_B + MAC_A + b"\x08\x00" + _ipv4(17, i, udp))
    return out


KEYS = Keys.from_keyfile(bytes(64))


def engine(sealed: bool) -> tuple[Engine, Channel]:
    settings = EngineSettings(name="null0", port=3636, local="tap", pmtu=False)  # no path here
    e = Engine(settings, clock=lambda: 1.0)
    e.local = Channel(Kind.LOCAL, "null0", 0.0)
    e.switch.add(e.local)
    e.udp = NullUdp()  # type: ignore[assignment]
    e._gro = Coalescer()
    e.local_port = NullTap([])
    e.peers.keys["key"] = KEYS
    r = parse_remote("10.0.0.2:3636=key" if sealed else "10.0.0.2:3636")
    ch = Channel(Kind.UPLINK, "10.0.0.2:3636", 0.0, r, ("::ffff:10.0.0.2", 3636))
    e.peers.add(ch)
    # both MACs learned where they belong
    e.switch.route(MAC_A + MAC_B + b"\x08\x00", e.local, 0.0)
    e.switch.route(MAC_B + MAC_A + b"\x08\x00", ch, 0.0)
    return e, ch


def far_end(e: Engine, ch: Channel) -> Session:
    """The remote end of ch's sealed channel, with a session made by a real handshake."""
    sealing, peer = Sealing(600.0), SealedPeer(KEYS, ("::ffff:10.0.0.1", 3636), initiates=True)
    list(e.peers.opened(ch, [sealing.initiate(peer, 1.0)], 1.0))
    response = e.udp.sock.sent[-1]  # type: ignore[union-attr]
    sealing.receive(response, peer.endpoint, peer, KEYS, 1.0)
    s = peer.sender(1.0)
    assert s is not None
    list(e.peers.opened(ch, [s.seal(b"")], 1.0))  # confirms it
    return s


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
    # The far end's session makes every round's datagrams ahead (counters never repeat); the
    # handshake is done beforehand, so rounds time the steady state.
    peer = far_end(e, ch)
    batches = iter([[peer.seal(f) for f in frames] for _ in range(rounds)])

    def run_sealed() -> int:
        datagrams = next(batches)
        e._take(datagrams, ch.addr, ch, 1.0)
        e._rc_src = None
        e._flush()
        return len(datagrams)

    return per_frame(run_sealed, rounds)


def from_tap(sealed: bool, frames: list[bytes]) -> float:
    e, ch = engine(sealed)
    if sealed:
        far_end(e, ch)
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
    initiator, responder = handshake_cost()
    print(
        f"a handshake, microseconds (best of 200): initiator {initiator:.0f} "
        f"(initiation + response), responder {responder:.0f}"
    )
    return 0


def handshake_cost(rounds: int = 200) -> tuple[float, float]:
    """The CPU a sealed handshake costs each end: two X25519 key pairs and exchanges, the
    Noise hashing, the MACs (what a responder spends on each initiation it answers)."""
    best_i = best_r = float("inf")
    for n in range(rounds):
        a, b = Sealing(600.0), Sealing(600.0)
        pa, pb = SealedPeer(KEYS, ("b", 1), initiates=True), SealedPeer(KEYS, ("a", 1), False)
        t0 = time.perf_counter()
        init = a.initiate(pa, float(n))
        t1 = time.perf_counter()
        b.receive(init, ("a", 1), pb, KEYS, float(n))
        t2 = time.perf_counter()
        a.receive(b.events[0][2], ("b", 1), pa, KEYS, float(n))
        t3 = time.perf_counter()
        best_i = min(best_i, (t1 - t0) + (t3 - t2))
        best_r = min(best_r, t2 - t1)
    return best_i * 1e6, best_r * 1e6


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
