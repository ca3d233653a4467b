"""rrqnet(8): the engine on the command line (its grammar: config/cmdline.py).

rrqnet [-v|-vv|-vvv] [-tpg] [-4] [-B n] [-T n] [-m mcast] [-t tap] [-S source]
       port ( remote [-i mac[,mac]*] )*
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from rrqctl.config.cmdline import USAGE, build, parse_argv, usage_error
from rrqctl.engine import cpucaps
from rrqctl.errors import UsageError


def main(argv: Sequence[str] | None = None) -> int:
    from rrqctl.errors import run_guarded

    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        print("\nSee rrqnet(8). Environment: RRQNET_CONTROL=PATH|none (control socket),")
        print("RRQNET_FRESHNESS=SECONDS (how far a sealed handshake's date may be from this")
        print("clock, 0 = not dated), RRQNET_PMTU=1 (send with DF and learn each path's MTU),")
        print(f"OPENSSL_ia32cap (on x86 {cpucaps.NO_AVX512} unless set: OpenSSL's AVX2 code).")
        return 0
    if args and args[0] == "--version":
        from rrqctl import __version__

        print(f"rrqnet (rrqctl) {__version__}")
        return 0
    return run_guarded("rrqnet", lambda: _run(args))


def _run(args: list[str]) -> int:
    os.environ.update(cpucaps.for_datagrams(os.environ, os.uname().machine))  # before libcrypto
    from rrqctl.engine.settings import EngineSettings
    from rrqctl.supervise.runner import serve

    parse_argv(args)  # the command line's own mistakes, said at once
    settings = EngineSettings.from_json(validated(args))
    freshness = os.environ.get("RRQNET_FRESHNESS")
    if freshness is not None:
        try:
            settings = settings.with_freshness(float(freshness))
        except ValueError:
            raise usage_error(
                f"RRQNET_FRESHNESS must be a number of seconds, not '{freshness}'"
            ) from None
    pmtu = os.environ.get("RRQNET_PMTU", "0")
    if pmtu not in ("0", "1"):
        raise usage_error(f"RRQNET_PMTU must be 0 or 1, not '{pmtu}'")
    settings = settings.with_pmtu(pmtu == "1")  # rrqnet(8) lets datagrams fragment
    return serve(settings, control=os.environ.get("RRQNET_CONTROL"), prog="rrqnet")


def validated(args: Sequence[str]) -> dict[str, Any]:
    """The command line as a validated Cable (its JSON form), checked in a short-lived child:
    the long-running engine never loads the model's libraries (pydantic alone is ~17 MB)."""
    import json

    sys.stdout.flush()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: validate, answer, vanish
        os.close(r)
        answer: dict[str, Any]
        try:
            answer = {"cable": build(args).model_dump(mode="json")}
        except UsageError as e:
            answer = {"usage": str(e)}
        except BaseException as e:  # never let the child run on as a second engine
            answer = {"usage": f"{type(e).__name__}: {e}"}
        with os.fdopen(w, "w") as f:
            json.dump(answer, f)
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        data = f.read()
    os.waitpid(pid, 0)
    said: dict[str, Any] = (
        json.loads(data) if data else {"usage": "the command line could not be checked"}
    )
    if "usage" in said:
        raise UsageError(said["usage"])
    cable: dict[str, Any] = said["cable"]
    return cable


if __name__ == "__main__":
    sys.exit(main())
