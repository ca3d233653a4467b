"""The Noise handshake under sealed channels, against the framework's published test vectors
(cacophony's Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s, as the snow and noise-c projects carry
them): a handshake that drifted from the specification fails here."""

from __future__ import annotations

import pytest

from rrqctl.engine import crypto, noise

# cacophony vectors, protocol_name Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s
PROLOGUE = bytes.fromhex("4a6f686e2047616c74")
PSK = bytes.fromhex("54686973206973206d7920417573747269616e20706572737065637469766521")
INIT_EPHEMERAL = bytes.fromhex("893e28b9dc6ca8d611ab664754b8ceb7bac5117349a4439a6b0569da977c464a")
RESP_EPHEMERAL = bytes.fromhex("bbdb4cdbd309f1a1f2e1456967fe288cadd6f712d65dc7b7793d5e63da6b375b")
HANDSHAKE_HASH = "b3e9c846d264120a4211e18307da91157a21e92e69b639c50f027f101db3e1a6"
MESSAGES = [  # (payload, ciphertext); the first two are the handshake, then transport
    (
        "4c756477696720766f6e204d69736573",
        "ca35def5ae56cec33dc2036731ab14896bc4c75dbb07a61f879f8e3afa4c7944"
        "fda936bec35a8adfdff198386f7d5475880897edaaf7495314c99095a2e4d66a",
    ),
    (
        "4d757272617920526f746862617264",
        "95ebc60d2b1fa672c1f46a8aa265ef51bfe38e7ccb39ec5be34069f144808843"
        "4cd2a371993ba41ea11448024fca32766b169183c9e691a7a433279da7e729",
    ),
    ("462e20412e20486179656b", "bc44da303ae0beb08075fc4eb4e58235c67c2d1f53a4f2fff0bca7"),
    ("4361726c204d656e676572", "416d1af83e9fa6966ce4e871156b131aa9bd7e9a1d6f8794f4872a"),
    (
        "4a65616e2d426170746973746520536179",
        "8a7d81b77bcc6c072f2b807da066efba6b5fab9edf71a7faceb2c8454b0cfef608",
    ),
    (
        "457567656e2042f6686d20766f6e2042617765726b",
        "1e2ee010f72894824a25a867664ff298f2548a145dc4e9d27b1cad83f32fa7c54d69dc3279",
    ),
]


def handshake() -> tuple[noise.Initiator, noise.Responder, list[bytes]]:
    i = noise.Initiator(PROLOGUE, PSK, crypto.DhKey(INIT_EPHEMERAL))
    r = noise.Responder(PROLOGUE, PSK)
    m1 = i.write_message_1(bytes.fromhex(MESSAGES[0][0]))
    got1 = r.read_message_1(m1)
    m2 = r.write_message_2(bytes.fromhex(MESSAGES[1][0]), crypto.DhKey(RESP_EPHEMERAL))
    got2 = i.read_message_2(m2)
    return i, r, [m1, m2, got1, got2]


def test_handshake_messages_and_hash_match_the_published_vectors() -> None:
    i, r, (m1, m2, got1, got2) = handshake()
    assert m1.hex() == MESSAGES[0][1]
    assert m2.hex() == MESSAGES[1][1]
    assert (got1.hex(), got2.hex()) == (MESSAGES[0][0], MESSAGES[1][0])
    assert i.ss.h.hex() == r.ss.h.hex() == HANDSHAKE_HASH


def test_transport_messages_match_the_published_vectors_each_way() -> None:
    i, r, _ = handshake()
    i_send, i_recv = (noise.CipherState(k) for k in i.transport_keys())
    r_send, r_recv = (noise.CipherState(k) for k in r.transport_keys())
    for n, (payload, ciphertext) in enumerate(MESSAGES[2:]):
        send, recv = (i_send, r_recv) if n % 2 == 0 else (r_send, i_recv)
        out = send.encrypt_with_ad(b"", bytes.fromhex(payload))
        assert out.hex() == ciphertext
        assert recv.decrypt_with_ad(b"", out).hex() == payload


def test_the_two_directions_have_different_keys() -> None:
    i, r, _ = handshake()
    assert i.transport_keys() == tuple(reversed(r.transport_keys()))
    assert i.transport_keys()[0] != i.transport_keys()[1]


def test_another_psk_or_a_changed_byte_does_not_open() -> None:
    i = noise.Initiator(PROLOGUE, PSK, crypto.DhKey(INIT_EPHEMERAL))
    m1 = i.write_message_1(b"hello")
    with pytest.raises(noise.HandshakeError):
        noise.Responder(PROLOGUE, bytes(32)).read_message_1(m1)
    with pytest.raises(noise.HandshakeError):
        noise.Responder(PROLOGUE, PSK).read_message_1(m1[:40] + bytes([m1[40] ^ 1]) + m1[41:])
    with pytest.raises(noise.HandshakeError):
        noise.Responder(b"another prologue", PSK).read_message_1(m1)


def test_a_low_order_point_is_a_handshake_error_not_a_crash() -> None:
    i = noise.Initiator(PROLOGUE, PSK, crypto.DhKey(INIT_EPHEMERAL))
    i.write_message_1(b"")
    with pytest.raises(noise.HandshakeError):
        i.read_message_2(bytes(32) + bytes(16))


def test_hkdf_is_the_frameworks_hmac_chain() -> None:
    """HKDF(ck, ikm): temp = HMAC(ck, ikm); out1 = HMAC(temp, 1); out2 = HMAC(temp, out1||2),
    written out here with hashlib's own HMAC-BLAKE2s."""
    import hashlib
    import hmac

    ck, ikm = bytes(range(32)), b"input key material"
    temp = hmac.new(ck, ikm, hashlib.blake2s).digest()
    out1 = hmac.new(temp, b"\x01", hashlib.blake2s).digest()
    out2 = hmac.new(temp, out1 + b"\x02", hashlib.blake2s).digest()
    out3 = hmac.new(temp, out2 + b"\x03", hashlib.blake2s).digest()
    assert noise.hkdf(ck, ikm, 3) == [out1, out2, out3]
