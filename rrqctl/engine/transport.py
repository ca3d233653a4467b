"""Sealed channels v2, transport (docs/protocol.md): a session's keys, one per direction, its
counter and its replay window; the timers sessions live by.

    transport  0x24 000000 | receiver index 4 | counter 8 (little-endian) | ciphertext | tag 16
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from rrqctl.engine import crypto
from rrqctl.engine.handshake import BAD_TAG, TRANSPORT, Keys

# Timers (WireGuard's, which the same reasoning fits)
REKEY_AFTER = 120.0  # s: the initiator of a session starts the next one
REJECT_AFTER = 180.0  # s: a session neither seals nor opens any more
REKEY_TIMEOUT = 5.0  # s: an initiation unanswered this long is sent anew
REKEY_AFTER_MESSAGES = 1 << 60
REJECT_AFTER_MESSAGES = (1 << 64) - (1 << 13) - 1
WINDOW = 2048  # replay window, in counters
HEADER_LEN = 16
OVERHEAD = HEADER_LEN + crypto.TAG_LEN  # 32 bytes a sealed frame costs
NONCE_PAD = b"\0\0\0\0"
TRANSPORT_PREFIX = bytes((TRANSPORT, 0, 0, 0))

# Drop reasons of transport datagrams (handshake.py has the handshake's)
TRUNCATED = "truncated"
NOT_SEALED = "not-sealed"
REPLAY = "replay"
TOO_OLD = "too-old"
UNKNOWN_SESSION = "unknown-session"
WRONG_ENDPOINT = "wrong-endpoint"
EXPIRED_SESSION = "expired-session"

Endpoint = tuple[str, int]


def wall_us() -> int:
    return time.time_ns() // 1000


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


# What a Box's open() refuses, by the codes it gives (seal.h)
REFUSED = {-1: REPLAY, -2: TOO_OLD, -3: BAD_TAG}


class PyBox:
    """One session's keys (one per direction), its counter and its replay window: the
    reference for the C datapath's Box (seal.c), which the engine uses when it runs."""

    __slots__ = ("counter", "opener", "prefix", "sealer", "window")

    def __init__(self, send_key: bytes, receive_key: bytes, prefix: bytes) -> None:
        self.sealer = crypto.aead(send_key)
        self.opener = crypto.aead(receive_key)
        self.prefix = prefix  # the header of what we send, but the counter
        self.counter = 0
        self.window = ReplayWindow()

    def seal(self, payload: bytes) -> bytes:
        c = self.counter
        self.counter = c + 1
        cb = c.to_bytes(8, "little")
        return self.prefix + cb + self.sealer.encrypt(NONCE_PAD + cb, payload, None)

    def open(self, datagram: bytes) -> bytes | int:
        """The payload of a transport datagram of this session, or why not (REFUSED)."""
        cb = datagram[8:16]
        c = int.from_bytes(cb, "little")
        w = self.window
        if c <= w.top and (bad := w.check(c)) is not None:
            return -1 if bad == REPLAY else -2
        try:
            payload: bytes = self.opener.decrypt(NONCE_PAD + cb, datagram[HEADER_LEN:], None)
        except crypto.InvalidTag:
            return -3
        w.mark(c)
        return payload


class Box(Protocol):
    counter: int

    def seal(self, payload: bytes) -> bytes: ...
    def open(self, datagram: bytes) -> bytes | int: ...


MakeBox = Callable[[bytes, bytes, bytes], Box]


class Session:
    """One handshake's transport keys between this engine and one endpoint."""

    __slots__ = (
        "box",
        "confirmed",
        "created",
        "decl",
        "endpoint",
        "index",
        "initiator",
        "keys",
        "peer",
    )

    def __init__(
        self,
        index: bytes,
        remote: bytes,
        send_recv: tuple[bytes, bytes],
        *,
        endpoint: Endpoint,
        keys: Keys,
        initiator: bool,
        now: float,
        decl: object = None,
        box: MakeBox = PyBox,
    ) -> None:
        self.index = index  # ours: the peer puts it in every datagram it sends us
        self.box = box(send_recv[0], send_recv[1], TRANSPORT_PREFIX + remote)
        self.created = now
        self.endpoint = endpoint
        self.keys = keys
        self.decl = decl  # the declaration that admitted the endpoint (for a new downlink)
        self.initiator = initiator
        self.confirmed = initiator  # a responder's session: once the initiator has used it
        self.peer: object = None  # the SealedPeer using it, once in use (compared by identity)

    @property
    def counter(self) -> int:
        return self.box.counter

    @counter.setter
    def counter(self, value: int) -> None:
        self.box.counter = value

    def seal(self, payload: bytes) -> bytes:
        return self.box.seal(payload)

    def open(self, datagram: bytes) -> bytes | str:
        """The payload of a transport datagram addressed to this session, or why not."""
        got = self.box.open(datagram)
        return got if type(got) is bytes else REFUSED[got]  # type: ignore[index]

    def usable(self, now: float) -> bool:
        return now - self.created < REJECT_AFTER and self.counter < REJECT_AFTER_MESSAGES

    @property
    def until(self) -> float:
        """When it stops being usable (if its counter does not first)."""
        return self.created + REJECT_AFTER
