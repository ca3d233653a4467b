"""Frames too big for the path, answered as a router would; TCP SYNs' MSS clamped.
Every checksum is checked word by word here, independently of l3.checksum."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrqctl.engine import l3
from tests.unit.test_gro import csum, tcp_frame, udp_frame

A_MAC, B_MAC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")


def ipv4_ok(ip: bytes) -> bool:
    return csum(ip[:20]) == 0


def l4_ok(frame: bytes) -> bool:
    """The TCP/UDP/ICMP(v6) checksum of an Ethernet frame holds."""
    if frame[12:14] == l3.IPV4:
        ihl = (frame[14] & 0x0F) * 4
        total = int.from_bytes(frame[16:18], "big")
        seg = frame[14 + ihl : 14 + total]
        if frame[23] == l3.ICMP:
            return csum(seg) == 0
        pseudo = frame[26:34] + struct.pack("!BBH", 0, frame[23], len(seg))
        return csum(pseudo + seg) == 0
    seg = frame[54:]
    pseudo = frame[22:54] + struct.pack("!I3xB", len(seg), frame[20])
    return csum(pseudo + seg) == 0


def test_ipv4_with_df_too_big_gets_fragmentation_needed_back() -> None:
    frame = tcp_frame(4, 1000, os.urandom(1448))  # a 1500-byte packet with DF
    what, (icmp,) = l3.answer_too_big(frame, 1400)
    assert what == "back"
    assert icmp[:6] == frame[6:12] and icmp[6:12] == frame[0:6]  # back to its sender
    ip = icmp[14:34]
    assert ipv4_ok(ip) and l4_ok(icmp)
    assert ip[9] == 1 and ip[12:16] == frame[30:34] and ip[16:20] == frame[26:30]
    body = icmp[34:]
    assert (body[0], body[1], int.from_bytes(body[6:8], "big")) == (3, 4, 1400)
    assert body[8:28] == frame[14:34]  # the original header, quoted
    assert len(icmp) - 14 <= 576


def test_ipv6_too_big_gets_packet_too_big_back() -> None:
    frame = tcp_frame(6, 1000, os.urandom(1400))
    what, (icmp,) = l3.answer_too_big(frame, 1280)
    assert what == "back" and icmp[12:14] == l3.IPV6 and icmp[20] == l3.ICMPV6
    assert icmp[22:38] == frame[38:54] and icmp[38:54] == frame[22:38]
    assert l4_ok(icmp)
    assert (icmp[54], int.from_bytes(icmp[58:62], "big")) == (2, 1280)
    assert len(icmp) - 14 <= 1280


def test_ipv4_without_df_is_cut_into_fragments_that_fit_and_reassemble() -> None:
    payload = os.urandom(3000)
    frame = udp_frame(4, payload, df=False)
    what, frags = l3.answer_too_big(frame, 1400)
    assert what == "on" and len(frags) == 3
    data = b""
    for i, f in enumerate(frags):
        ip = f[14:34]
        assert ipv4_ok(ip) and len(f) - 14 <= 1400 and f[:14] == frame[:14]
        flags = int.from_bytes(ip[6:8], "big")
        assert bool(flags & l3.IP_MF) == (i < 2) and (flags & l3.IP_OFFSET) * 8 == len(data)
        data += f[34:]
    assert data == frame[34:]


def test_no_answer_to_icmp_errors_to_other_kinds_or_to_group_frames() -> None:
    icmp_error = l3.answer_too_big(tcp_frame(4, 1, os.urandom(1448)), 1400)[1][0]
    assert l3.frag_needed(icmp_error, 500) is None
    arp = b"\xff" * 6 + B_MAC + b"\x08\x06" + bytes(1500)
    assert l3.answer_too_big(arp, 1400) == ("drop", [])
    group = b"\x01\x00\x5e\x00\x00\x01" + tcp_frame(4, 1, os.urandom(1448))[6:]
    assert l3.answer_too_big(group, 1400) == ("drop", [])


def syn(v: int, mss: int, opts: bytes = b"") -> bytes:
    options = opts + bytes([2, 4]) + mss.to_bytes(2, "big") + b"\x01\x01\x04\x02"
    return tcp_frame(v, 7, b"", flags=0x02, opts=options)


@pytest.mark.parametrize("v", [4, 6])
def test_a_syns_mss_is_clamped_and_its_checksum_kept_right(v: int) -> None:
    frame = syn(v, 1460)
    out = l3.clamp_mss(frame, 1360, 1340)
    assert out != frame and len(out) == len(frame) and l4_ok(out)
    i = out.index(bytes([2, 4]), 34 if v == 4 else 54)
    assert int.from_bytes(out[i + 2 : i + 4], "big") == (1360 if v == 4 else 1340)
    assert l3.clamp_mss(syn(v, 1200), 1360, 1340) == syn(v, 1200)  # already below
    ack = tcp_frame(v, 7, b"x", flags=0x10, opts=bytes([2, 4, 5, 180]))
    assert l3.clamp_mss(ack, 1360, 1340) == ack  # only SYNs


@given(
    st.integers(536, 65535),
    st.integers(536, 9000),
    st.lists(st.sampled_from([b"\x01", b"\x03\x03\x07", b"\x04\x02", b"\x08\x0a" + bytes(8)])),
)
def test_clamping_keeps_every_checksum_right_whatever_the_options(
    mss: int, limit: int, before: list[bytes]
) -> None:
    opts = b"".join(before)
    opts += bytes([2, 4]) + mss.to_bytes(2, "big")
    opts += b"\x00" * (-len(opts) % 4)
    if len(opts) > 40:
        return
    frame = tcp_frame(4, 7, b"", flags=0x02, opts=opts)
    out = l3.clamp_mss(frame, limit, limit)
    assert l4_ok(out)
    i = 54 + len(b"".join(before))
    assert int.from_bytes(out[i + 2 : i + 4], "big") == min(mss, limit)
