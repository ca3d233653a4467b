"""The rrqnet(8) command line, exactly: options in their fixed order, then port and remotes.

rrqnet [-v|-vv|-vvv] [-tpg] [-4] [-B n] [-T n] [-m mcast] [-t tap] [-S source]
       port ( remote [-i mac[,mac]*] )*

The grammar only: rrqnet (rrqctl/rrqnet.py) runs it, rrqnet_options and Options= use it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rrqctl.engine.remotes import Remote, parse_ignore_list, parse_multicast, parse_remote
from rrqctl.errors import UsageError

if TYPE_CHECKING:
    from rrqctl.model import Cable

USAGE = (
    "usage: rrqnet [-v|-vv|-vvv] [-tpg] [-4] [-B n] [-T n] [-m mcast] [-t tap] [-S source]\n"
    "              port ( remote [-i mac[,mac]*] )*"
)
ORDER = ("-v", "-tpg", "-4", "-B", "-T", "-m", "-t", "-S")
TAKES_VALUE = frozenset({"-B", "-T", "-m", "-t", "-S"})
VERBOSE = {"-v": 1, "-vv": 2, "-vvv": 3}
ORDER_TEXT = "[-v] [-tpg] [-4] [-B n] [-T n] [-m mcast] [-t tap] [-S source]"


def usage_error(msg: str) -> UsageError:
    return UsageError(f"{msg}\n{USAGE}")


def _positive(opt: str, text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise usage_error(f"{opt} needs a positive number, not '{text}'")
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
            raise usage_error(f"unknown option '{word}'")
        pos = ORDER.index(key)
        if pos < stage:
            raise usage_error(
                f"option '{word}' is out of order (options go in the order {ORDER_TEXT})"
            )
        stage = pos + 1
        if key in TAKES_VALUE:
            if i + 1 >= len(argv):
                raise usage_error(f"option '{word}' needs a value")
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
            raise usage_error(f"-m '{arg}': {e}") from None
    elif key == "-t":
        values["tap"] = arg
    else:
        try:
            values["source"] = ipaddress.ip_address(arg)
        except ValueError:
            raise usage_error(f"-S needs an IP address, not '{arg}'") from None


def _remotes(argv: Sequence[str]) -> list[Remote]:
    """( remote [-i mac[,mac]*] )* -> Remotes, each mistake naming its word."""
    out: list[Remote] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        if word == "-i":
            raise usage_error("'-i' must follow a remote declaration")
        if word.startswith("-"):
            raise usage_error(
                f"unexpected '{word}' among the remotes (options come before the port)"
            )
        ignore: tuple[bytes, ...] = ()
        if i + 1 < len(argv) and argv[i + 1] == "-i":
            if i + 2 >= len(argv):
                raise usage_error(
                    f"'-i' after '{word}' needs a comma separated list of MAC addresses"
                )
            try:
                ignore = parse_ignore_list(argv[i + 2])
            except ValueError as e:
                raise usage_error(f"-i '{argv[i + 2]}': {e}") from None
            i += 2
        try:
            out.append(parse_remote(word, ignore))
        except ValueError as e:
            raise usage_error(f"remote '{word}': {e}") from None
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
            raise usage_error(f"port {port} is out of range 1-65535")
        values["port"] = port
    elif "multicast" not in values or rest:
        word = rest[0] if rest else None
        raise usage_error(f"'{word}' is not a port number" if word else "the UDP port is missing")
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


def build(argv: Sequence[str]) -> Cable:
    """argv -> Cable; every mistake is a UsageError (exit 2) naming the offending word."""
    from rrqctl.errors import ConfigError
    from rrqctl.model import build_cable

    values = parse_argv(argv)
    try:
        return build_cable(values)
    except ConfigError as e:
        raise usage_error("; ".join(i.message for i in e.issues)) from None
