"""Sealed multicast (docs/protocol.md): a group key from the key file, no handshake.

    0x25 000000 | session id 12 (T: 8 bytes, us since the epoch; R: 4 random) | counter 8 (LE)
    | ciphertext | tag 16          key = BLAKE2s(session id, key=group key), AD = bytes 0..23

Each sender seals under sessions of its own, a new one every 120 s. A receiver binds a
session to the first source that used it authentically, refuses it from any other source,
refuses its own sessions, keeps a replay window per session, and remembers a session while
its time is fresh, so that it cannot be replayed as new. What this proves is membership:
that some holder of the key file sent a frame, not which member.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import OrderedDict
from collections.abc import Callable

from rrqctl.engine import crypto
from rrqctl.engine.handshake import BAD_TAG, GROUP
from rrqctl.engine.transport import NOT_SEALED, TRUNCATED, ReplayWindow, wall_us

HEADER_LEN = 24
OVERHEAD = HEADER_LEN + crypto.TAG_LEN  # 40
LIFETIME = 120.0  # s: a sender starts a new session this often
GROUP_SESSIONS = 1024  # sessions a receiver remembers at most
PREFIX = bytes((GROUP, 0, 0, 0))

OWN_SESSION = "own-session"
WRONG_SOURCE = "wrong-source"
UNFRESH_SESSION = "unfresh-session"


def session_key(group_key: bytes, session_id: bytes) -> bytes:
    return hashlib.blake2s(session_id, key=group_key, person=b"rrq2-mcs").digest()


class GroupSender:
    def __init__(
        self,
        group_key: bytes,
        *,
        wall: Callable[[], int] = wall_us,
        random: Callable[[int], bytes] = os.urandom,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._key = group_key
        self._wall, self._random, self._monotonic = wall, random, monotonic
        self._last_t = 0
        self.own: OrderedDict[bytes, None] = OrderedDict()  # our session ids, newest last
        self._new_session()

    def _new_session(self) -> None:
        t = max(self._wall(), self._last_t + 1)  # strictly increasing, whatever the clock does
        self._last_t = t
        self.session_id = t.to_bytes(8, "big") + self._random(4)
        self._prefix = PREFIX + self.session_id
        self._aead = crypto.aead(session_key(self._key, self.session_id))
        self._expires = self._monotonic() + LIFETIME
        self.counter = 0
        self.own[self.session_id] = None
        if len(self.own) > 16:
            self.own.popitem(last=False)

    def seal(self, payload: bytes) -> bytes:
        if self._monotonic() >= self._expires:
            self._new_session()
        c = self.counter
        self.counter = c + 1
        cb = c.to_bytes(8, "little")
        header = self._prefix + cb
        return header + self._aead.encrypt(b"\0\0\0\0" + cb, payload, header)


class _Session:
    __slots__ = ("aead", "forget_at", "source", "window")

    def __init__(self, aead: crypto.Aead, source: object, forget_at: float) -> None:
        self.aead = aead
        self.source = source
        self.window = ReplayWindow()
        self.forget_at = forget_at


class GroupReceiver:
    """The sessions of the other members, as this engine has heard them."""

    def __init__(
        self,
        group_key: bytes,
        own: OrderedDict[bytes, None],
        freshness: float,
        *,
        wall: Callable[[], int] = wall_us,
    ) -> None:
        self._key = group_key
        self._own = own
        self._freshness_us = int(freshness * 1e6)
        # a session is remembered until its time can no longer pass as fresh
        self._keep = 2 * freshness + LIFETIME if freshness else 3 * LIFETIME
        self._wall = wall
        self.sessions: OrderedDict[bytes, _Session] = OrderedDict()

    def open(self, data: bytes, source: object, now: float) -> bytes | str:
        """The payload of a group datagram from source, or the reason it is refused."""
        if len(data) < OVERHEAD:
            return TRUNCATED
        if data[:4] != PREFIX:
            return NOT_SEALED
        sid = data[4:16]
        if sid in self._own:
            return OWN_SESSION
        s = self.sessions.get(sid)
        if s is None:
            return self._open_new(data, sid, source, now)
        if s.source != source:
            return WRONG_SOURCE
        return self._open(s, data)

    @staticmethod
    def _open(s: _Session, data: bytes) -> bytes | str:
        cb = data[16:24]
        c = int.from_bytes(cb, "little")
        bad = s.window.check(c)
        if bad is not None:
            return bad
        try:
            payload: bytes = s.aead.decrypt(b"\0\0\0\0" + cb, data[HEADER_LEN:], data[:HEADER_LEN])
        except crypto.InvalidTag:
            return BAD_TAG
        s.window.mark(c)
        return payload

    def _open_new(self, data: bytes, sid: bytes, source: object, now: float) -> bytes | str:
        t = int.from_bytes(sid[:8], "big")
        if self._freshness_us and abs(t - self._wall()) > self._freshness_us:
            return UNFRESH_SESSION
        s = _Session(crypto.aead(session_key(self._key, sid)), source, now + self._keep)
        payload = self._open(s, data)
        if isinstance(payload, str):
            return payload  # nothing is kept of what did not open
        self.sessions[sid] = s
        if len(self.sessions) > GROUP_SESSIONS:
            self.sessions.popitem(last=False)
        return payload

    def expire(self, now: float) -> None:
        for sid in [sid for sid, s in self.sessions.items() if now >= s.forget_at]:
            del self.sessions[sid]
