"""Receive coalescing: a super-frame is exactly the inverse of the kernel's TSO segmentation."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rrqctl.engine import gro

MAC = bytes.fromhex("020000000002020000000001")


def csum(data: bytes) -> int:
    if len(data) & 1:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def tcp_frame(
    v: int,
    seq: int,
    payload: bytes,
    flags: int = 0x10,
    ip_id: int = 7,
    opts: bytes = b"",
    *,
    sport: int = 40000,
    win: int = 501,
    df: bool = True,
) -> bytes:
    src, dst = (
        (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        if v == 4
        else (bytes.fromhex("fd00" + "00" * 13 + "01"), bytes.fromhex("fd00" + "00" * 13 + "02"))
    )
    doff = (20 + len(opts)) // 4
    tcp = struct.pack("!HHIIBBHHH", sport, 5201, seq, 99, doff << 4, flags, win, 0, 0) + opts
    tcp_len = len(tcp) + len(payload)
    pseudo = (
        src
        + dst
        + (struct.pack("!BBH", 0, 6, tcp_len) if v == 4 else struct.pack("!IxxxB", tcp_len, 6))
    )
    check = csum(pseudo + tcp + payload)
    tcp = tcp[:16] + struct.pack("!H", check) + tcp[18:]
    if v == 4:
        frag = 0x4000 if df else 0
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + tcp_len, ip_id, frag, 64, 6, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        return MAC + b"\x08\x00" + ip + tcp + payload
    ip = struct.pack("!IHBB16s16s", 0x60000000, tcp_len, 6, 64, src, dst)
    return MAC + b"\x86\xdd" + ip + tcp + payload


def kernel_tso(vnet: bytes, frame: bytes) -> list[bytes]:
    """What the kernel's tcp_gso_segment makes of a GSO frame (the reference we invert)."""
    flags, gso_type, hlen, mss, cstart, coff = gro.VNET_HDR.unpack(vnet)
    assert flags == gro.NEEDS_CSUM and coff == 16
    v = 4 if gso_type == gro.GSO_TCPV4 else 6
    head, data = frame[:hlen], frame[hlen:]
    tcp0 = cstart
    seq0 = int.from_bytes(head[tcp0 + 4 : tcp0 + 8], "big")
    ip_id0 = int.from_bytes(head[18:20], "big")
    out = []
    for i in range(0, len(data), mss):
        chunk = data[i : i + mss]
        last = i + mss >= len(data)
        tcp = bytearray(head[tcp0:])
        tcp[4:8] = ((seq0 + i) & 0xFFFFFFFF).to_bytes(4, "big")
        if not last:
            tcp[13] &= ~0x09  # PSH and FIN only on the last segment
        payload = bytes(chunk)
        tcp[16:18] = b"\0\0"
        src, dst = (head[26:30], head[30:34]) if v == 4 else (head[22:38], head[38:54])
        tcp_len = len(tcp) + len(payload)
        pseudo = (
            src
            + dst
            + (struct.pack("!BBH", 0, 6, tcp_len) if v == 4 else struct.pack("!IxxxB", tcp_len, 6))
        )
        tcp[16:18] = csum(pseudo + bytes(tcp) + payload).to_bytes(2, "big")
        if v == 4:
            ip = bytearray(head[14:34])
            ip[2:4] = (20 + tcp_len).to_bytes(2, "big")
            ip[4:6] = ((ip_id0 + i // mss) & 0xFFFF).to_bytes(2, "big")
            ip[10:12] = b"\0\0"
            ip[10:12] = csum(bytes(ip)).to_bytes(2, "big")
            out.append(bytes(head[:14]) + bytes(ip) + bytes(tcp) + payload)
        else:
            ip = bytearray(head[14:54])
            ip[4:6] = tcp_len.to_bytes(2, "big")
            out.append(bytes(head[:14]) + bytes(ip) + bytes(tcp) + payload)
    return out


def writes_of(frames: list[bytes]) -> list[list[bytes]]:
    c = gro.Coalescer()
    for f in frames:
        c.add(f)
    return [[bytes(p) for p in w.iov] for w in c.flush()]


@pytest.mark.parametrize("v", [4, 6])
def test_a_run_of_segments_becomes_one_super_frame_that_segments_back_exactly(v: int) -> None:
    data = os.urandom(1388 * 9 + 500)
    mss, seq0 = 1388, 0xFFFFF000  # the sequence number wraps inside the run
    opts = bytes.fromhex("0101080a000100020003000400")[:12]  # NOP NOP timestamps
    segs = [
        tcp_frame(v, (seq0 + i) & 0xFFFFFFFF, data[i : i + mss], ip_id=100 + i // mss, opts=opts)
        for i in range(0, len(data), mss)
    ]
    segs[-1] = tcp_frame(
        v, (seq0 + 9 * mss) & 0xFFFFFFFF, data[9 * mss :], flags=0x18, ip_id=109, opts=opts
    )
    (write,) = writes_of(segs)
    vnet, frame = write[0], b"".join(write[1:])
    assert gro.VNET_HDR.unpack(vnet)[:4] == (
        gro.NEEDS_CSUM,
        gro.GSO_TCPV4 if v == 4 else gro.GSO_TCPV6,
        14 + (20 if v == 4 else 40) + 32,
        mss,
    )
    if v == 4:
        assert csum(frame[14:34]) == 0  # a valid IP header checksum
    assert kernel_tso(vnet, frame) == segs


def test_anything_else_passes_through_in_order() -> None:
    a = [tcp_frame(4, 1000 + i * 100, bytes(100)) for i in range(3)]
    gap = tcp_frame(4, 5000, bytes(100))  # not contiguous: a new run
    syn = tcp_frame(4, 9000, bytes(100), flags=0x02)
    arp = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x06" + bytes(28)
    pure_ack = tcp_frame(4, 1, b"")
    writes = writes_of([*a, gap, syn, arp, pure_ack])
    assert len(writes) == 5
    assert writes[0][0][:2] == bytes([gro.NEEDS_CSUM, gro.GSO_TCPV4])
    assert list(writes[1:]) == [
        [gro.PLAIN, gap],
        [gro.PLAIN, syn],
        [gro.PLAIN, arp],
        [gro.PLAIN, pure_ack],
    ]


def test_runs_end_at_psh_a_short_segment_and_the_size_limits() -> None:
    psh = [tcp_frame(4, i * 100, bytes(100), flags=0x18 if i == 1 else 0x10) for i in range(4)]
    assert [len(w) - 2 for w in writes_of(psh)] == [2, 2]  # [0,1(PSH)] then [2,3]
    short = [
        tcp_frame(4, 0, bytes(100)),
        tcp_frame(4, 100, bytes(50)),
        tcp_frame(4, 150, bytes(100)),
    ]
    assert [len(w) for w in writes_of(short)] == [4, 2]  # a shorter segment ends a run
    many = [tcp_frame(4, i * 1000, bytes(1000)) for i in range(70)]
    assert [len(w) - 2 for w in writes_of(many)] == [64, 6]


def test_different_flows_and_headers_do_not_mix() -> None:
    a = tcp_frame(4, 0, bytes(100))
    b = tcp_frame(4, 100, bytes(100))
    other_window = b[: 14 + 34] + b"\x00\x01" + b[14 + 36 :]  # window differs
    assert len(writes_of([a, other_window])) == 2
    assert len(writes_of([a, b])) == 1


def udp_frame(
    v: int, payload: bytes, ip_id: int = 7, sport: int = 40000, *, df: bool = True
) -> bytes:
    src, dst = (
        (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
        if v == 4
        else (bytes.fromhex("fd00" + "00" * 13 + "01"), bytes.fromhex("fd00" + "00" * 13 + "02"))
    )
    udp_len = 8 + len(payload)
    pseudo = (
        src
        + dst
        + (struct.pack("!BBH", 0, 17, udp_len) if v == 4 else struct.pack("!IxxxB", udp_len, 17))
    )
    udp = struct.pack("!HHHH", sport, 5201, udp_len, 0)
    check = csum(pseudo + udp + payload) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", check)
    if v == 4:
        frag = 0x4000 if df else 0
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id, frag, 64, 17, 0, src, dst)
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        return MAC + b"\x08\x00" + ip + udp + payload
    ip = struct.pack("!IHBB16s16s", 0x60000000, udp_len, 17, 64, src, dst)
    return MAC + b"\x86\xdd" + ip + udp + payload


def kernel_uso(vnet: bytes, frame: bytes) -> list[bytes]:
    """What the kernel's UDP GSO makes of a GSO_UDP_L4 frame (the reference we invert)."""
    flags, gso_type, hlen, size, cstart, coff = gro.VNET_HDR.unpack(vnet)
    assert (flags, gso_type, coff) == (gro.NEEDS_CSUM, gro.GSO_UDP_L4, 6)
    v = 4 if frame[12:14] == b"\x08\x00" else 6
    head, data = frame[:hlen], frame[hlen:]
    ip_id0 = int.from_bytes(head[18:20], "big")
    out = []
    for i in range(0, len(data), size):
        payload = bytes(data[i : i + size])
        udp_len = 8 + len(payload)
        src, dst = (head[26:30], head[30:34]) if v == 4 else (head[22:38], head[38:54])
        pseudo = (
            src
            + dst
            + (
                struct.pack("!BBH", 0, 17, udp_len)
                if v == 4
                else struct.pack("!IxxxB", udp_len, 17)
            )
        )
        udp = bytes(head[cstart : cstart + 4]) + struct.pack("!HH", udp_len, 0)
        udp = udp[:6] + struct.pack("!H", csum(pseudo + udp + payload) or 0xFFFF)
        if v == 4:
            ip = bytearray(head[14:34])
            ip[2:4] = (20 + udp_len).to_bytes(2, "big")
            ip[4:6] = ((ip_id0 + i // size) & 0xFFFF).to_bytes(2, "big")
            ip[10:12] = b"\0\0"
            ip[10:12] = csum(bytes(ip)).to_bytes(2, "big")
        else:
            ip = bytearray(head[14:54])
            ip[4:6] = udp_len.to_bytes(2, "big")
        out.append(bytes(head[:14]) + bytes(ip) + udp + payload)
    return out


@pytest.mark.parametrize("v", [4, 6])
def test_a_run_of_udp_datagrams_becomes_one_udp_l4_super_frame_that_splits_back_exactly(
    v: int,
) -> None:
    grams = [udp_frame(v, os.urandom(64), ip_id=300 + i) for i in range(20)] + [
        udp_frame(v, os.urandom(10), 320)
    ]
    (write,) = writes_of(grams)
    vnet, frame = write[0], b"".join(write[1:])
    assert gro.VNET_HDR.unpack(vnet)[3] == 64
    assert kernel_uso(vnet, frame) == grams


def test_udp_of_other_flows_or_without_checksum_is_not_mixed() -> None:
    a = udp_frame(4, bytes(64))
    other_port = udp_frame(4, bytes(64), sport=40001)
    no_csum = a[: 14 + 26] + b"\0\0" + a[14 + 28 :]
    assert len(writes_of([a, other_port])) == 2
    assert len(writes_of([a, no_csum])) == 2


def test_a_refused_protocol_is_no_longer_coalesced() -> None:
    c = gro.Coalescer()
    c.protocols.discard(gro.UDP)
    for f in [udp_frame(4, bytes(64)) for _ in range(3)]:
        c.add(f)
    assert [w.proto for w in c.flush()] == [0, 0, 0]


# ---- any traffic at all -----------------------------------------------------------------

TIMESTAMPS = bytes.fromhex("0101080a0000000100000002")


@st.composite
def traffic(draw: st.DrawFn) -> list[bytes]:
    """Frames as a tap-bound stream may carry them: runs of two TCP and two UDP flows over
    IPv4 and IPv6 with every way a run can break (gaps, repeats, flags, options, window,
    sizes, fragmentable datagrams, IP ids), padded and truncated frames, and junk."""
    seqs = {0: 1000, 1: 0xFFFFFF00}  # flow 1 wraps around
    ip_id = 0
    frames: list[bytes] = []
    for _ in range(draw(st.integers(1, 80))):
        kind = draw(st.sampled_from(["tcp", "tcp", "tcp", "udp", "junk"]))
        if kind == "junk":  # anything, or anything that says it is IP
            head = draw(st.sampled_from([b"", MAC + b"\x08\x00", MAC + b"\x86\xdd"]))
            frames.append(head + draw(st.binary(max_size=90)))
            continue
        v, flow = draw(st.sampled_from([4, 6])), draw(st.integers(0, 1))
        size = draw(st.sampled_from([100, 100, 100, 99, 1, 0, 1400]))
        ip_id = draw(st.sampled_from([ip_id + 1, ip_id, ip_id + 7])) & 0xFFFF
        df = draw(st.booleans())
        if kind == "udp":
            frame = udp_frame(v, os.urandom(size), ip_id, 40000 + flow, df=df)
        else:
            step = draw(st.sampled_from(["next", "next", "next", "gap", "again"]))
            seq = seqs[flow] + {"next": 0, "gap": 1, "again": -size}[step]
            frame = tcp_frame(
                v,
                seq & 0xFFFFFFFF,
                os.urandom(size),
                draw(st.sampled_from([0x10, 0x10, 0x10, 0x18, 0x02, 0x11, 0x30, 0x90, 0x50])),
                ip_id,
                draw(st.sampled_from([b"", TIMESTAMPS, TIMESTAMPS[:-1] + b"\3"])),
                sport=40000 + flow,
                win=draw(st.sampled_from([501, 501, 502])),
                df=df,
            )
            seqs[flow] = (seq + size) & 0xFFFFFFFF
        cut = draw(st.sampled_from([0, 0, 0, 0, 1, -1]))
        frames.append(frame[:-1] if cut > 0 else frame + b"\0" if cut < 0 else frame)
    return frames


def as_segmented(write: gro.Write) -> list[bytes]:
    """What the kernel makes of a write: the frame itself, or the super-frame cut back up."""
    vnet, *rest = [bytes(p) for p in write.iov]
    if vnet == gro.PLAIN:
        (frame,) = rest
        return [frame]
    cut = kernel_uso if vnet[1] == gro.GSO_UDP_L4 else kernel_tso
    return cut(vnet, b"".join(rest))


def without_atomic_ip_id(frame: bytes) -> bytes:
    """The frame but for the IPv4 id (and so the header checksum) of an unfragmentable
    datagram: an id that carries nothing (RFC 6864), which the kernel numbers anew."""
    if frame[12:14] == b"\x08\x00" and len(frame) >= 34 and frame[20] & 0x40:
        return frame[:18] + frame[20:24] + frame[26:]
    return frame


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic())
def test_coalescing_never_loses_reorders_or_alters_a_frame(frames: list[bytes]) -> None:
    c = gro.Coalescer()
    for f in frames:
        c.add(f)
    writes = c.flush()
    out = [seg for w in writes for seg in as_segmented(w)]
    assert [f for w in writes for f in w.frames] == frames
    assert [without_atomic_ip_id(f) for f in out] == [without_atomic_ip_id(f) for f in frames]


# ---- checksums ----------------------------------------------------------------------------


def corrupt(frame: bytes, at: int) -> bytes:
    """A frame with one payload byte changed (as a bad link would), checksums left as sent."""
    return frame[:at] + bytes([frame[at] ^ 0x5A]) + frame[at + 1 :]


def test_a_run_with_a_bad_tcp_checksum_is_written_frame_by_frame_for_the_kernel_to_check() -> None:
    """A plain channel's frames: one with a wrong checksum in the middle of a run must not be
    handed over inside a super-frame marked 'checksum verified'."""
    good = [tcp_frame(4, 1000 + i * 100, os.urandom(100), ip_id=i) for i in range(8)]
    frames = [*good[:4], corrupt(good[4], 80), *good[5:]]
    c = gro.Coalescer()
    for f in frames:
        c.add(f)
    writes = c.flush()
    assert [w.proto for w in writes] == [0] * 8  # every frame alone, unchanged, in order
    assert [bytes(w.iov[1]) for w in writes] == frames
    assert all(bytes(w.iov[0]) == gro.PLAIN for w in writes)


def test_a_run_with_a_bad_ip_header_checksum_or_a_bad_udp_checksum_is_not_coalesced() -> None:
    tcp = [tcp_frame(4, 1000 + i * 100, os.urandom(100), ip_id=i) for i in range(4)]
    bad_ip = tcp[2][:24] + bytes([tcp[2][24] ^ 1]) + tcp[2][25:]  # its header checksum
    assert len(writes_of([*tcp[:2], bad_ip, tcp[3]])) == 4
    for v in (4, 6):
        udp = [udp_frame(v, os.urandom(64), ip_id=i) for i in range(4)]
        assert len(writes_of([*udp[:2], corrupt(udp[2], 70), udp[3]])) == 4
        assert len(writes_of(udp)) == 1


def test_frames_a_tag_vouched_for_are_coalesced_unchecked() -> None:
    """A sealed channel's frames: the sender's tap gave them so; no check is needed."""
    good = [tcp_frame(4, 1000 + i * 100, os.urandom(100), ip_id=i) for i in range(4)]
    c = gro.Coalescer()
    for f in good:
        c.add(f, vouched=True)
    (write,) = c.flush()
    assert write.proto == gro.TCP


def test_udp_without_a_checksum_is_never_coalesced_over_ipv6_either() -> None:
    a = udp_frame(6, bytes(64))
    at = 14 + 40 + 6
    no_csum = a[:at] + b"\0\0" + a[at + 2 :]
    assert len(writes_of([no_csum, no_csum, no_csum])) == 3


@settings(deadline=None)
@given(st.binary(min_size=1, max_size=1500), st.sampled_from([4, 6]), st.booleans())
def test_checksums_ok_says_what_a_word_by_word_ones_complement_sum_says(
    payload: bytes, v: int, udp: bool
) -> None:
    frame = udp_frame(v, payload) if udp else tcp_frame(v, 7, payload)
    l4 = 34 if v == 4 else 54
    proto = gro.UDP if udp else gro.TCP
    assert gro.checksums_ok(frame, v, l4, proto)
    i = len(frame) - 1 - len(payload) // 2
    bad = corrupt(frame, i)
    assert not gro.checksums_ok(bad, v, l4, proto)
