"""Host names in a cable's remotes, looked at before the cable is brought up.

`rrqctl up` and `ifup` refuse a cable one of whose names does not resolve when no address
of it is known (an error, FILE:LINE, nothing made); with an address known (resolved by an
earlier `up` since the machine started: RUN/names.json), or under systemd and cron, they
warn and go on, and the engine keeps trying (engine/resolver.py).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

from rrqctl.engine.resolver import lookup
from rrqctl.errors import ConfigError, Issue, Location

if TYPE_CHECKING:
    from rrqctl.model import Cable
    from rrqctl.system.paths import Paths

Warn = Callable[[str], None]


def _cache(paths: Paths) -> str:
    return os.path.join(paths.run_dir, "names.json")


def _known(paths: Paths) -> dict[str, list[str]]:
    try:
        with open(_cache(paths)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember(paths: Paths, known: dict[str, list[str]]) -> None:
    try:
        os.makedirs(paths.run_dir, mode=0o755, exist_ok=True)
        tmp = _cache(paths) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(known, f)
        os.replace(tmp, _cache(paths))
    except OSError:
        pass  # a cache: without it, a name that does not resolve is an error, as at first


def check_names(cable: Cable, paths: Paths, *, strict: bool, warn: Warn) -> None:
    """Each host name resolves, or an address of it is known; else ConfigError (strict) or
    a warning."""
    family = socket.AF_INET if cable.ipv4_only else socket.AF_UNSPEC
    known = _known(paths)
    issues = []
    changed = False
    for i, r in enumerate(cable.remotes):
        if r.host is None:
            continue
        answer = lookup(r.host, family)
        if not isinstance(answer, str):
            known[r.host] = [str(ip) for ip in answer]
            changed = True
            continue
        where = cable.where(f"remotes[{i}]")
        said = f"{where}: " if where else ""
        if r.host in known:
            last = ", ".join(known[r.host])
            warn(f"{said}{r.host} does not resolve ({answer}); last known at {last}: going on")
        elif strict:
            issues.append(
                Issue(
                    Location.parse(where) if where else None,
                    f"rrqnet_remote: {r.host} does not resolve ({answer})",
                )
            )
        else:
            warn(f"{said}{r.host} does not resolve ({answer}): the engine keeps trying")
    if changed:
        _remember(paths, known)
    if issues:
        raise ConfigError(issues)
