"""The ifupdown hook environment: IFACE, PHASE, MODE, ADDRFAM, METHOD and IF_<OPTION>.

ifupdown passes each stanza option as IF_<NAME> (upper case, '-' as '_'); an option
given on several lines arrives once, its values joined with newlines.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from rrqctl.config.options import Setting
from rrqctl.errors import Location

PHASES = ("pre-up", "post-up", "pre-down", "post-down")


@dataclass(frozen=True)
class HookCall:
    iface: str
    phase: str
    mode: str  # start | stop
    addrfam: str
    method: str
    settings: tuple[Setting, ...]  # rrqnet_* options, one per value

    @property
    def is_all(self) -> bool:
        """ifup -a / ifdown -a also run the hooks once with IFACE=--all."""
        return self.iface == "--all"

    @property
    def is_cable(self) -> bool:
        return any(s.name == "rrqnet_port" for s in self.settings)


def env_name(option: str) -> str:
    return "IF_" + option.upper().replace("-", "_")


def parse(env: Mapping[str, str]) -> HookCall:
    settings = []
    for key in sorted(env):
        if not key.startswith("IF_RRQNET_"):
            continue
        option = key[3:].lower()
        where = Location(f"${key}")
        settings += [Setting(option, v, where) for v in env[key].split("\n") if v.strip()]
    return HookCall(
        iface=env.get("IFACE", ""),
        phase=env.get("PHASE", ""),
        mode=env.get("MODE", ""),
        addrfam=env.get("ADDRFAM", ""),
        method=env.get("METHOD", ""),
        settings=tuple(settings),
    )


def locate(settings: tuple[Setting, ...], written: list[Setting]) -> tuple[Setting, ...]:
    """Give each setting the FILE:LINE where the same option and value is written, if any."""
    from rrqctl.config.options import normalize

    pool = [(normalize(w.name), " ".join(w.value.split()), w.loc) for w in written]
    out = []
    for s in settings:
        value = " ".join(s.value.split())
        for i, (name, v, loc) in enumerate(pool):
            if name == s.name and v == value:
                out.append(Setting(s.name, s.value, loc))
                del pool[i]
                break
        else:
            out.append(s)
    return tuple(out)
