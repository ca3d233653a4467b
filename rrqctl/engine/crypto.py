"""Sealed channels (PROTOCOL.md section 4): key-file keys, sender sessions, replay windows.

    offset 0    1 byte   kind: 0x11 sealed frame, 0x12 sealed heartbeat
    offset 1   12 bytes  session id S = T (8 bytes, us since the epoch) || R (4 random bytes)
    offset 13   8 bytes  counter C, big-endian
    offset 21   n bytes  ChaCha20-Poly1305 ciphertext, nonce 0x00000000 || C, AD = header
    offset 21+n 16 bytes tag

This module is the only one that imports `cryptography`.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

KIND_FRAME = 0x11
KIND_HEARTBEAT = 0x12
HEADER = struct.Struct(">B12sQ")
HEADER_LEN = HEADER.size  # 21
TAG_LEN = 16
OVERHEAD = HEADER_LEN + TAG_LEN  # 37
MIN_KEYFILE = 32
SESSION_LIFETIME = 120.0  # seconds before a sender starts a new session
COUNTER_LIMIT = 1 << 48
LAST_COUNTER = COUNTER_LIMIT - 1  # a sender starts a new session before it would use this one
WINDOW = 2048  # replay window width, in counters
PREVIOUS_GRACE = 30.0  # seconds the previous session of a peer is still accepted
DEFAULT_FRESHNESS = 600.0  # seconds; 0 = off

# Drop reasons
TRUNCATED = "truncated"
NOT_SEALED = "not-sealed"
REPLAY = "replay"
TOO_OLD = "too-old"
BAD_TAG = "bad-tag"
OLD_SESSION = "old-session"
UNFRESH_SESSION = "unfresh-session"
RATE_LIMITED = "rate-limited"
MALFORMED = "malformed"


# `cryptography` is loaded on first use: a plain cable's engine never pays for it (~8 MB).
_AEAD: Any = None
_InvalidTag: type[Exception] = Exception


def _aead(key: bytes) -> Any:
    """ChaCha20-Poly1305 for key (importing the library the first time)."""
    global _AEAD, _InvalidTag
    if _AEAD is None:
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        _AEAD, _InvalidTag = ChaCha20Poly1305, InvalidTag
    return _AEAD(key)


class SealError(Exception):
    """A datagram that did not open; args[0] is the drop reason."""

    @property
    def reason(self) -> str:
        return str(self.args[0])


def master_key(keyfile_bytes: bytes) -> bytes:
    if len(keyfile_bytes) < MIN_KEYFILE:
        raise ValueError(f"a key file needs at least {MIN_KEYFILE} bytes")
    return hashlib.blake2b(keyfile_bytes, digest_size=32, person=b"rrqctl-key-v1").digest()


def session_key(master: bytes, session_id: bytes) -> bytes:
    return hashlib.blake2b(
        b"", digest_size=32, key=master, salt=session_id + b"\0\0\0\0", person=b"rrqctl-sess-v1"
    ).digest()


NONCE_PAD = b"\0\0\0\0"  # nonce = 0x00000000 || C (C as in the header: 8 bytes big-endian)


def wall_us() -> int:
    return time.time_ns() // 1000


class Sealer:
    """The sending side for one key: one session at a time, a new one every 120 s (on the
    monotonic clock, so that a step of the wall clock neither hurries nor holds it) and
    before the counter runs out. The wall clock only dates a session's id."""

    def __init__(
        self,
        master: bytes,
        clock_us: Callable[[], int] = wall_us,
        random: Callable[[int], bytes] = os.urandom,
        lifetime: float = SESSION_LIFETIME,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._master = master
        self._clock_us = clock_us
        self._random = random
        self._lifetime = lifetime
        self._monotonic = monotonic
        self._last_t = 0
        self.session_id = b""
        self._frame_prefix = b""  # a frame's kind and session id: its header but the counter
        self._encrypt: Callable[[bytes, bytes, bytes], bytes]  # set by rekey()
        self._expires = 0.0
        self.counter = 0
        self.rekey()

    def rekey(self) -> None:
        # T strictly increases, even if the wall clock steps back
        t = max(self._clock_us(), self._last_t + 1)
        self._last_t = t
        self.session_id = t.to_bytes(8, "big") + self._random(4)
        self._frame_prefix = bytes([KIND_FRAME]) + self.session_id
        self._encrypt = _aead(session_key(self._master, self.session_id)).encrypt
        self._expires = self._monotonic() + self._lifetime
        self.counter = 0

    def seal(self, payload: bytes, kind: int = KIND_FRAME) -> bytes:
        c = self.counter
        if c >= LAST_COUNTER or self._monotonic() >= self._expires:
            self.rekey()
            c = 0
        self.counter = c + 1
        cb = c.to_bytes(8, "big")
        prefix = self._frame_prefix if kind == KIND_FRAME else bytes([kind]) + self.session_id
        header = prefix + cb
        return header + self._encrypt(NONCE_PAD + cb, payload, header)

    def heartbeat(self) -> bytes:
        return self.seal(b"", KIND_HEARTBEAT)


class ReplayWindow:
    """Counters seen among the last WINDOW: a ring of bits (bit c mod WINDOW), so that marking
    the next counter is O(1) instead of shifting a WINDOW-bit integer."""

    __slots__ = ("seen", "top")

    def __init__(self) -> None:
        self.top = -1
        self.seen = bytearray(WINDOW // 8)

    def check(self, c: int) -> str | None:
        behind = self.top - c
        if behind < 0:
            return None
        if behind >= WINDOW:
            return TOO_OLD
        i = c % WINDOW
        return REPLAY if self.seen[i >> 3] >> (i & 7) & 1 else None

    def mark(self, c: int) -> None:
        seen = self.seen
        if c == self.top + 1:  # the usual case: the next counter
            self.top = c
        elif c > self.top:
            if c - self.top >= WINDOW:
                seen[:] = bytes(WINDOW // 8)
            else:
                for k in range(self.top + 1, c):  # counters skipped over: not seen (yet)
                    i = k % WINDOW
                    seen[i >> 3] &= ~(1 << (i & 7)) & 0xFF
            self.top = c
        i = c % WINDOW
        seen[i >> 3] |= 1 << (i & 7)


class _Session:
    __slots__ = ("aead", "id", "since", "window")

    def __init__(self, session_id: bytes, aead: Any, since: float) -> None:
        self.id = session_id
        self.aead = aead
        self.window = ReplayWindow()
        self.since = since


class DerivationLimiter:
    """Token buckets per source for key derivations of unknown sessions (a DoS guard)."""

    def __init__(self, rate: float = 20.0, burst: float = 20.0, max_sources: int = 4096) -> None:
        self.rate, self.burst, self.max_sources = rate, burst, max_sources
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()

    def allow(self, source: object, now: float) -> bool:
        tokens, last = self._buckets.pop(source, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        ok = tokens >= 1.0
        self._buckets[source] = (tokens - 1.0 if ok else tokens, now)
        if len(self._buckets) > self.max_sources:
            self._buckets.popitem(last=False)
        return ok


class Opener:
    """The receiving side for one remote endpoint: current and previous session, Tmax.

    source: the sender as the limiter counts its key derivations (the engine: its address)."""

    def __init__(
        self,
        master: bytes,
        limiter: DerivationLimiter,
        source: object,
        freshness: float = DEFAULT_FRESHNESS,
        clock_us: Callable[[], int] = wall_us,
    ) -> None:
        self._master = master
        self._limiter = limiter
        self._source = source
        self._freshness_us = int(freshness * 1e6)
        self._clock_us = clock_us
        self.current: _Session | None = None
        self.previous: _Session | None = None
        self.tmax: int | None = None

    def open_many(self, datagrams: list[bytes], now: float) -> list[bytes | str]:
        """Each datagram's payload (b"" for a heartbeat) or the reason it was refused.

        The hot path -- frames of the current session -- is inlined; the rest is open()."""
        out: list[bytes | str] = []
        for d in datagrams:
            cur = self.current
            if cur is not None and len(d) >= OVERHEAD and d[0] == KIND_FRAME and d[1:13] == cur.id:
                cb = d[13:21]
                c = int.from_bytes(cb, "big")
                w = cur.window
                if c > w.top or w.check(c) is None:  # the first test is check()'s fast path
                    try:
                        payload: bytes = cur.aead.decrypt(
                            NONCE_PAD + cb, d[HEADER_LEN:], d[:HEADER_LEN]
                        )
                    except _InvalidTag:
                        out.append(BAD_TAG)
                        continue
                    w.mark(c)
                    out.append(payload)
                    continue
            try:
                out.append(self.open(d, now)[1])
            except SealError as e:
                out.append(e.reason)
        return out

    def open(self, datagram: bytes, now: float) -> tuple[int, bytes]:
        """(kind, payload) of an authentic datagram, else SealError(reason) and no state change."""
        if len(datagram) < OVERHEAD:
            raise SealError(TRUNCATED)
        kind, sid, c = HEADER.unpack_from(datagram)
        if kind not in (KIND_FRAME, KIND_HEARTBEAT):
            raise SealError(NOT_SEALED)
        header = datagram[:HEADER_LEN]
        body = datagram[HEADER_LEN:]
        cur = self.current
        if cur is not None and sid == cur.id:
            payload = self._open_known(cur, c, header, body)
        elif (
            (prev := self.previous) is not None
            and sid == prev.id
            and cur is not None
            and now - cur.since < PREVIOUS_GRACE
        ):
            payload = self._open_known(prev, c, header, body)
        else:
            payload = self._open_new(sid, c, header, body, now)
        if kind == KIND_HEARTBEAT and payload:
            raise SealError(MALFORMED)
        return kind, payload

    @staticmethod
    def _open_known(s: _Session, c: int, header: bytes, body: bytes) -> bytes:
        bad = s.window.check(c)
        if bad:
            raise SealError(bad)
        try:
            payload: bytes = s.aead.decrypt(NONCE_PAD + header[13:21], body, header)
        except _InvalidTag:
            raise SealError(BAD_TAG) from None
        s.window.mark(c)
        return payload

    def _open_new(self, sid: bytes, c: int, header: bytes, body: bytes, now: float) -> bytes:
        t = int.from_bytes(sid[:8], "big")
        if self.tmax is not None:
            if t <= self.tmax:
                raise SealError(OLD_SESSION)
        elif self._freshness_us and abs(t - self._clock_us()) > self._freshness_us:
            raise SealError(UNFRESH_SESSION)
        if not self._limiter.allow(self._source, now):
            raise SealError(RATE_LIMITED)
        aead = _aead(session_key(self._master, sid))
        try:
            payload: bytes = aead.decrypt(NONCE_PAD + header[13:21], body, header)
        except _InvalidTag:
            raise SealError(BAD_TAG) from None
        session = _Session(sid, aead, now)
        session.window.mark(c)
        self.previous, self.current, self.tmax = self.current, session, t
        return payload

    def status(self) -> dict[str, object]:
        return {
            "session": self.current.id.hex() if self.current else None,
            "session_time_us": self.tmax,
        }


def load_master(path: str) -> bytes:
    with open(path, "rb") as f:
        return master_key(f.read())


def generate_keyfile(path: str, size: int = 64) -> None:
    """Write a new random key file, mode 0600, refusing to overwrite one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(size))
