"""stdio (-t -): the VDE plug stream format, 2-byte big-endian length before each frame."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator

import pytest

from rrqctl.engine.ports import StdioPort

F1 = bytes.fromhex("ffffffffffff020000000001") + b"\x08\x06" + b"a" * 46
F2 = bytes.fromhex("020000000001020000000002") + b"\x08\x00" + b"b" * 1400


def rec(frame: bytes) -> bytes:
    return struct.pack(">H", len(frame)) + frame


@pytest.fixture
def port() -> Iterator[tuple[StdioPort, int, int]]:
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    p = StdioPort(r_in, w_out)
    yield p, w_in, r_out
    for fd in (r_in, w_in, r_out, w_out):
        os.close(fd)


def frames(p: StdioPort) -> list[bytes]:
    out = []
    while (f := p.read()) is not None:
        out.append(f)
    return out


def test_records_split_across_reads_are_reassembled(port) -> None:  # type: ignore[no-untyped-def]
    p, w, _ = port
    data = rec(F1) + rec(F2)
    os.write(w, data[:5])
    assert frames(p) == []
    os.write(w, data[5:70])
    assert frames(p) == [F1]
    os.write(w, data[70:])
    assert frames(p) == [F2]
    assert not p.eof


def test_zero_length_records_are_skipped_and_runts_counted(port) -> None:  # type: ignore[no-untyped-def]
    p, w, _ = port
    os.write(w, b"\0\0" + rec(b"short") + rec(F1))
    assert frames(p) == [F1]
    assert p.runts == 1


def test_oversized_record_ends_the_stream_cleanly(port) -> None:  # type: ignore[no-untyped-def]
    p, w, _ = port
    os.write(w, rec(F1) + struct.pack(">H", 65535) + b"x" * 10)
    assert frames(p) == [F1]
    assert p.eof


def test_end_of_stdin_is_eof() -> None:
    r, w = os.pipe()
    out_r, out_w = os.pipe()
    p = StdioPort(r, out_w)
    os.write(w, rec(F1))
    os.close(w)
    assert not p.eof
    assert frames(p) == [F1]
    assert p.eof
    for fd in (r, out_r, out_w):
        os.close(fd)


def test_writes_are_framed(port) -> None:  # type: ignore[no-untyped-def]
    p, _, r = port
    p.write(F1)
    p.write(F2)
    assert os.read(r, 65536) == rec(F1) + rec(F2)
