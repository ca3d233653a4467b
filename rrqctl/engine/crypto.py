"""The primitives sealed channels are made of (docs/protocol.md): key files, ChaCha20-Poly1305,
X25519. This module is the only one that imports `cryptography`.

`cryptography` is loaded on first use: a plain cable's engine never pays for it (~8 MB).
"""

from __future__ import annotations

import os
from typing import Any, Protocol

MIN_KEYFILE = 32
KEY_LEN = 32
TAG_LEN = 16


class Aead(Protocol):
    """ChaCha20-Poly1305 under one key (the `cryptography` object, as the hot path calls it)."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


_AEAD: Any = None
InvalidTag: type[Exception] = Exception  # cryptography's, once loaded: what decrypt raises


def _load() -> None:
    global _AEAD, InvalidTag
    if _AEAD is None:
        from cryptography.exceptions import InvalidTag as _InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

        _AEAD, InvalidTag = ChaCha20Poly1305, _InvalidTag


def aead(key: bytes) -> Aead:
    """ChaCha20-Poly1305 (RFC 8439) for a 32-byte key."""
    _load()
    cipher: Aead = _AEAD(key)
    return cipher


class DhKey:
    """An X25519 key pair (RFC 7748)."""

    __slots__ = ("_private", "public")

    def __init__(self, private: bytes | None = None) -> None:
        """A new random key pair, or the one of a given private key (for test vectors)."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        if private is None:
            self._private = X25519PrivateKey.generate()
        else:
            self._private = X25519PrivateKey.from_private_bytes(private)
        self.public: bytes = self._private.public_key().public_bytes_raw()

    def exchange(self, public: bytes) -> bytes:
        """The shared secret with a peer's public key; ValueError for a low-order point."""
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

        secret: bytes = self._private.exchange(X25519PublicKey.from_public_bytes(public))
        return secret


def read_keyfile(path: str) -> bytes:
    """A key file's bytes; ValueError if it is too short to be one."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < MIN_KEYFILE:
        raise ValueError(f"key file {path} is shorter than {MIN_KEYFILE} bytes")
    return data


def generate_keyfile(path: str, size: int = 64) -> None:
    """Write a new random key file, mode 0600, refusing to overwrite one."""
    if size < MIN_KEYFILE:
        raise ValueError(f"a key file needs at least {MIN_KEYFILE} bytes, not {size}")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(size))
