"""Which of OpenSSL's x86 code paths a sealed channel's AEAD calls take.

OpenSSL picks its ChaCha20-Poly1305 code by CPU feature. Where the CPU has AVX-512 it takes
the AVX-512 code, which wins in a tight loop (`openssl speed` here: 1.3-1.9x at 16 KB, about
even at 1400 bytes). The engine calls it once per datagram, between lines of Python, and
there each call pays a start-up cost of its own, about 0.9 us on the bench machine: a frame
sealed on one side and opened on the other cost 3.9 us (64 B) and 6.0 us (1400 B), against
2.1 and 4.2 us with the AVX2 code. Masking AVX-512F makes OpenSSL take the AVX2 code; see
OPENSSL_ia32cap(3).

OpenSSL reads OPENSSL_ia32cap once, when libcrypto is loaded (Python's hashlib loads it), so
the variable must be in place before that: in the environment the engine is exec'd with, or
set by `rrqnet` before it imports anything that loads libcrypto. A value the user set is
left alone; other machines do not read the variable and are not given it.

This module imports nothing that loads libcrypto.
"""

from __future__ import annotations

from collections.abc import Mapping

VARIABLE = "OPENSSL_ia32cap"
# First word (CPUID leaf 1) as detected; in the second (leaf 7 EBX) clear bit 16, AVX512F
NO_AVX512 = ":~0x10000"
X86 = frozenset({"x86_64", "i386", "i486", "i586", "i686"})


def for_datagrams(environ: Mapping[str, str], machine: str) -> dict[str, str]:
    """environ, with OpenSSL told to leave its AVX-512 code aside if that is ours to say."""
    env = dict(environ)
    if machine in X86 and VARIABLE not in env:
        env[VARIABLE] = NO_AVX512
    return env
