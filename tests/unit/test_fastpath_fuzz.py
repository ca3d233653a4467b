"""A million datagrams and frames, authentic, mutated and made up, through the C datapath
(fastpath.c) of an engine in this process: nothing crashes, nothing grows. `make sanitize`
runs this under AddressSanitizer and UBSan, where a stray read or write is an error."""

from __future__ import annotations

import contextlib
import os
import random
import struct
from collections.abc import Callable

import pytest

from rrqctl.engine.gro import VNET_HDR_LEN
from rrqctl.engine.stats import process_usage
from rrqctl.engine.transport import TRANSPORT_PREFIX, PyBox
from tests.unit.test_datapath_diff import ETHERTYPE, LOCAL_MACS, REMOTE_MACS, Rig, rig, settle

pytest.importorskip("rrqctl.engine._fastpath")

TOTAL = int(os.environ.get("RRQCTL_FUZZ_DATAGRAMS", "1000000"))
BURST = 48


def tcp_frame(rnd: random.Random, seq: int, payload: int, v6: bool) -> bytes:
    """A TCP segment from a remote MAC to a local one (checksums as they fall: often wrong)."""
    eth = LOCAL_MACS[0] + REMOTE_MACS[0]
    tcp = struct.pack("!HHIIBBHHH", 5001, 40000, seq, 1, 0x50, 0x10, 512, 0, 0)
    data = rnd.randbytes(payload)
    if v6:
        ip = struct.pack("!IHBB", 0x60000000, len(tcp) + payload, 6, 64) + bytes(32)
        return eth + b"\x86\xdd" + ip + tcp + data
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40 + payload, 0, 0x4000, 64, 6, 0, bytes(4),
                     bytes(4))  # fmt: skip
    return eth + b"\x08\x00" + ip + tcp + data


def vnet(rnd: random.Random) -> bytes:
    """A virtio_net_hdr as a tap might hand one over, or as no tap would."""
    flags = rnd.choice([0, 0, 1, rnd.randrange(256)])
    gso = rnd.choice([0, 0, 1, 4, rnd.randrange(256)])
    return bytes([flags, gso]) + struct.pack("=HHHH", *(rnd.randrange(0, 2000) for _ in range(4)))


def mutate(rnd: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rnd.randrange(1, 4)):
        what = rnd.randrange(3)
        if what == 0 and b:
            b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
        elif what == 1:
            del b[rnd.randrange(len(b) + 1) :]
        else:
            b += rnd.randbytes(rnd.randrange(40))
    return bytes(b)


def quietly(send: Callable[..., object], *args: object) -> None:
    """Send, or drop what a full queue will not take (as a busy network would)."""
    with contextlib.suppress(BlockingIOError):
        send(*args)


class Feed:
    """What goes into the engine: a flow's TCP segments, known flows both ways, mutations."""

    def __init__(self, r: Rig) -> None:
        self.r = r
        self.last = b""  # the last sealed datagram (to replay)
        self.rnd = random.Random(26)
        self.seq = 0
        self.to_engine = ("127.0.0.1", r.port())
        self.there = LOCAL_MACS[0] + REMOTE_MACS[0]
        self.back = REMOTE_MACS[0] + LOCAL_MACS[0]

    def seal(self, frame: bytes) -> bytes:
        """frame as peer 0 sends it: sealed, if the channel is."""
        if not self.r.boxes:
            return frame
        self.last = self.r.boxes[0].seal(frame)
        return self.last

    def learn(self) -> None:
        """Both ways, so that the flows are cached in C."""
        for _ in range(3):
            self.r.tap.send(bytes(VNET_HDR_LEN) + self.back + ETHERTYPE + bytes(50))
            self.r.peers[0].sendto(self.seal(self.there + ETHERTYPE + bytes(50)), self.to_engine)
            settle(self.r.engine)

    def one(self) -> None:
        rnd, r = self.rnd, self.r
        kind = rnd.randrange(10)
        if kind < 4:  # a segment of a flow, in sequence: coalesced for the tap
            n = rnd.choice([1200, 1200, 1200, 300])
            frame = tcp_frame(rnd, self.seq, n, v6=rnd.random() < 0.3)
            self.seq += n
            quietly(r.peers[0].sendto, self.seal(frame), self.to_engine)
        elif kind < 6:  # known flows, plain frames, both ways
            frame = self.there + ETHERTYPE + rnd.randbytes(rnd.randrange(60))
            quietly(r.peers[0].sendto, self.seal(frame), self.to_engine)
            quietly(r.tap.send, bytes(VNET_HDR_LEN) + self.back + ETHERTYPE + rnd.randbytes(40))
        elif kind < 8:  # mutated, from a known peer or a stranger
            frame = tcp_frame(rnd, self.seq, rnd.randrange(0, 1400), v6=rnd.random() < 0.5)
            if r.boxes and rnd.random() < 0.5:  # sealed, then mutated, or replayed
                frame = self.last if rnd.random() < 0.2 else self.seal(frame)
            quietly(r.peers[rnd.choice([0, 0, 2])].sendto, mutate(rnd, frame), self.to_engine)
        else:  # from the tap, with any virtio_net_hdr at all
            frame = tcp_frame(rnd, self.seq, rnd.randrange(0, 3000), v6=rnd.random() < 0.5)
            body = frame[:12] if rnd.random() < 0.5 else self.back
            quietly(r.tap.send, vnet(rnd) + mutate(rnd, body + frame[12:]))

    def drain(self) -> None:
        """Empty what the engine sent (the tap's other end, the peers' sockets)."""
        for s in (self.r.tap, *self.r.peers):
            with contextlib.suppress(BlockingIOError):
                while True:
                    s.recv(70000)


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_a_million_datagrams_and_frames_crash_nothing_and_leak_nothing(sealed: bool) -> None:
    """(Sealed: a quarter of a million, C opening and sealing them with a session's Box.)"""
    total = TOTAL // 4 if sealed else TOTAL
    with rig("c", sealed) as r:
        feed = Feed(r)
        feed.learn()
        rss = sent = 0
        while sent < total:
            for _ in range(BURST):
                feed.one()
            sent += BURST
            for _ in range(3):
                r.engine.step(0)
            feed.drain()
            if rss == 0 and sent >= total // 10:
                rss = process_usage()["rss_bytes"]
        st = r.engine.status()
        grown = process_usage()["rss_bytes"] - rss
        assert st["datapath"] == "c" and st["fast_frames"] > total // 10
        if sealed:  # (what C did not open went up: Python refused and counted it)
            assert st["drops"].get("bad-tag", 0) > 0 and st["drops"].get("replay", 0) > 0
        assert grown < 8 << 20, f"RSS grew by {grown >> 20} MB"


def test_a_box_is_keyed_once_and_its_counter_never_goes_back() -> None:
    """A nonce is never used twice under one key: a Box cannot be keyed again (which would
    start its counter over) nor its counter set back; one never keyed seals nothing."""
    from rrqctl.engine._fastpath import Box

    box = Box(bytes(32), bytes(range(32)), bytes(8))
    first = box.seal(b"frame")
    with pytest.raises(TypeError, match="keyed once"):
        box.__init__(bytes(32), bytes(range(32)), bytes(8))
    assert box.counter == 1
    with pytest.raises(ValueError, match="never goes back"):
        box.counter = 0
    assert box.seal(b"frame") != first
    unkeyed = Box.__new__(Box)
    with pytest.raises(RuntimeError, match="could not seal"):
        unkeyed.seal(b"frame")
    assert unkeyed.open(first) == -3


def _slot(port: int) -> int:
    """The address-table slot fastpath.c's addr_hash (FNV-1a over the key) starts at for
    127.0.0.1:port (an IPv4-mapped IPv6 address, the port, 6 zero bytes)."""
    key = bytes(10) + b"\xff\xff" + bytes([127, 0, 0, 1]) + struct.pack("!H", port) + bytes(6)
    h = 2166136261
    for b in key:
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h & 4095


def test_an_address_is_in_the_table_once_so_a_reused_id_takes_nothing_of_it() -> None:
    """A refreshed channel must find its own slot before a tombstone ahead of it: else a
    stale slot would go on mapping its old address to the id, and once the id is reused for
    a sealed channel, C would open what that old address sends with the new one's sessions."""
    import select
    import socket

    from rrqctl.engine._fastpath import Box, Datapath

    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                 for _ in range(3)]  # fmt: skip
        for s in socks:
            s.bind(("127.0.0.1", 0))
        old, peer, engine = socks
        engine.setblocking(False)  # (as an engine's socket is: C reads until EAGAIN)
        port = old.getsockname()[1]
        clash = next(p for p in range(20000, 60000) if p != port and _slot(p) == _slot(port))
        ep = stack.enter_context(select.epoll())
        ep.register(engine.fileno(), select.EPOLLIN)
        dp = Datapath(ep.fileno(), -1, engine.fileno(), socket.AF_INET)
        far = 1e12
        dp.channel(5, ("127.0.0.1", clash), 1500, 60.0, far)  # takes the slot
        dp.channel(0, ("127.0.0.1", port), 1500, 60.0, far)  # the next one
        dp.forget(5)  # a tombstone ahead of channel 0's slot
        dp.channel(0, ("127.0.0.1", port), 1500, 60.0, far)  # refreshed: its own slot still
        dp.forget(0)
        dp.channel(0, ("127.0.0.1", peer.getsockname()[1]), 1500, 60.0, far)  # id reused
        k1, k2 = os.urandom(32), os.urandom(32)
        dp.sessions(0, None, 0.0, [(b"IDXB", Box(k2, k1, TRANSPORT_PREFIX + b"PEER"), far)])
        sealed = PyBox(k1, k2, TRANSPORT_PREFIX + b"IDXB").seal(b"authentic, wrong address")
        old.sendto(sealed, engine.getsockname())
        ep.poll(1.0)
        _, upcalls, _, heard = dp.poll(0.1, 0)
        dp.stop()
    assert [(u[0], u[1]) for u in upcalls] == [(1, [sealed])]  # up as read, not opened
    assert heard == []
