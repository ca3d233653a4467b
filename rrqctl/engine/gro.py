"""Receive-side coalescing: runs of segments of one flow become one super-frame for the tap.

Frames for the tap arrive one per datagram (the wire format never changes). Consecutive
segments of one flow are handed to the kernel as one frame with a virtio_net_hdr asking for
GSO and a partial checksum, so the kernel's receive path runs once per run, not per frame:

- TCP: same headers, contiguous sequence numbers, equal sizes but for a shorter last one,
  only ACK (and a final PSH) set -> GSO TCPv4/TCPv6;
- UDP: same addresses and ports, equal sizes but for a shorter last one -> GSO UDP_L4
  (Linux 6.2 and later; the kernel splits it again at the same datagram boundaries).

Anything else goes through unchanged, and order is always kept. An IPv4 run is made only
of datagrams marked don't-fragment, whose id carries nothing (RFC 6864): the kernel numbers
the ids of a run's segments anew from the first one's.

A super-frame reaches the kernel as a virtio NIC hands over a guest's GSO frames, with a
partial checksum, so the kernel does not check again the TCP/UDP checksums of the frames in a
run. So they are checked here first: each frame of a run that came over a plain channel has
its IPv4 header and TCP/UDP checksums verified when the run is closed, and if one is wrong the
run's frames are written one by one, for the kernel to check (and drop the bad one). Frames
of a sealed channel need no such check: the tag of the datagram that carried each vouches for
every byte of it, as the sending engine read it from its tap. The outer UDP checksum vouches
for nothing: it may be 0, or recomputed by whatever corrupted the datagram. A UDP datagram
without a checksum (0) is never coalesced, over IPv4 or IPv6.
"""

from __future__ import annotations

import struct

VNET_HDR = struct.Struct("=BBHHHH")  # flags, gso_type, hdr_len, gso_size, csum_start, csum_offset
VNET_HDR_LEN = VNET_HDR.size  # 10
NEEDS_CSUM = 1
GSO_TCPV4, GSO_UDP_L4, GSO_TCPV6 = 1, 5, 4
PLAIN = bytes(VNET_HDR_LEN)  # no offload: the frame is complete as it is
ETH_LEN = 14
MAX_RUN = 64
MAX_BYTES = 65000
TCP, UDP = 6, 17
TCP_ACK, TCP_PSH = 0x10, 0x08
FLAGS_OK = TCP_ACK | TCP_PSH  # only these may be set in a coalesced TCP segment
IP_DF = 0x4000  # the IPv4 flags and fragment offset of a datagram a run may carry

_IP4 = struct.Struct("!BBHHHBB2x4s4s")  # version/IHL, tos, total, id, frag, ttl, proto, src, dst
_IP6 = struct.Struct(
    "!IHBB16s16s"
)  # version/class/flow, payload length, next header, hops, src, dst
_TCP = struct.Struct("!HHIIBBH2xH")  # ports, seq, ack, data offset, flags, window, urgent
_UDP = struct.Struct("!HHHH")  # ports, length, checksum


class Segment:
    """The parts of one frame that decide whether it can join a run."""

    __slots__ = ("flags", "frame", "hlen", "key", "l3", "l4", "payload_len", "proto", "seq")

    def __init__(
        self, frame: bytes, l3: int, l4: int, hlen: int, *, proto: int, key: object
    ) -> None:
        self.frame = frame
        self.l3 = l3  # 4 or 6
        self.l4 = l4  # where the TCP/UDP header starts
        self.hlen = hlen  # Ethernet + IP + TCP/UDP header bytes
        self.proto = proto
        self.key = key  # everything that must be equal along a run
        self.payload_len = len(frame) - hlen
        self.seq = 0
        self.flags = 0


def parse(frame: bytes) -> Segment | None:
    """The frame as a coalescable TCP or UDP segment, or None."""
    n = len(frame)
    etype = frame[12:14]
    if etype == b"\x08\x00" and n >= ETH_LEN + 28:
        vihl, tos, total, _, frag, ttl, proto, src, dst = _IP4.unpack_from(frame, ETH_LEN)
        # IHL 5 (no IP options), don't-fragment and not a fragment, not padded
        if vihl != 0x45 or frag != IP_DF or total + ETH_LEN != n:
            return None
        l3, l4, ip_key = 4, ETH_LEN + 20, (tos, ttl, src, dst)
    elif etype == b"\x86\xdd" and n >= ETH_LEN + 48:
        vtc, plen, proto, hop, src, dst = _IP6.unpack_from(frame, ETH_LEN)
        if plen + ETH_LEN + 40 != n:  # no extension headers are followed; not padded
            return None
        l3, l4, ip_key = 6, ETH_LEN + 40, (vtc, hop, src, dst)
    else:
        return None
    if proto == TCP:
        return _tcp(frame, n, l3, l4, ip_key)
    if proto == UDP:
        return _udp(frame, n, l3, l4, ip_key)
    return None


def _tcp(frame: bytes, n: int, l3: int, l4: int, ip_key: tuple[object, ...]) -> Segment | None:
    if n < l4 + 20:
        return None
    sport, dport, seq, ack, doff, flags, win, urg = _TCP.unpack_from(frame, l4)
    hlen = l4 + (doff >> 4) * 4
    if doff & 0x0F or doff < 0x50 or flags & ~FLAGS_OK or not flags & TCP_ACK or n <= hlen:
        return None  # reserved bits, a bad offset, SYN/FIN/RST/URG/ECN, or no payload
    # everything but sequence number, IP id, lengths, checksums and PSH must match along a run
    key = (TCP, frame[0:14], ip_key, sport, dport, ack, win, urg, frame[l4 + 20 : hlen])
    seg = Segment(frame, l3, l4, hlen, proto=TCP, key=key)
    seg.seq = seq
    seg.flags = flags
    return seg


def _udp(frame: bytes, n: int, l3: int, l4: int, ip_key: tuple[object, ...]) -> Segment | None:
    sport, dport, length, check = _UDP.unpack_from(frame, l4)
    if length != n - l4 or length <= 8 or check == 0:
        return None  # a length that does not fit, no payload, or no checksum to keep
    return Segment(frame, l3, l4, l4 + 8, proto=UDP, key=(UDP, frame[0:14], ip_key, sport, dport))


def checksums_ok(frame: bytes, l3: int, l4: int, proto: int) -> bool:
    """The frame's IPv4 header checksum and TCP/UDP checksum hold, as a receiver checks them.

    A ones' complement sum of 16-bit words is the sum's value modulo 0xFFFF (2**16 is 1
    there), so the big-endian integer of a run of words stands for their sum: one
    int.from_bytes and one remainder per part, and a checksum that holds sums to 0."""
    if l3 == 4 and int.from_bytes(frame[14:34], "big") % 0xFFFF:
        return False
    addrs = frame[26:34] if l3 == 4 else frame[22:54]
    segment = frame[l4:]
    n = len(segment)
    words = int.from_bytes(segment, "big") << (8 if n & 1 else 0)  # odd: a zero byte after
    return (int.from_bytes(addrs, "big") + proto + n + words) % 0xFFFF == 0


def _fold(s: int) -> int:
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _pseudo_sum(frame: bytes, l3: int, proto: int, l4_len: int) -> int:
    """The pseudo-header sum, folded, not inverted: what CHECKSUM_PARTIAL expects."""
    addrs = frame[26:34] if l3 == 4 else frame[22:54]
    return _fold(sum(struct.unpack(f"!{len(addrs) // 2}H", addrs)) + proto + l4_len)


def superframe(
    first: Segment, frames: list[bytes], payload: int, psh: int
) -> list[bytes | memoryview]:
    """iovecs for one tap write: virtio_net_hdr, the first segment's headers (lengths and
    checksums fixed up for the whole run), then every segment's payload."""
    f, hlen, l4 = first.frame, first.hlen, first.l4
    l4_len = hlen - l4 + payload
    head = bytearray(f[:hlen])
    if first.l3 == 4:
        head[16:18] = (20 + l4_len).to_bytes(2, "big")
        head[24:26] = b"\0\0"
        ipsum = _fold(sum(struct.unpack("!10H", bytes(head[14:34]))))
        head[24:26] = (~ipsum & 0xFFFF).to_bytes(2, "big")
    else:
        head[18:20] = l4_len.to_bytes(2, "big")
    if first.proto == TCP:
        head[l4 + 13] |= psh
        csum_at = 16
        gso = GSO_TCPV4 if first.l3 == 4 else GSO_TCPV6
    else:
        head[l4 + 4 : l4 + 6] = l4_len.to_bytes(2, "big")
        csum_at = 6
        gso = GSO_UDP_L4
    pseudo = _pseudo_sum(f, first.l3, first.proto, l4_len)
    head[l4 + csum_at : l4 + csum_at + 2] = pseudo.to_bytes(2, "big")
    vnet = VNET_HDR.pack(NEEDS_CSUM, gso, hlen, first.payload_len, l4, csum_at)
    return [vnet, bytes(head)] + [memoryview(fr)[hlen:] for fr in frames]


class Write:
    """One write to the tap: its iovecs, the frames it carries (to fall back on), the kind."""

    __slots__ = ("frames", "iov", "nbytes", "proto")

    def __init__(
        self, iov: list[bytes | memoryview], frames: list[bytes], nbytes: int, proto: int = 0
    ) -> None:
        self.iov = iov
        self.frames = frames
        self.nbytes = nbytes  # the frames' bytes, for the counters
        self.proto = proto  # TCP or UDP for a super-frame, 0 for a plain frame


class Coalescer:
    """Collects frames bound for the tap; flush() returns the writes to make, in order.

    A run is its first segment (whose headers the super-frame keeps), its frames, and what
    the next segment must look like; a frame that is exactly that joins with a few byte
    comparisons against the previous one, anything else is parsed in full."""

    def __init__(self) -> None:
        self.first: Segment | None = None
        self.frames: list[bytes] = []
        self.payload = 0  # payload bytes in the run
        self.next_seq = 0  # TCP: the sequence number that continues the run
        self.closed = False  # the last segment was shorter (or had PSH): nothing may follow
        self.psh = 0
        self.unchecked = False  # the run holds frames whose checksums nothing vouched for
        self.writes: list[Write] = []
        self.protocols = {TCP, UDP}  # what may still be coalesced (the kernel may refuse UDP)

    def add(self, frame: bytes, vouched: bool = False) -> None:
        """A frame for the tap. vouched: its bytes are as its sender's kernel made them (a
        sealed channel's tag says so); else its checksums are checked if it joins a run."""
        first = self.first
        if first is not None and not self.closed and self._follows(frame, first):
            if not vouched:
                self.unchecked = True
            self.frames.append(frame)
            self.payload += first.payload_len
            self.next_seq = (self.next_seq + first.payload_len) & 0xFFFFFFFF
            if len(self.frames) >= MAX_RUN:
                self._close()
            return
        seg = parse(frame)
        if seg is not None and seg.proto not in self.protocols:
            seg = None
        if seg is not None and first is not None and self._joins(seg, first):
            if not vouched:
                self.unchecked = True
            self.frames.append(frame)
            self.payload += seg.payload_len
            self.next_seq = (seg.seq + seg.payload_len) & 0xFFFFFFFF
            self.psh = seg.flags & TCP_PSH
            self.closed = bool(self.psh) or seg.payload_len < first.payload_len
            if self.closed or len(self.frames) >= MAX_RUN:
                self._close()
            return
        self._close()
        if seg is None:
            self.writes.append(Write([PLAIN, frame], [frame], len(frame)))
            return
        self.first, self.frames, self.payload = seg, [frame], seg.payload_len
        self.unchecked = not vouched
        self.next_seq = (seg.seq + seg.payload_len) & 0xFFFFFFFF
        self.psh = seg.flags & TCP_PSH
        self.closed = bool(self.psh)

    def _follows(self, frame: bytes, first: Segment) -> bool:
        """The fast test: an IPv4 frame of the run's size, the next of its flow, ACK only."""
        last = self.frames[-1]
        h = first.hlen
        if len(frame) != len(last) or self.payload + first.payload_len + h > MAX_BYTES:
            return False
        if first.proto == TCP and first.l3 == 4:
            return (
                frame[47] == TCP_ACK
                and frame[26:38] == last[26:38]  # addresses and ports
                and int.from_bytes(frame[38:42], "big") == self.next_seq
                and frame[0:18] == last[0:18]  # Ethernet, version, TOS, length
                and frame[20:24] == last[20:24]  # fragments, TTL, protocol
                and frame[42:47] == last[42:47]  # acknowledgment, data offset
                and frame[48:50] == last[48:50]  # window
                and frame[52:h] == last[52:h]  # urgent pointer, options
            )
        if first.proto == UDP and first.l3 == 4:
            return (
                frame[0:18] == last[0:18]
                and frame[20:24] == last[20:24]
                and frame[26:40] == last[26:40]  # addresses, ports, UDP length
                and frame[40:42] != b"\0\0"  # it has a checksum
            )
        return False

    def _joins(self, seg: Segment, first: Segment) -> bool:
        if (
            self.closed
            or seg.key != first.key
            or seg.payload_len > first.payload_len
            or self.payload + seg.payload_len + first.hlen > MAX_BYTES
        ):
            return False
        return seg.proto != TCP or seg.seq == self.next_seq

    def _close(self) -> None:
        first = self.first
        if first is None:
            return
        frames = self.frames
        nbytes = self.payload + len(frames) * first.hlen
        if len(frames) == 1 or (self.unchecked and not self._all_ok(first, frames)):
            self.writes.extend(Write([PLAIN, f], [f], len(f)) for f in frames)
        else:
            iov = superframe(first, frames, self.payload, self.psh)
            self.writes.append(Write(iov, frames, nbytes, first.proto))
        self.first, self.frames, self.payload, self.closed, self.psh = None, [], 0, False, 0
        self.unchecked = False

    @staticmethod
    def _all_ok(first: Segment, frames: list[bytes]) -> bool:
        l3, l4, proto = first.l3, first.l4, first.proto
        return all(checksums_ok(f, l3, l4, proto) for f in frames)

    def flush(self) -> list[Write]:
        self._close()
        writes, self.writes = self.writes, []
        return writes

    @property
    def pending(self) -> bool:
        return bool(self.writes) or self.first is not None
