"""Receive-side coalescing: runs of TCP segments of one flow become one TSO super-frame.

Frames for the tap arrive one per datagram (the wire format never changes). Consecutive
segments of the same TCP flow -- same headers, contiguous sequence numbers, equal sizes
but for a shorter last one, only ACK (and a final PSH) -- are handed to the kernel as one
frame with a virtio_net_hdr asking for GSO (TCPv4/TCPv6) and a partial checksum, so the
kernel's TCP receive path runs once per run instead of once per segment. Anything else
goes through unchanged, and order is always kept.
"""

from __future__ import annotations

import struct

VNET_HDR = struct.Struct("=BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR_LEN = VNET_HDR.size  # 10
NEEDS_CSUM = 1
GSO_TCPV4, GSO_TCPV6 = 1, 4
PLAIN = bytes(VNET_HDR_LEN)  # no offload: the frame is complete as it is
ETH_LEN = 14
MAX_RUN = 64
MAX_BYTES = 65000
TCP_ACK, TCP_PSH = 0x10, 0x08
# Only these may be set in a coalesced segment (PSH only on the last one)
FLAGS_OK = TCP_ACK | TCP_PSH


class Segment:
    """The parts of one TCP-over-Ethernet frame that decide whether it can join a run."""

    __slots__ = ("flags", "frame", "hlen", "key", "l3", "payload_len", "seq")

    def __init__(
        self, frame: bytes, l3: int, hlen: int, seq: int, *, flags: int, key: object
    ) -> None:
        self.frame = frame
        self.l3 = l3  # 4 or 6
        self.hlen = hlen  # Ethernet + IP + TCP header bytes
        self.seq = seq
        self.flags = flags
        self.key = key  # everything that must be equal along a run
        self.payload_len = len(frame) - hlen


# IPv4 (no options) + TCP, and IPv6 (no extension headers) + TCP, from the Ethernet payload
_V4 = struct.Struct("!BBHHHBB2x4s4sHHIIBBH2xH")
_V6 = struct.Struct("!IHBB16s16sHHIIBBH2xH")


def parse(frame: bytes) -> Segment | None:
    """The frame as a coalescable TCP segment, or None (not TCP, options, fragments, SYN ...)."""
    n = len(frame)
    if n < ETH_LEN + 40:
        return None
    etype = frame[12:14]
    if etype == b"\x08\x00":
        (
            vihl,
            tos,
            total,
            _,
            frag,
            ttl,
            proto,
            src,
            dst,
            sport,
            dport,
            seq,
            ack,
            doff,
            flags,
            win,
            urg,
        ) = _V4.unpack_from(frame, ETH_LEN)
        # IHL 5 (no IP options), TCP, neither a fragment nor more fragments, not padded
        if vihl != 0x45 or proto != 6 or frag & 0x3FFF or total + ETH_LEN != n:
            return None
        tcp, l3, ip_key = ETH_LEN + 20, 4, (tos, ttl, src, dst)
    elif etype == b"\x86\xdd" and n >= ETH_LEN + 60:
        vtc, plen, nh, hop, src, dst, sport, dport, seq, ack, doff, flags, win, urg = (
            _V6.unpack_from(frame, ETH_LEN)
        )
        if nh != 6 or plen + ETH_LEN + 40 != n:  # TCP right after the header; not padded
            return None
        tcp, l3, ip_key = ETH_LEN + 40, 6, (vtc, hop, src, dst)
    else:
        return None
    hlen = tcp + (doff >> 4) * 4
    if doff & 0x0F or doff < 0x50 or flags & ~FLAGS_OK or not flags & TCP_ACK or n <= hlen:
        return None  # reserved bits, a bad offset, SYN/FIN/RST/URG/ECN, or no payload
    # everything but sequence number, IP id, lengths, checksums and PSH must match along a run
    key = (frame[0:14], ip_key, sport, dport, ack, win, urg, frame[tcp + 20 : hlen])
    return Segment(frame, l3, hlen, seq, flags=flags, key=key)


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _pseudo_sum(first: bytes, l3: int, tcp_len: int) -> int:
    """The TCP pseudo-header sum, folded, not inverted: what CHECKSUM_PARTIAL expects."""
    addrs = first[26:34] if l3 == 4 else first[22:54]
    s = sum(struct.unpack(f"!{len(addrs) // 2}H", addrs)) + 6 + tcp_len
    return _fold(s)


def superframe(run: list[Segment]) -> list[bytes | memoryview]:
    """iovecs for one tap write: virtio_net_hdr, the first segment's headers (lengths and
    checksums fixed up for the whole run), then every segment's payload."""
    first = run[0]
    f = first.frame
    hlen = first.hlen
    payload = sum(s.payload_len for s in run)
    head = bytearray(f[:hlen])
    tcp = ETH_LEN + (20 if first.l3 == 4 else 40)
    if first.l3 == 4:
        head[16:18] = (hlen - ETH_LEN + payload).to_bytes(2, "big")
        head[24:26] = b"\0\0"
        ipsum = sum(struct.unpack("!10H", bytes(head[14:34])))
        head[24:26] = (~_fold(ipsum) & 0xFFFF).to_bytes(2, "big")
        gso = GSO_TCPV4
    else:
        head[18:20] = (hlen - ETH_LEN - 40 + payload).to_bytes(2, "big")
        gso = GSO_TCPV6
    head[tcp + 13] |= run[-1].flags & TCP_PSH
    tcp_len = hlen - tcp + payload
    head[tcp + 16 : tcp + 18] = _pseudo_sum(f, first.l3, tcp_len).to_bytes(2, "big")
    vnet = VNET_HDR.pack(NEEDS_CSUM, gso, hlen, first.payload_len, tcp, 16)
    return [vnet, bytes(head)] + [memoryview(s.frame)[s.hlen :] for s in run]


class Write:
    """One write to the tap: its iovecs, and the frames it carries (to fall back on)."""

    __slots__ = ("frames", "iov")

    def __init__(self, iov: list[bytes | memoryview], frames: list[bytes]) -> None:
        self.iov = iov
        self.frames = frames


class Coalescer:
    """Collects frames bound for the tap; flush() returns the writes to make, in order."""

    def __init__(self) -> None:
        self.run: list[Segment] = []
        self.run_bytes = 0
        self.writes: list[Write] = []

    def add(self, frame: bytes) -> None:
        seg = parse(frame)
        run = self.run
        if seg is not None and run and self._joins(seg):
            run.append(seg)
            self.run_bytes += seg.payload_len
            if seg.flags & TCP_PSH or len(run) >= MAX_RUN:
                self._close()
            return
        self._close()
        if seg is None:
            self.writes.append(Write([PLAIN, frame], [frame]))
        else:
            self.run = [seg]
            self.run_bytes = seg.payload_len

    def _joins(self, seg: Segment) -> bool:
        run = self.run
        last, first = run[-1], run[0]
        return (
            seg.key == first.key
            and seg.seq == (last.seq + last.payload_len) & 0xFFFFFFFF
            and last.payload_len == first.payload_len  # only the last may be shorter
            and seg.payload_len <= first.payload_len
            and not last.flags & TCP_PSH
            and self.run_bytes + seg.payload_len + first.hlen <= MAX_BYTES
        )

    def _close(self) -> None:
        run = self.run
        if not run:
            return
        frames = [s.frame for s in run]
        if len(run) == 1:
            self.writes.append(Write([PLAIN, frames[0]], frames))
        else:
            self.writes.append(Write(superframe(run), frames))
        self.run = []
        self.run_bytes = 0

    def flush(self) -> list[Write]:
        self._close()
        writes, self.writes = self.writes, []
        return writes
