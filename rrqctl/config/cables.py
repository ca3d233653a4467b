"""rrqnet_* settings, as any source writes them, made into a validated Cable (or the issues
why not), with a warning for what is valid but likely not what was meant."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rrqctl.config.options import (
    BY_NAME,
    MARKER,
    OptionSpec,
    Setting,
    cable_values,
    did_you_mean,
    normalize,
)
from rrqctl.errors import ConfigError, Issue, Location

if TYPE_CHECKING:  # the model (and pydantic, ~0.2 s) is loaded only once there is a cable
    from rrqctl.model import Cable

Label = Callable[[OptionSpec], str]
Found = tuple[str, "Cable | None", list[Issue], Location]


def _line(i: Issue) -> tuple[str, int]:
    return (i.location.file, i.location.line) if i.location else ("", 0)


def cable_from_settings(
    name: str,
    settings: list[Setting],
    where: Location | None,
    kind: str,
    *,
    label: Label | None = None,
    extra: dict[str, object] | None = None,
    places: dict[str, Location] | None = None,
) -> tuple[Cable | None, list[Issue]]:
    """rrqnet_* settings (as written, any spelling) -> a Cable, or the issues why not.
    extra: more of the cable's values; places: where those were written."""
    issues: list[Issue] = []
    known: list[Setting] = []
    for s in settings:
        opt = normalize(s.name)
        if opt in BY_NAME:
            known.append(s if opt == s.name else Setting(opt, s.value, s.loc))
        else:
            issues.append(Issue(s.loc, f"unknown option {s.name}" + did_you_mean(opt, BY_NAME)))
    say = label or (lambda o: o.name)
    if known and not any(s.name == MARKER for s in known):
        first, marker = say(BY_NAME[known[0].name]), say(BY_NAME[MARKER])
        issues.append(
            Issue(
                known[0].loc,
                f"{first} without {marker}: add '{marker} PORT' to make {name} a cable",
            )
        )
    values, origins, more = cable_values(known, say)
    issues += more
    if issues:
        return None, sorted(issues, key=_line)
    values["name"] = name
    values["kind"] = kind
    if extra:
        values.update(extra)
    if places:
        origins.update(places)
    if where is not None:
        values["origin"] = str(where)
        origins[""] = where
    try:
        cable = _build_cable()(values, origins)
    except ConfigError as e:
        return None, e.issues
    return cable, doubtful_remotes(cable, say)


def doubtful_remotes(cable: Cable, say: Label = lambda o: o.name) -> list[Issue]:
    """Warnings for remotes that are valid but likely not what was meant."""
    out = []
    for i, r in enumerate(cable.remotes):
        port = _port_in_ipv6(r)
        if port is not None:
            address, group = port
            key = f"={r.keyfile}" if r.keyfile else ""
            out.append(
                Issue(
                    loc_of(cable.where(f"remotes[{i}]")),
                    f"{say(BY_NAME['rrqnet_remote'])} {r.text()}: an IPv6 address without "
                    f"brackets has no port, so this admits {r.ip} from any port and sends "
                    f"nothing; for an uplink to port {group} write [{address}]:{group}{key}",
                    warning=True,
                )
            )
    return out


def _port_in_ipv6(r: Any) -> tuple[str, str] | None:
    """(address, port) when an unbracketed IPv6 remote ends in a group that reads as a port
    (decimal digits, 100 or more): fd00::2:3636 meant as [fd00::2]:3636."""
    if r.host is not None or r.ip.version != 6 or r.port is not None or r.prefixlen != 128:
        return None
    head, _, group = str(r.ip).rpartition(":")
    if not group.isdigit() or int(group) < 100 or int(group) > 65535:
        return None
    return (head + ":" if head.endswith(":") else head), group


@functools.cache
def _build_cable() -> Callable[[dict[str, Any], dict[str, Location]], Cable]:
    """model.build_cable, imported on first use (pydantic: only once there is a cable)."""
    from rrqctl.model import build_cable

    return build_cable


def loc_of(text: str | None) -> Location | None:
    return Location.parse(text) if text else None
