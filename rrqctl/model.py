"""The one model of a cable that every source produces and the engine consumes."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import Iterable, Mapping
from ipaddress import IPv4Address, IPv6Address, ip_interface
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from rrqctl.engine.frames import format_mac, is_unicast_mac, parse_mac
from rrqctl.engine.remotes import (
    Multicast,
    Remote,
    parse_ignore_list,
    parse_multicast,
    parse_remote,
)
from rrqctl.engine.settings import EngineSettings
from rrqctl.errors import ConfigError, Issue, Location

IFNAME_RE = re.compile(r"^[A-Za-z0-9_.:+-]{1,15}$")
SYSLOG_FACILITIES = frozenset(
    ["auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog"]
    + ["user", "uucp"]
    + [f"local{i}" for i in range(8)]
)
SYSLOG_PRIORITIES = frozenset(
    ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]
)
DEFAULT_DHCP_ARGS = ("-4", "-cf", "/dev/null")


def check_ifname(name: str, what: str = "interface name") -> str:
    if not IFNAME_RE.match(name) or name in (".", ".."):
        raise ValueError(f"'{name}' is not a valid {what} (1-15 of A-Z a-z 0-9 _ . : + -)")
    return name


def _to_remote(value: Any) -> Remote:
    if isinstance(value, Remote):
        return value
    if isinstance(value, Mapping):
        ignore = tuple(parse_mac(m) for m in value.get("ignore", ()))
        return parse_remote(str(value["declared"]), ignore)
    if isinstance(value, str):
        words = value.split()
        if len(words) == 3 and words[1] == "-i":
            return parse_remote(words[0], parse_ignore_list(words[2]))
        if len(words) != 1:
            raise ValueError(f"'{value}' is not one remote (want remote [-i mac[,mac]*])")
        return parse_remote(words[0])
    raise ValueError(f"not a remote declaration: {value!r}")


def _remote_json(r: Remote) -> dict[str, Any]:
    return {
        "declared": r.text(),
        "kind": r.kind,
        "network": None if r.host else str(r.network),
        **({"host": r.host} if r.host else {}),
        "port": r.port,
        "keyfile": r.keyfile,
        "ignore": [format_mac(m) for m in r.ignore],
    }


def _to_multicast(value: Any) -> Multicast:
    if isinstance(value, Multicast):
        return value
    if isinstance(value, Mapping):
        value = value["declared"]
    return parse_multicast(str(value))


RemoteField = Annotated[
    Remote, BeforeValidator(_to_remote), PlainSerializer(_remote_json, return_type=dict)
]
MulticastField = Annotated[
    Multicast,
    BeforeValidator(_to_multicast),
    PlainSerializer(lambda m: {"declared": m.text()}, return_type=dict),
]


def _mac(value: Any) -> str:
    mac = parse_mac(str(value))
    if not is_unicast_mac(mac):
        raise ValueError(f"{value} is not a unicast MAC address (first octet must be even)")
    return format_mac(mac)


MacField = Annotated[str, BeforeValidator(_mac)]


def _interface(value: Any) -> str:
    """An address with its prefix length, as `ip addr` writes it (10.0.0.1/24, fd00::1/64)."""
    text = str(value)
    addr, _, plen = text.partition("/")
    if "." in addr and ":" not in addr and plen.isdigit() and int(plen) <= 32:
        with contextlib.suppress(OSError):  # the usual case, a few times faster than below
            if socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, addr)) == addr:
                return f"{addr}/{int(plen)}"
    try:
        return str(ip_interface(text))
    except ValueError:
        raise ValueError(
            f"address {value} is not an IP address with a prefix length (like 10.0.0.1/24)"
        ) from None


AddressField = Annotated[str, BeforeValidator(_interface)]


class LogSpec(BaseModel):
    """rrqnet_log LEVEL TARGET: append to a file, or syslog for facility.priority."""

    model_config = ConfigDict(frozen=True)
    target: str

    @property
    def syslog(self) -> tuple[str, str] | None:
        fac, dot, pri = self.target.partition(".")
        if dot and "/" not in self.target and fac in SYSLOG_FACILITIES and pri in SYSLOG_PRIORITIES:
            return fac, pri
        return None

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        fac, dot, pri = v.partition(".")
        if "/" not in v and dot and (fac in SYSLOG_FACILITIES or pri in SYSLOG_PRIORITIES):
            if fac not in SYSLOG_FACILITIES:
                raise ValueError(f"'{fac}' is not a syslog facility (daemon, user, local0-7, ...)")
            if pri not in SYSLOG_PRIORITIES:
                raise ValueError(f"'{pri}' is not a syslog priority (err, warning, info, ...)")
            return v
        if not v.startswith("/"):
            raise ValueError(f"log target '{v}' is neither an absolute path nor facility.priority")
        return v


class DhcpSpec(BaseModel):
    """rrqnet_dhcp METHOD [ARGS]: the DHCP client run on the tap."""

    model_config = ConfigDict(frozen=True)
    method: Literal["dhclient"] = "dhclient"
    args: tuple[str, ...] = DEFAULT_DHCP_ARGS


class Cable(BaseModel):
    """A virtual cable: the engine's settings and, for managed cables, the host's."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    port: int | None = Field(default=None, ge=1, le=65535)
    local: Literal["tap", "stdio", "none"] = "tap"
    remotes: tuple[RemoteField, ...] = ()
    multicast: MulticastField | None = None
    ipv4_only: bool = False
    buffers: int | None = Field(default=None, ge=1, le=4096)
    threads: int | None = Field(default=None, ge=1, le=1024)
    tpg: bool = False
    source: IPv4Address | IPv6Address | None = None
    verbosity: int = Field(default=0, ge=0, le=3)
    freshness: float = Field(default=600.0, ge=0)
    mss_clamp: int | None = Field(default=None, ge=0, le=65495)  # 0: to what the path fits
    # host integration
    log: LogSpec | None = None
    nice: int | None = Field(default=None, ge=-20, le=19)
    bridge: str | None = None
    dhcp: DhcpSpec | None = None
    mac: MacField | None = None
    mtu: int | None = Field(default=None, ge=68, le=65521)
    addresses: tuple[AddressField, ...] = ()  # the stanza's (inet/inet6 static), conf.d's IP=
    owner: Literal["rrqctl", "networkd"] = "rrqctl"
    start: tuple[str, ...] = ()
    # provenance
    kind: Literal["interfaces", "hookenv", "networkd", "confd", "cmdline"] = "cmdline"
    origin: str | None = None
    origins: dict[str, str] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_ifname(v)

    @field_validator("bridge")
    @classmethod
    def _bridge(cls, v: str | None) -> str | None:
        return None if v is None else check_ifname(v, "bridge name")

    @model_validator(mode="before")
    @classmethod
    def _recorded_before(cls, data: Any) -> Any:
        """A cable recorded by rrqctl 0.1 (RUN/NAME.json) had one address, or none."""
        if isinstance(data, dict) and "address" in data:
            data = dict(data)
            one = data.pop("address")
            data.setdefault("addresses", [one] if one else [])
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Cable:
        if self.port is None and self.multicast is None:
            raise ValueError("a cable needs a UDP port (or at least a multicast channel)")
        if self.port is None and self.remotes:
            raise ValueError("remotes need a UDP port")
        if self.ipv4_only:
            v6 = [r.text() for r in self.remotes if r.host is None and r.ip.version == 6]
            if v6:
                raise ValueError(f"-4 (IPv4 only) excludes the IPv6 remote {v6[0]}")
            if self.source is not None and self.source.version == 6:
                raise ValueError(f"-4 (IPv4 only) excludes the IPv6 source {self.source}")
        if self.local != "tap" and (
            self.bridge or self.dhcp or self.mac or self.mtu or self.addresses
        ):
            raise ValueError("bridge, dhcp, mac, mtu and addresses need a tap (not notap)")
        return self

    @property
    def tap(self) -> str | None:
        return self.name if self.local == "tap" else None

    @property
    def uplinks(self) -> tuple[Remote, ...]:
        return tuple(r for r in self.remotes if r.is_uplink)

    def rrqnet_argv(self) -> list[str]:
        """The equivalent rrqnet(8) command line (options in their fixed order)."""
        argv = ["rrqnet"]
        if self.verbosity:
            argv.append("-" + "v" * self.verbosity)
        if self.tpg:
            argv.append("-tpg")
        if self.ipv4_only:
            argv.append("-4")
        if self.buffers is not None:
            argv += ["-B", str(self.buffers)]
        if self.threads is not None:
            argv += ["-T", str(self.threads)]
        if self.multicast is not None:
            argv += ["-m", self.multicast.text()]
        if self.local == "tap":
            argv += ["-t", self.name]
        elif self.local == "stdio":
            argv += ["-t", "-"]
        if self.source is not None:
            argv += ["-S", str(self.source)]
        if self.port is not None:
            argv.append(str(self.port))
        for r in self.remotes:
            argv += r.argv()
        return argv

    def engine_settings(self) -> EngineSettings:
        """What the engine needs, without the model (see engine/settings.py)."""
        return EngineSettings.from_json(self.model_dump(mode="json"))

    def where(self, field: str) -> str | None:
        """FILE:LINE a field's value came from, else where the cable was declared."""
        return self.origins.get(field) or self.origin


def build_cable(values: Mapping[str, Any], origins: Mapping[str, Location] | None = None) -> Cable:
    """Validate raw values into a Cable; every problem becomes FILE:LINE: message."""
    origins = dict(origins or {})
    try:
        texts = {at: str(at) for at in set(origins.values())}  # (a line sets a field or two)
        recorded = {k: texts[v] for k, v in origins.items()}
        return Cable.model_validate({**values, "origins": recorded})
    except ValidationError as e:
        raise ConfigError(_issues(e, origins, values)) from None


def _issues(
    e: ValidationError, origins: Mapping[str, Location], values: Mapping[str, Any]
) -> list[Issue]:
    issues = []
    for err in e.errors(include_url=False):
        loc = err["loc"]
        key = _origin_key(loc)
        where = origins.get(key) or origins.get(str(loc[0]) if loc else "") or origins.get("")
        msg = err["msg"].removeprefix("Value error, ")
        if loc and err["type"] not in ("value_error",):
            msg = f"{_field_label(loc)}: {msg}"
        issues.append(Issue(where, msg))
    return issues


def _origin_key(loc: tuple[int | str, ...]) -> str:
    if len(loc) >= 2 and isinstance(loc[1], int):
        return f"{loc[0]}[{loc[1]}]"
    return str(loc[0]) if loc else ""


FIELD_LABELS = {
    "port": "port",
    "buffers": "-B",
    "threads": "-T",
    "nice": "nice",
    "mtu": "mtu",
    "verbosity": "log level",
    "freshness": "freshness",
    "mss_clamp": "mss clamp",
}


def _field_label(loc: tuple[int | str, ...]) -> str:
    return FIELD_LABELS.get(str(loc[0]), str(loc[0]))


def check_cables(cables: Iterable[Cable]) -> list[Issue]:
    """Checks across cables: a UDP port serves one cable only."""
    issues = []
    seen: dict[int, Cable] = {}
    for c in cables:
        if c.port is None:
            continue
        other = seen.get(c.port)
        if other is not None:
            where = c.where("port")
            issues.append(
                Issue(
                    Location.parse(where) if where else None,
                    f"UDP port {c.port} is already used by cable {other.name} "
                    f"({other.where('port')})",
                )
            )
        else:
            seen[c.port] = c
    return issues
