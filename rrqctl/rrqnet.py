"""The rrqnet(8) command line, exactly: options in their fixed order, then port and remotes.

rrqnet [-v|-vv|-vvv] [-tpg] [-4] [-B n] [-T n] [-m mcast] [-t tap] [-S source]
       port ( remote [-i mac[,mac]*] )*
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Sequence
from typing import Any

from rrqctl.engine import cpucaps
from rrqctl.engine.remotes import Remote, parse_ignore_list, parse_multicast, parse_remote
from rrqctl.errors import UsageError

USAGE = (
    "usage: rrqnet [-v|-vv|-vvv] [-tpg] [-4] [-B n] [-T n] [-m mcast] [-t tap] [-S source]\n"
    "              port ( remote [-i mac[,mac]*] )*"
)
ORDER = ("-v", "-tpg", "-4", "-B", "-T", "-m", "-t", "-S")
TAKES_VALUE = frozenset({"-B", "-T", "-m", "-t", "-S"})
VERBOSE = {"-v": 1, "-vv": 2, "-vvv": 3}
ORDER_TEXT = "[-v] [-tpg] [-4] [-B n] [-T n] [-m mcast] [-t tap] [-S source]"


def _usage(msg: str) -> UsageError:
    return UsageError(f"{msg}\n{USAGE}")


def _positive(opt: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise _usage(f"{opt} needs a positive number, not '{text}'")
    return int(text)


def parse_options(argv: Sequence[str]) -> tuple[dict[str, Any], int]:
    """The leading options; returns (values, index of the first non-option word)."""
    values: dict[str, Any] = {}
    stage = 0
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        word = argv[i]
        key = "-v" if word in VERBOSE else word
        if key not in ORDER:
            raise _usage(f"unknown option '{word}'")
        pos = ORDER.index(key)
        if pos < stage:
            raise _usage(f"option '{word}' is out of order (options go in the order {ORDER_TEXT})")
        stage = pos + 1
        if key in TAKES_VALUE:
            if i + 1 >= len(argv):
                raise _usage(f"option '{word}' needs a value")
            i += 1
            _set_option(values, key, argv[i])
        elif key == "-v":
            values["verbosity"] = VERBOSE[word]
        elif key == "-tpg":
            values["tpg"] = True
        else:
            values["ipv4_only"] = True
        i += 1
    return values, i


def _set_option(values: dict[str, Any], key: str, arg: str) -> None:
    if key == "-B":
        values["buffers"] = _positive(key, arg)
    elif key == "-T":
        values["threads"] = _positive(key, arg)
    elif key == "-m":
        try:
            values["multicast"] = parse_multicast(arg)
        except ValueError as e:
            raise _usage(f"-m '{arg}': {e}") from None
    elif key == "-t":
        values["tap"] = arg
    else:
        try:
            values["source"] = ipaddress.ip_address(arg)
        except ValueError:
            raise _usage(f"-S needs an IP address, not '{arg}'") from None


def _remotes(argv: Sequence[str]) -> list[Remote]:
    """( remote [-i mac[,mac]*] )* -> Remotes, each mistake naming its word."""
    out: list[Remote] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "-i":
            raise _usage("'-i' must follow a remote declaration")
        if word.startswith("-"):
            raise _usage(f"unexpected '{word}' among the remotes (options come before the port)")
        ignore: tuple[bytes, ...] = ()
        if i + 1 < len(argv) and argv[i + 1] == "-i":
            if i + 2 >= len(argv):
                raise _usage(f"'-i' after '{word}' needs a comma separated list of MAC addresses")
            try:
                ignore = parse_ignore_list(argv[i + 2])
            except ValueError as e:
                raise _usage(f"-i '{argv[i + 2]}': {e}") from None
            i += 2
        try:
            out.append(parse_remote(word, ignore))
        except ValueError as e:
            raise _usage(f"remote '{word}': {e}") from None
        i += 1
    return out


def parse_argv(argv: Sequence[str]) -> dict[str, Any]:
    """rrqnet's arguments as Cable values (raises UsageError naming the offending word)."""
    values, i = parse_options(argv)
    rest = list(argv[i:])
    tap = values.pop("tap", None)
    if rest and rest[0].isdigit():
        port = int(rest.pop(0))
        if not 1 <= port <= 65535:
            raise _usage(f"port {port} is out of range 1-65535")
        values["port"] = port
    elif "multicast" not in values or rest:
        word = rest[0] if rest else None
        raise _usage(f"'{word}' is not a port number" if word else "the UDP port is missing")
    values["remotes"] = _remotes(rest)
    if tap == "-":
        values["local"] = "stdio"
    elif tap is None:
        values["local"] = "none"
    else:
        values["name"] = tap
    if "name" not in values:
        values["name"] = f"rrqnet-{values.get('port') or 'mcast'}"
    return values


def build(argv: Sequence[str]) -> Any:
    """argv -> Cable; every mistake is a UsageError (exit 2) naming the offending word."""
    from rrqctl.errors import ConfigError
    from rrqctl.model import build_cable

    values = parse_argv(argv)
    try:
        return build_cable(values)
    except ConfigError as e:
        raise _usage("; ".join(i.message for i in e.issues)) from None


def main(argv: Sequence[str] | None = None) -> int:
    from rrqctl.cli import run_guarded

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
            raise _usage(
                f"RRQNET_FRESHNESS must be a number of seconds, not '{freshness}'"
            ) from None
    pmtu = os.environ.get("RRQNET_PMTU", "0")
    if pmtu not in ("0", "1"):
        raise _usage(f"RRQNET_PMTU must be 0 or 1, not '{pmtu}'")
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
    answer = json.loads(data) if data else {"usage": "the command line could not be checked"}
    if "usage" in answer:
        raise UsageError(answer["usage"])
    cable: dict[str, Any] = answer["cable"]
    return cable


if __name__ == "__main__":
    sys.exit(main())
