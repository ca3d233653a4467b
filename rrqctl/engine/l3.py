"""What the cable does at the IP layer of the frames it carries, which is nothing but for
their size: a frame too big for the path is answered as a router answers a packet too big
for its next link (RFC 1191, RFC 1812, RFC 8201), and TCP SYNs may have their MSS clamped.

    IPv4 with DF     an ICMP "fragmentation needed" back to its sender, with the MTU
    IPv4 without DF  its packet in fragments that fit, sent on
    IPv6             an ICMPv6 "packet too big" back to its sender, with the MTU
    anything else    dropped (and counted by the caller)

The answer comes from the packet's destination address, as if that host's router spoke; an
ICMP error is never answered with one. Pure: frames in, frames out.
"""

from __future__ import annotations

import struct

ETH_HLEN = 14
IPV4, IPV6 = b"\x08\x00", b"\x86\xdd"
ICMP, TCP, ICMPV6 = 1, 6, 58
IP_DF, IP_MF, IP_OFFSET = 0x4000, 0x2000, 0x1FFF
IPV4_ERRORS_QUOTE = 576 - 20 - 8  # an ICMP error stays within 576 bytes (RFC 1812)
IPV6_ERRORS_QUOTE = 1280 - 40 - 8  # ... within the IPv6 minimum MTU (RFC 4443)
ICMP_ERROR_TYPES = frozenset({3, 4, 5, 11, 12})
TCP_SYN = 0x02
MSS_OPTION = 2


def checksum(*parts: bytes) -> int:
    """The Internet checksum (RFC 1071) of the parts, each of even length but the last."""
    total = 0
    for p in parts:
        total += int.from_bytes(p, "big") << (8 if len(p) & 1 else 0)
    return (0xFFFF - total % 0xFFFF) % 0xFFFF


def _reply_ether(frame: bytes, ethertype: bytes) -> bytes:
    return frame[6:12] + frame[0:6] + ethertype


def answer_too_big(frame: bytes, mtu: int) -> tuple[str, list[bytes]]:
    """What to do with frame, too big for a link of IP MTU mtu: ("back", [frames to its
    sender]), ("on", [fragments to send on]) or ("drop", [])."""
    ethertype = frame[12:14]
    if frame[0] & 1 or len(frame) < ETH_HLEN + 20:
        return "drop", []
    if ethertype == IPV4 and frame[14] >> 4 == 4:
        flags = int.from_bytes(frame[20:22], "big")
        if flags & IP_DF:
            icmp = frag_needed(frame, mtu)
            return ("back", [icmp]) if icmp is not None else ("drop", [])
        return ("on", fragments) if (fragments := fragment(frame, mtu)) else ("drop", [])
    if ethertype == IPV6 and len(frame) >= ETH_HLEN + 40 and frame[14] >> 4 == 6:
        icmp6 = packet_too_big(frame, mtu)
        return ("back", [icmp6]) if icmp6 is not None else ("drop", [])
    return "drop", []


def _is_icmp_error_v4(packet: bytes, ihl: int) -> bool:
    return packet[9] == ICMP and len(packet) > ihl and packet[ihl] in ICMP_ERROR_TYPES


def frag_needed(frame: bytes, mtu: int) -> bytes | None:
    """ICMP type 3 code 4 for an IPv4 packet with DF that does not fit mtu."""
    packet = frame[ETH_HLEN:]
    ihl = (packet[0] & 0x0F) * 4
    if ihl < 20 or len(packet) < ihl or _is_icmp_error_v4(packet, ihl):
        return None
    if int.from_bytes(packet[6:8], "big") & IP_OFFSET:
        return None  # only a packet's first fragment is answered
    quote = packet[:IPV4_ERRORS_QUOTE]
    icmp = struct.pack("!BBHHH", 3, 4, 0, 0, mtu) + quote
    icmp = icmp[:2] + checksum(icmp).to_bytes(2, "big") + icmp[4:]
    src, dst = packet[12:16], packet[16:20]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0xC0, 20 + len(icmp), 0, 0, 64, ICMP, 0, dst, src)
    ip = ip[:10] + checksum(ip).to_bytes(2, "big") + ip[12:]
    return _reply_ether(frame, IPV4) + ip + icmp


def packet_too_big(frame: bytes, mtu: int) -> bytes | None:
    """ICMPv6 type 2 for an IPv6 packet that does not fit mtu."""
    packet = frame[ETH_HLEN:]
    src, dst = packet[8:24], packet[24:40]
    if packet[6] == ICMPV6 and len(packet) > 40 and packet[40] < 128:
        return None  # an ICMPv6 error
    if dst[0] == 0xFF:
        return None  # no multicast source for the answer
    body = struct.pack("!BBHI", 2, 0, 0, mtu) + packet[:IPV6_ERRORS_QUOTE]
    csum = checksum(dst + src + struct.pack("!I3xB", len(body), ICMPV6), body)  # the pseudo-header
    body = body[:2] + csum.to_bytes(2, "big") + body[4:]
    ip = struct.pack("!IHBB16s16s", 0x60000000, len(body), ICMPV6, 64, dst, src)
    return _reply_ether(frame, IPV6) + ip + body


def fragment(frame: bytes, mtu: int) -> list[bytes]:
    """An IPv4 packet without DF cut into fragments of at most mtu bytes ([] if it cannot be:
    IP options, or an MTU too small)."""
    packet = frame[ETH_HLEN:]
    if packet[0] != 0x45:
        return []
    total = min(int.from_bytes(packet[2:4], "big"), len(packet))
    data = packet[20:total]
    step = (mtu - 20) // 8 * 8
    if step <= 0:
        return []
    flags = int.from_bytes(packet[6:8], "big")
    offset, more = flags & IP_OFFSET, flags & IP_MF
    out = []
    for i in range(0, len(data), step):
        chunk = data[i : i + step]
        last = i + step >= len(data)
        head = bytearray(packet[:20])
        head[2:4] = (20 + len(chunk)).to_bytes(2, "big")
        head[6:8] = ((0 if last and not more else IP_MF) | (offset + i // 8)).to_bytes(2, "big")
        head[10:12] = b"\0\0"
        head[10:12] = checksum(bytes(head)).to_bytes(2, "big")
        out.append(frame[:ETH_HLEN] + bytes(head) + chunk)
    return out


def clamp_mss(frame: bytes, limit4: int, limit6: int) -> bytes:
    """The frame with the MSS option of a TCP SYN lowered to limit4 (over IPv4) or limit6
    (IPv6), its checksum made anew; any other frame as it is."""
    ethertype = frame[12:14]
    if ethertype == IPV4 and len(frame) >= ETH_HLEN + 40 and frame[23] == TCP:
        l4 = ETH_HLEN + (frame[14] & 0x0F) * 4
        limit = limit4
    elif ethertype == IPV6 and len(frame) >= ETH_HLEN + 60 and frame[20] == TCP:
        l4 = ETH_HLEN + 40
        limit = limit6
    else:
        return frame
    if len(frame) < l4 + 20 or not frame[l4 + 13] & TCP_SYN:
        return frame
    end = min(len(frame), l4 + (frame[l4 + 12] >> 4) * 4)
    i = l4 + 20
    while i < end:
        kind = frame[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        size = frame[i + 1] if i + 1 < end else 0
        if size < 2:
            break
        if kind == MSS_OPTION and size == 4 and i + 4 <= end:
            mss = int.from_bytes(frame[i + 2 : i + 4], "big")
            if mss <= limit:
                return frame
            out = bytearray(frame)
            out[i + 2 : i + 4] = limit.to_bytes(2, "big")
            _tcp_checksum(out, l4)  # afresh: the option need not sit on a 16-bit boundary
            return bytes(out)
        i += size
    return frame


def _tcp_checksum(frame: bytearray, l4: int) -> None:
    """Fill in the TCP checksum of frame (a SYN: a few dozen bytes to sum)."""
    if frame[12:14] == IPV4:
        segment_end = ETH_HLEN + int.from_bytes(frame[16:18], "big")
        pseudo = bytes(frame[26:34]) + struct.pack("!BBH", 0, TCP, segment_end - l4)
    else:
        segment_end = l4 + int.from_bytes(frame[18:20], "big")
        pseudo = bytes(frame[22:54]) + struct.pack("!I3xB", segment_end - l4, TCP)
    frame[l4 + 16 : l4 + 18] = b"\0\0"
    frame[l4 + 16 : l4 + 18] = checksum(pseudo, bytes(frame[l4:segment_end])).to_bytes(2, "big")
