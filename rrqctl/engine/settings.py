"""What the engine needs to know of a cable: a small, pure projection of the Cable model.

The engine never imports the model (nor pydantic): a long-running datapath process stays
small. Both `rrqctl run` and `rrqnet` make these settings from the validated cable's JSON
form, through the one function below.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rrqctl.engine.frames import parse_mac
from rrqctl.engine.remotes import IPAddress, Multicast, Remote, parse_multicast, parse_remote

DEFAULT_FRESHNESS = 600.0


@dataclass(frozen=True)
class EngineSettings:
    name: str
    port: int | None
    local: str  # tap | stdio | none
    remotes: tuple[Remote, ...] = ()
    multicast: Multicast | None = None
    ipv4_only: bool = False
    buffers: int | None = None
    tpg: bool = False
    source: IPAddress | None = None
    freshness: float = DEFAULT_FRESHNESS
    verbosity: int = 0
    pmtu: bool = True  # DF set, path MTUs learned, frames too big answered (pmtu.py)
    mss_clamp: int | None = None  # clamp TCP SYNs' MSS: to this, or (0) to what the path fits

    @property
    def keyfiles(self) -> list[str]:
        keys = [r.keyfile for r in self.remotes if r.keyfile]
        if self.multicast is not None and self.multicast.keyfile:
            keys.append(self.multicast.keyfile)
        return list(dict.fromkeys(keys))

    def with_freshness(self, seconds: float) -> EngineSettings:
        return replace(self, freshness=seconds)

    def with_pmtu(self, on: bool) -> EngineSettings:
        return replace(self, pmtu=on)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EngineSettings:
        """From a validated Cable's model_dump(mode="json")."""
        remotes = tuple(
            parse_remote(r["declared"], tuple(parse_mac(m) for m in r.get("ignore", ())))
            for r in d.get("remotes", ())
        )
        mc = d.get("multicast")
        src = d.get("source")
        return cls(
            name=d["name"],
            port=d.get("port"),
            local=d.get("local", "tap"),
            remotes=remotes,
            multicast=parse_multicast(mc["declared"]) if mc else None,
            ipv4_only=bool(d.get("ipv4_only")),
            buffers=d.get("buffers"),
            tpg=bool(d.get("tpg")),
            source=ipaddress.ip_address(src) if src else None,
            freshness=float(d.get("freshness", DEFAULT_FRESHNESS)),
            verbosity=int(d.get("verbosity", 0)),
            pmtu=bool(d.get("pmtu", True)),
            mss_clamp=d.get("mss_clamp"),
        )
