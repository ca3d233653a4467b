"""Sealed channels v2, the handshake's messages (docs/protocol.md): their bytes, the keys a key
file gives, the MACs that let a responder refuse junk cheaply, and the cookie that a responder
under load asks for before it does any Diffie-Hellman work.

    initiation (96 bytes)  0x21 000000 | sender index 4 | ephemeral 32 | time 8+16 | mac1 | mac2
    response   (92 bytes)  0x22 000000 | sender 4 | receiver 4 | ephemeral 32 | 16 | mac1 | mac2
    cookie     (52 bytes)  0x23 000000 | receiver 4 | nonce 12 | cookie 16+16

The handshake is Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s (noise.py) with the key file as the
pre-shared key; the initiation carries the initiator's clock, sealed. A response is never
bigger than the initiation it answers, nor a cookie reply.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from rrqctl.engine import crypto, noise

INITIATION, RESPONSE, COOKIE, TRANSPORT, GROUP = 0x21, 0x22, 0x23, 0x24, 0x25
PROLOGUE = b"rrqctl sealed channel v2"
MAC_LEN = 16
INITIATION_LEN = 4 + 4 + 32 + (8 + 16) + MAC_LEN * 2  # 96
RESPONSE_LEN = 4 + 4 + 4 + 32 + 16 + MAC_LEN * 2  # 92
COOKIE_LEN = 4 + 4 + 12 + MAC_LEN + 16  # 52
COOKIE_SECRET_LIFE = 120.0  # s: a responder's cookie secret is replaced this often
COOKIE_VALID = COOKIE_SECRET_LIFE - 10.0  # s: how long an initiator uses a cookie it got

# Drop reasons of handshake messages
MALFORMED = "malformed"
BAD_MAC = "bad-mac"
BAD_TAG = "bad-tag"
HANDSHAKE_REPLAY = "handshake-replay"
UNFRESH = "unfresh-handshake"
UNDER_LOAD = "under-load"
RATE_LIMITED = "rate-limited"


def _header(kind: int) -> bytes:
    return bytes((kind, 0, 0, 0))


def mac(key: bytes, data: bytes) -> bytes:
    return hashlib.blake2s(data, key=key, digest_size=MAC_LEN).digest()


@dataclass(frozen=True)
class Keys:
    """What one key file gives: the handshake's pre-shared key, the MAC and cookie keys,
    and the multicast group key (each from the file by a hash of its own)."""

    psk: bytes
    mac1: bytes
    cookie: bytes
    group: bytes

    @classmethod
    def from_keyfile(cls, data: bytes) -> Keys:
        psk = hashlib.blake2s(data, person=b"rrq2-psk").digest()
        return cls(
            psk=psk,
            mac1=noise.blake2s(b"mac1----" + psk),
            cookie=noise.blake2s(b"cookie--" + psk),
            group=hashlib.blake2s(data, person=b"rrq2-grp").digest(),
        )


def new_index(taken: Callable[[bytes], bool], random: Callable[[int], bytes] = os.urandom) -> bytes:
    """A local session index (4 bytes) that is not in use."""
    while True:
        index = random(4)
        if not taken(index):
            return index


# ---- initiation ---------------------------------------------------------------------


@dataclass
class Initiation:
    """An initiation we sent: what reading its response needs."""

    index: bytes
    handshake: noise.Initiator
    message: bytes  # as sent, without mac2: a cookie reply makes us send it again with one
    sent: float


def initiation(
    keys: Keys, index: bytes, wall_us: int, ephemeral: crypto.DhKey, now: float
) -> Initiation:
    hs = noise.Initiator(PROLOGUE, keys.psk, ephemeral)
    body = _header(INITIATION) + index + hs.write_message_1(wall_us.to_bytes(8, "big"))
    body += mac(keys.mac1, body)
    return Initiation(index, hs, body, now)


def with_mac2(message: bytes, cookie: bytes | None) -> bytes:
    """The message with its mac2: a MAC under a cookie the responder gave us, or zeros."""
    return message + (mac(cookie, message) if cookie else bytes(MAC_LEN))


@dataclass
class ReadInitiation:
    """An initiation as a responder reads it: the parts a response needs."""

    sender: bytes
    ephemeral: bytes
    handshake: noise.Responder
    wall_us: int


def check_macs(message: bytes, keys: Keys) -> bool:
    """mac1 of an initiation or response: only a holder of the key file can make one."""
    at = len(message) - 2 * MAC_LEN
    return hmac.compare_digest(message[at : at + MAC_LEN], mac(keys.mac1, message[:at]))


def has_mac2(message: bytes, cookie: bytes) -> bool:
    at = len(message) - MAC_LEN
    return hmac.compare_digest(message[at:], mac(cookie, message[:at]))


def read_initiation(message: bytes, keys: Keys) -> ReadInitiation:
    """Open an initiation whose length and mac1 are checked (no Diffie-Hellman work yet)."""
    hs = noise.Responder(PROLOGUE, keys.psk)
    payload = hs.read_message_1(message[8 : 8 + 32 + 24])
    return ReadInitiation(message[4:8], message[8:40], hs, int.from_bytes(payload, "big"))


def response(
    read: ReadInitiation, keys: Keys, index: bytes, ephemeral: crypto.DhKey
) -> tuple[bytes, tuple[bytes, bytes]]:
    """The response to an initiation, and the transport keys (send, receive)."""
    body = _header(RESPONSE) + index + read.sender + read.handshake.write_message_2(b"", ephemeral)
    body += mac(keys.mac1, body)
    return with_mac2(body, None), read.handshake.transport_keys()


def read_response(message: bytes, sent: Initiation) -> tuple[bytes, tuple[bytes, bytes]]:
    """The responder's index and the transport keys (send, receive), from a response whose
    length and mac1 are checked; noise.HandshakeError if it does not open."""
    sent.handshake.read_message_2(message[12 : 12 + 32 + 16])
    return message[4:8], sent.handshake.transport_keys()


# ---- cookies --------------------------------------------------------------------------


class CookieJar:
    """A responder's cookies: a MAC of the sender's address under a secret that changes every
    2 minutes. Only a sender that receives at its address learns its cookie."""

    def __init__(self, random: Callable[[int], bytes] = os.urandom) -> None:
        self._random = random
        self._secret = random(32)
        self._previous = self._secret
        self._changed = float("-inf")

    def _rotate(self, now: float) -> None:
        if now - self._changed >= COOKIE_SECRET_LIFE:
            self._previous, self._secret = self._secret, self._random(32)
            self._changed = now

    def cookie(self, source: bytes, now: float) -> bytes:
        self._rotate(now)
        return mac(self._secret, source)

    def valid(self, message: bytes, source: bytes, now: float) -> bool:
        """The message's mac2 was made with the current or the previous cookie of source."""
        self._rotate(now)
        return any(has_mac2(message, mac(s, source)) for s in (self._secret, self._previous))

    def reply(self, message: bytes, source: bytes, keys: Keys, now: float) -> bytes:
        """A cookie reply to an initiation: its sender index, and the cookie sealed under the
        key file's cookie key, bound to the initiation by its mac1."""
        n = self._random(12)
        mac1 = message[-2 * MAC_LEN : -MAC_LEN]
        sealed = crypto.aead(keys.cookie).encrypt(n, self.cookie(source, now), mac1)
        return _header(COOKIE) + message[4:8] + n + sealed


def read_cookie(message: bytes, sent: Initiation, keys: Keys) -> bytes | None:
    """The cookie in a reply to our initiation, or None if it does not open."""
    mac1 = sent.message[-MAC_LEN:]
    try:
        cookie: bytes = crypto.aead(keys.cookie).decrypt(message[8:20], message[20:], mac1)
    except crypto.InvalidTag:
        return None
    return cookie


def source_bytes(host: str, port: int) -> bytes:
    """An endpoint as the bytes its cookie is made of."""
    return host.encode() + struct.pack(">H", port)


# ---- what a responder remembers ------------------------------------------------------


class SeenInitiations:
    """Ephemeral keys of the initiations accepted (and of our own) while their time is still
    fresh: a replayed initiation, or ours reflected back, is refused before any work."""

    def __init__(self, keep: float, limit: int = 65536) -> None:
        self.keep = keep
        self.limit = limit
        self._seen: OrderedDict[bytes, float] = OrderedDict()

    def __contains__(self, ephemeral: bytes) -> bool:
        return ephemeral in self._seen

    def add(self, ephemeral: bytes, now: float) -> None:
        self._seen[ephemeral] = now
        if len(self._seen) > self.limit:
            self._seen.popitem(last=False)

    def expire(self, now: float) -> None:
        seen = self._seen
        while seen:
            ephemeral, at = next(iter(seen.items()))
            if now - at < self.keep:
                return
            del seen[ephemeral]

    def __len__(self) -> int:
        return len(self._seen)


class TokenBucket:
    """rate per second, up to burst at once; one bucket per key, the oldest keys forgotten."""

    def __init__(self, rate: float, burst: float, max_keys: int = 4096) -> None:
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self._buckets: OrderedDict[object, tuple[float, float]] = OrderedDict()

    def _tokens(self, key: object, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + max(0.0, now - last) * self.rate)

    def has(self, key: object, now: float) -> bool:
        return self._tokens(key, now) >= 1.0

    def take(self, key: object, now: float) -> bool:
        tokens = self._tokens(key, now)
        ok = tokens >= 1.0
        self._buckets.pop(key, None)
        self._buckets[key] = (tokens - 1.0 if ok else tokens, now)
        if len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok
