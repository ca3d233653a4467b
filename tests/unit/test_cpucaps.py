"""OpenSSL is told to leave AVX-512 aside in engine processes, before it is loaded."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

from rrqctl.engine.cpucaps import NO_AVX512, VARIABLE, X86, for_datagrams

# Runs the real `rrqnet` entry point until it has built its settings, then stops it with a
# bad RRQNET_FRESHNESS; prints the exit status and what OPENSSL_ia32cap held at the moment
# Python loaded libcrypto (the _hashlib module).
AT_LOAD = """
import os, sys
seen = {}
def hook(event, args):
    if event == "import" and args[0] == "_hashlib" and "at_load" not in seen:
        seen["at_load"] = os.environ.get("OPENSSL_ia32cap")
sys.addaudithook(hook)
from rrqctl.rrqnet import main
rc = main(["3636", "192.0.2.1:3636"])
print(repr((rc, seen)))
"""


def test_engine_environment_masks_avx512_on_x86_only_and_keeps_a_users_value() -> None:
    base = {"PATH": "/usr/bin"}
    assert for_datagrams(base, "x86_64") == {"PATH": "/usr/bin", VARIABLE: NO_AVX512}
    assert base == {"PATH": "/usr/bin"}  # a copy, not the caller's mapping
    assert for_datagrams(base, "i686")[VARIABLE] == NO_AVX512
    assert VARIABLE not in for_datagrams(base, "aarch64")
    mine = {VARIABLE: "~0x200000200000000"}
    assert for_datagrams(mine, "x86_64") == mine


@pytest.mark.skipif(os.uname().machine not in X86, reason="OpenSSL reads it on x86 only")
@pytest.mark.parametrize("users", [None, ":~0x20"])
def test_rrqnet_sets_the_mask_before_libcrypto_is_loaded(users: str | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != VARIABLE}
    env["RRQNET_FRESHNESS"] = "soon"  # refused after the settings are built: the engine stops
    env["RRQNET_CONTROL"] = "none"
    if users is not None:
        env[VARIABLE] = users
    done = subprocess.run(
        [sys.executable, "-c", AT_LOAD], env=env, capture_output=True, text=True, timeout=60
    )
    rc, seen = ast.literal_eval(done.stdout.strip().splitlines()[-1])
    assert rc == 2 and "RRQNET_FRESHNESS must be a number" in done.stderr
    assert seen == {"at_load": users or NO_AVX512}
