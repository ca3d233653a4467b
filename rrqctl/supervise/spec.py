"""The cable as the long-running engine process knows it: plain data, no pydantic.

`rrqctl run` validates the cable with the model (pydantic), then hands the engine process
this projection as JSON (see handover.py). The engine process never imports the model, nor
pyroute2: each costs about 12-14 MB, a third of an engine's whole budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rrqctl.engine.settings import EngineSettings

if TYPE_CHECKING:
    from rrqctl.model import Cable

# What a reload cannot change in a running engine (it says "restart to apply ...").
RESTART_FIELDS = ("local", "port", "bridge", "dhcp", "mac", "mtu", "ipv4_only", "source")


@dataclass(frozen=True)
class CableSpec:
    name: str
    local: str  # tap | stdio | none
    owner: str  # rrqctl | networkd
    bridge: str | None
    dhcp: tuple[str, ...] | None  # dhclient's arguments; None: no DHCP
    mac: str | None
    mtu: int | None
    addresses: tuple[str, ...]
    nice: int | None
    verbosity: int
    syslog: tuple[str, str] | None
    remotes: int
    data: Mapping[str, Any]  # the validated cable's model_dump(mode="json")

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CableSpec:
        c = d["cable"]
        dhcp = c.get("dhcp")
        syslog = d.get("syslog")
        return cls(
            name=c["name"],
            local=c.get("local", "tap"),
            owner=c.get("owner", "rrqctl"),
            bridge=c.get("bridge"),
            dhcp=tuple(dhcp["args"]) if dhcp is not None else None,
            mac=c.get("mac"),
            mtu=c.get("mtu"),
            addresses=tuple(c.get("addresses", ())),
            nice=c.get("nice"),
            verbosity=int(c.get("verbosity", 0)),
            syslog=(syslog[0], syslog[1]) if syslog else None,
            remotes=len(c.get("remotes", ())),
            data=c,
        )

    @classmethod
    def from_cable(cls, cable: Cable) -> CableSpec:
        return cls.from_json(spec_json(cable))

    def to_json(self) -> dict[str, Any]:
        return {"cable": dict(self.data), "syslog": list(self.syslog) if self.syslog else None}

    def engine_settings(self) -> EngineSettings:
        return EngineSettings.from_json(self.data)

    def changed(self, new: CableSpec) -> list[str]:
        """The fields a reload to new would leave unapplied."""
        return [f for f in RESTART_FIELDS if self.data.get(f) != new.data.get(f)]


def spec_json(cable: Cable) -> dict[str, Any]:
    """The JSON form of CableSpec, made from a validated cable (in the process that has it)."""
    syslog = cable.log.syslog if cable.log is not None else None
    return {"cable": cable.model_dump(mode="json"), "syslog": list(syslog) if syslog else None}
