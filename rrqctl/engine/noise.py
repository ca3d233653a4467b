"""The Noise Protocol Framework (revision 34), as much of it as one handshake pattern needs:

    Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s
      -> psk, e
      <- e, ee

Both ends prove that they hold the pre-shared key; each brings a fresh ephemeral key, so the
transport keys are new for every handshake and a stolen key file does not open yesterday's
captures. Split() gives one key per direction. Checked against the published cacophony
test vectors in tests/unit/test_noise.py.
"""

from __future__ import annotations

import hashlib
import hmac

from rrqctl.engine import crypto

PROTOCOL_NAME = b"Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s"
HASHLEN = 32
DHLEN = 32
EMPTY_KEY = b""


class HandshakeError(Exception):
    """A handshake message that does not verify (bad tag, bad point, bad length)."""


def blake2s(data: bytes) -> bytes:
    return hashlib.blake2s(data).digest()


def hmac_blake2s(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.blake2s).digest()


def hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> list[bytes]:
    """Noise's HKDF: 2 or 3 outputs of HASHLEN bytes."""
    temp = hmac_blake2s(chaining_key, ikm)
    out = [hmac_blake2s(temp, b"\x01")]
    for i in range(2, outputs + 1):
        out.append(hmac_blake2s(temp, out[-1] + bytes([i])))
    return out


def nonce(n: int) -> bytes:
    """ChaChaPoly's nonce for counter n: 32 zero bits, then n as 64 bits little-endian."""
    return b"\0\0\0\0" + n.to_bytes(8, "little")


class CipherState:
    __slots__ = ("_aead", "k", "n")

    def __init__(self, k: bytes = EMPTY_KEY) -> None:
        self.k = k
        self.n = 0
        self._aead = crypto.aead(k) if k else None

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self._aead is None:
            return plaintext
        out = self._aead.encrypt(nonce(self.n), plaintext, ad)
        self.n += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self._aead is None:
            return ciphertext
        try:
            out = self._aead.decrypt(nonce(self.n), ciphertext, ad)
        except crypto.InvalidTag:
            raise HandshakeError("bad-tag") from None
        self.n += 1
        return out


class SymmetricState:
    __slots__ = ("cipher", "ck", "h")

    def __init__(self, prologue: bytes) -> None:
        name = PROTOCOL_NAME
        self.h = name.ljust(HASHLEN, b"\0") if len(name) <= HASHLEN else blake2s(name)
        self.ck = self.h
        self.cipher = CipherState()
        self.mix_hash(prologue)

    def mix_key(self, ikm: bytes) -> None:
        self.ck, k = hkdf(self.ck, ikm, 2)
        self.cipher = CipherState(k)

    def mix_hash(self, data: bytes) -> None:
        self.h = blake2s(self.h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        self.ck, temp_h, k = hkdf(self.ck, ikm, 3)
        self.mix_hash(temp_h)
        self.cipher = CipherState(k)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        out = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(out)
        return out

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        out = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return out

    def split(self) -> tuple[bytes, bytes]:
        """(initiator-to-responder key, responder-to-initiator key)."""
        k1, k2 = hkdf(self.ck, b"", 2)
        return k1, k2


def _dh(key: crypto.DhKey, public: bytes) -> bytes:
    try:
        return key.exchange(public)
    except ValueError:  # a low-order point: an all-zero secret
        raise HandshakeError("bad-point") from None


class Initiator:
    """The initiator's side: write message 1, read message 2, then the transport keys."""

    def __init__(self, prologue: bytes, psk: bytes, ephemeral: crypto.DhKey) -> None:
        self.ss = SymmetricState(prologue)
        self.psk = psk
        self.e = ephemeral

    def write_message_1(self, payload: bytes) -> bytes:
        ss = self.ss
        ss.mix_key_and_hash(self.psk)  # psk
        ss.mix_hash(self.e.public)  # e
        ss.mix_key(self.e.public)
        return self.e.public + ss.encrypt_and_hash(payload)

    def read_message_2(self, message: bytes) -> bytes:
        if len(message) < DHLEN:
            raise HandshakeError("truncated")
        ss = self.ss
        re = message[:DHLEN]
        ss.mix_hash(re)  # e
        ss.mix_key(re)
        ss.mix_key(_dh(self.e, re))  # ee
        return ss.decrypt_and_hash(message[DHLEN:])

    def transport_keys(self) -> tuple[bytes, bytes]:
        """(send, receive)."""
        return self.ss.split()


class Responder:
    """The responder's side: read message 1, write message 2, then the transport keys."""

    def __init__(self, prologue: bytes, psk: bytes) -> None:
        self.ss = SymmetricState(prologue)
        self.psk = psk
        self.re = b""

    def read_message_1(self, message: bytes) -> bytes:
        if len(message) < DHLEN:
            raise HandshakeError("truncated")
        ss = self.ss
        ss.mix_key_and_hash(self.psk)  # psk
        self.re = message[:DHLEN]
        ss.mix_hash(self.re)  # e
        ss.mix_key(self.re)
        return ss.decrypt_and_hash(message[DHLEN:])

    def write_message_2(self, payload: bytes, ephemeral: crypto.DhKey) -> bytes:
        ss = self.ss
        ss.mix_hash(ephemeral.public)  # e
        ss.mix_key(ephemeral.public)
        ss.mix_key(_dh(ephemeral, self.re))  # ee
        return ephemeral.public + ss.encrypt_and_hash(payload)

    def transport_keys(self) -> tuple[bytes, bytes]:
        """(send, receive)."""
        k1, k2 = self.ss.split()
        return k2, k1
