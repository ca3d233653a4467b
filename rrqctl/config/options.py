"""Every rrqnet_* option, once: its syntax, meaning and example, and how it sets a Cable.

The interfaces parser, the hook environment, networkd's [X-RRQNet] keys, `rrqctl --help`
and the man pages all read this table.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from rrqctl.config.cmdline import VERBOSE, parse_options
from rrqctl.engine.remotes import parse_ignore_list, parse_multicast, parse_port, parse_remote
from rrqctl.errors import Issue, Location, UsageError

Values = dict[str, Any]


@dataclass(frozen=True)
class OptionSpec:
    name: str  # as in /etc/network/interfaces
    args: str
    help: str
    example: str
    apply: Callable[[str, Values], None]  # raises ValueError saying what is wrong
    networkd: str  # the key in a networkd [X-RRQNet] section
    repeatable: bool = False


def _port(value: str, v: Values) -> None:
    words = value.split()
    notap = bool(words) and words[0] == "notap"
    if notap:
        words = words[1:]
    if len(words) != 1:
        raise ValueError("want [notap] PORT")
    v["port"] = parse_port(words[0])
    v["local"] = "none" if notap else "tap"


def _remote(value: str, v: Values) -> None:
    words = value.split()
    ignore: tuple[bytes, ...] = ()
    if len(words) == 3 and words[1] == "-i":
        ignore = parse_ignore_list(words[2])
    elif len(words) != 1:
        raise ValueError(f"'{value}' is not one remote (want REMOTE [-i MAC[,MAC]*])")
    v.setdefault("remotes", []).append(parse_remote(words[0], ignore))


def _options(value: str, v: Values) -> None:
    words = value.split()
    try:
        opts, used = parse_options(words)
    except UsageError as e:
        raise ValueError(str(e).splitlines()[0]) from None
    if used < len(words):
        raise ValueError(
            f"'{words[used]}' is not an rrqnet option here"
            " (want -tpg -4 -B n -T n -m mcast -S source)"
        )
    if "verbosity" in opts:
        raise ValueError("set the log level with rrqnet_log, not -v")
    if "tap" in opts:
        raise ValueError("-t is implied: the tap is the stanza's interface")
    if "multicast" in opts and "multicast" in v:
        raise ValueError("-m given twice (here and as the multicast option)")
    v.update(opts)


def _multicast(value: str, v: Values) -> None:
    if "multicast" in v:
        raise ValueError("the multicast channel is already set by -m in the options")
    v["multicast"] = parse_multicast(value.strip())


def _log(value: str, v: Values) -> None:
    words = value.split()
    if words and words[0] in VERBOSE:
        v["verbosity"] = VERBOSE[words.pop(0)]
    elif words and words[0].startswith("-"):
        raise ValueError(f"'{words[0]}' is not a log level (-v, -vv or -vvv)")
    if len(words) == 1:
        v["log"] = {"target": words[0]}
    elif words or "verbosity" not in v:
        raise ValueError("want [-v|-vv|-vvv] [PATH|facility.priority]")


def _int(name: str, lo: int, hi: int) -> Callable[[str, Values], None]:
    def apply(value: str, v: Values) -> None:
        try:
            n = int(value.strip())
        except ValueError:
            raise ValueError(f"'{value}' is not a whole number") from None
        if not lo <= n <= hi:
            raise ValueError(f"{n} is out of range {lo}..{hi}")
        v[name] = n

    return apply


def _word(name: str) -> Callable[[str, Values], None]:
    def apply(value: str, v: Values) -> None:
        words = value.split()
        if len(words) != 1:
            raise ValueError(f"want one word, not '{value}'")
        v[name] = words[0]

    return apply


def _dhcp(value: str, v: Values) -> None:
    method, *args = value.split()
    if method != "dhclient":
        raise ValueError(f"DHCP method '{method}' is not known (the one method is dhclient)")
    v["dhcp"] = {"method": method, **({"args": tuple(args)} if args else {})}


def _freshness(value: str, v: Values) -> None:
    try:
        v["freshness"] = float(value)
    except ValueError:
        raise ValueError(f"'{value}' is not a number of seconds") from None


def _mss_clamp(value: str, v: Values) -> None:
    if value in ("yes", "auto"):
        v["mss_clamp"] = 0
    elif value.isdigit() and 536 <= int(value) <= 65495:
        v["mss_clamp"] = int(value)
    else:
        raise ValueError(f"'{value}' is neither yes nor an MSS of 536..65495")


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "rrqnet_port",
        "[notap] PORT",
        "Marks the stanza as an rrqnet cable and sets the UDP port its engine listens on. "
        "With notap the engine has no tap and only switches among its remotes.",
        "rrqnet_port 3636",
        _port,
        "Port",
    ),
    OptionSpec(
        "rrqnet_remote",
        "REMOTE [-i MAC[,MAC]*]",
        "A remote as in rrqnet(8): a.b.c.d[/n][:port][=keyfile], addr[/n][=keyfile], "
        "[addr[/n]]:port[=keyfile] or name:port[=keyfile] (a host name, resolved by the "
        "engine, again when the remote falls silent). Repeat the line for more remotes.",
        "rrqnet_remote 10.0.0.2:3636=/etc/rrqnet/keys/mynet0.key",
        _remote,
        "Remote",
        repeatable=True,
    ),
    OptionSpec(
        "rrqnet_options",
        "[-tpg] [-4] [-B n] [-T n] [-m mcast] [-S source]",
        "More rrqnet(8) options, in rrqnet's fixed order.",
        "rrqnet_options -4 -B 10 -T 1",
        _options,
        "Options",
    ),
    OptionSpec(
        "rrqnet_multicast",
        "IPV4:PORT[=KEYFILE]",
        "The multicast channel (as rrqnet -m): an IPv4 multicast group joined as one more remote; "
        "QEMU's -netdev socket,mcast= is a peer.",
        "rrqnet_multicast 239.1.2.3:2000",
        _multicast,
        "Multicast",
    ),
    OptionSpec(
        "rrqnet_log",
        "[-v|-vv|-vvv] [PATH|facility.priority]",
        "Log level and where the engine's log goes: appended to PATH, or to syslog at "
        "facility.priority. Without a target the log goes to standard error: the journal under "
        "systemd, discarded for engines that ifup started. Without the option: warnings only. "
        "rrqnet@.service may write only under /var/log/rrqnet; for a PATH elsewhere, "
        "`rrqctl render unit NAME` prints the drop-in that allows it.",
        "rrqnet_log -v /var/log/mynet0.log",
        _log,
        "Log",
    ),
    OptionSpec(
        "rrqnet_nice",
        "N",
        "Scheduling priority of the engine, -20..19 (see nice(1)).",
        "rrqnet_nice -5",
        _int("nice", -20, 19),
        "Nice",
    ),
    OptionSpec(
        "rrqnet_bridge",
        "BRIDGE",
        "Make the tap a port of this (existing) bridge.",
        "rrqnet_bridge br0",
        _word("bridge"),
        "Bridge",
    ),
    OptionSpec(
        "rrqnet_dhcp",
        "METHOD [ARGS]",
        "Run a DHCP client on the tap. The method is dhclient; ARGS replace the "
        "default -4 -cf /dev/null.",
        "rrqnet_dhcp dhclient",
        _dhcp,
        "DHCP",
    ),
    OptionSpec(
        "rrqnet_mac",
        "MAC",
        "The tap's MAC address.",
        "rrqnet_mac 02:00:00:00:36:36",
        _word("mac"),
        "MACAddress",
    ),
    OptionSpec(
        "rrqnet_mtu",
        "N",
        "The tap's MTU (68..65521). Without it, a tap the cable makes gets the largest MTU "
        "whose frames fit one datagram on the route to every remote (see rrqnet(8), MTU).",
        "rrqnet_mtu 1400",
        _int("mtu", 68, 65521),
        "MTUBytes",
    ),
    OptionSpec(
        "rrqnet_mss_clamp",
        "yes|MSS",
        "Lower the MSS option of TCP SYNs crossing the cable: to what the path fits (yes), "
        "or to MSS. For hosts behind the cable that do not answer to ICMP.",
        "rrqnet_mss_clamp yes",
        _mss_clamp,
        "MSSClamp",
    ),
    OptionSpec(
        "rrqnet_freshness",
        "SECONDS",
        "Sealed channels: how far the date of a handshake may be from our clock, either way "
        "(default 600, 0 = handshakes are not dated).",
        "rrqnet_freshness 600",
        _freshness,
        "Freshness",
    ),
)
BY_NAME = {o.name: o for o in OPTIONS}
BY_NETWORKD = {o.networkd: o for o in OPTIONS}
MARKER = "rrqnet_port"


@functools.cache
def normalize(name: str) -> str:
    """ifupdown treats rrqnet-port and rrqnet_port alike (both become IF_RRQNET_PORT)."""
    return name.replace("-", "_").lower()


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class Setting(NamedTuple):
    """One option as written somewhere: name, value, and where (a tuple: a big interfaces
    file has hundreds of thousands)."""

    name: str
    value: str
    loc: Location | None


def cable_values(
    settings: Iterable[Setting], label: Callable[[OptionSpec], str] = lambda o: o.name
) -> tuple[Values, dict[str, Location], list[Issue]]:
    """Apply settings (already known to be rrqnet options) to Cable values, collecting issues."""
    values: Values = {}
    origins: dict[str, Location] = {}
    issues: list[Issue] = []
    seen: dict[str, Location | None] = {}
    for s in settings:
        spec = BY_NAME[s.name]
        if not spec.repeatable and s.name in seen:
            first = seen[s.name]
            issues.append(
                Issue(
                    s.loc, f"{label(spec)} given twice" + (f" (first at {first})" if first else "")
                )
            )
            continue
        seen[s.name] = s.loc
        before = values.copy()  # lists only grow: their lengths say what was there
        lengths = {k: len(v) for k, v in before.items() if type(v) is list} if before else {}
        try:
            spec.apply(s.value, values)
        except ValueError as e:
            values.clear()
            values.update(before)
            for k, n in lengths.items():
                del values[k][n:]
            issues.append(Issue(s.loc, f"{label(spec)}: {e}"))
            continue
        if s.loc is not None:
            _record(origins, before, lengths, values, s.loc)
    return values, origins, issues


def _record(
    origins: dict[str, Location],
    before: Values,
    lengths: dict[str, int],
    after: Values,
    loc: Location,
) -> None:
    """Note loc as the origin of every field this setting set (list items by index)."""
    for key, value in after.items():
        if type(value) is list:
            for i in range(lengths.get(key, 0), len(value)):
                origins[f"{key}[{i}]"] = loc
            origins.setdefault(key, loc)
        elif key not in before or before[key] != value:
            origins[key] = loc
