"""All the places a cable can be declared, read into validated Cables.

A file's syntax errors, a cable's option errors, clashes between cables and unusable key
files are all collected (each FILE:LINE: message) before anything on the host changes.
A cable whose declaration has errors is 'broken': asking for it raises them all.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rrqctl.config import confd, eni, hookenv, networkd
from rrqctl.config.cables import Found, cable_from_settings, loc_of
from rrqctl.config.hookenv import HookCall
from rrqctl.config.keyfiles import check_keyfiles, stat_of_path
from rrqctl.config.options import (
    MARKER,
    OptionSpec,
    Setting,
    did_you_mean,
    normalize,
)
from rrqctl.errors import ConfigError, Issue, Location, NotRunningError

if TYPE_CHECKING:  # the model (and pydantic, ~0.2 s) is loaded only once there is a cable
    from rrqctl.model import Cable

DEFAULT_INTERFACES = "/etc/network/interfaces"
DEFAULT_CONFD = "/etc/rrqnet/conf.d"


@dataclass(frozen=True)
class Sources:
    interfaces: str = DEFAULT_INTERFACES
    networkd_dirs: tuple[str, ...] = networkd.SEARCH_PATH
    confd: str = DEFAULT_CONFD
    # named by the admin (not the defaults): one that is not there is an error
    interfaces_given: bool = False
    confd_given: bool = False
    networkd_given: bool = False


@dataclass
class Config:
    cables: dict[str, Cable] = field(default_factory=dict)
    broken: dict[str, list[Issue]] = field(default_factory=dict)
    warnings: list[Issue] = field(default_factory=list)
    interfaces: eni.Interfaces | None = None
    file_issues: list[Issue] = field(default_factory=list)  # interfaces(5) syntax errors
    kinds: dict[str, str] = field(default_factory=dict)
    unreadable: list[Issue] = field(default_factory=list)  # files or folders not read at all
    aliases: dict[str, str] = field(default_factory=dict)  # conf.d file name -> its TAP=

    @property
    def names(self) -> list[str]:
        return sorted(set(self.cables) | set(self.broken))

    @property
    def errors(self) -> list[Issue]:
        return self.file_issues + [i for issues in self.broken.values() for i in issues]

    def issues_of(self, name: str) -> list[Issue]:
        """What stops name: its own errors, and its file's if ifupdown cannot read that file."""
        blocking = self.file_issues if self.kinds.get(name) == "interfaces" else []
        return blocking + self.broken.get(name, [])

    def canonical(self, name: str) -> str:
        """name, or the TAP= of conf.d/name.conf (rrqnet-cron names a cable by its file)."""
        return self.aliases[name] if name not in self.kinds and name in self.aliases else name

    def get(self, name: str) -> Cable:
        """The cable called name (or declared in conf.d/name.conf, as rrqnet-cron names it)."""
        name = self.canonical(name)
        issues = self.issues_of(name)
        if issues:
            raise ConfigError(issues)
        if name not in self.cables:
            if self.unreadable:  # it may be declared there: "not a cable" would be a guess
                not_read = "not declared in what could be read"
                raise ConfigError([*self.unreadable, Issue(None, f"{name}: {not_read}")])
            raise UnknownCableError(name, self.names)
        return self.cables[name]


def _not_a_dir(path: str) -> str:
    """Why path cannot be read as a folder of declarations ("" if it can be)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "cannot read: no such directory"
    except OSError as e:
        return f"cannot read: {e.strerror}"
    return "" if stat.S_ISDIR(st.st_mode) else "cannot read: not a directory"


class UnknownCableError(NotRunningError):
    def __init__(self, name: str, known: list[str]) -> None:
        hint = f" (known: {', '.join(known)})" if known else " (no cables are declared)"
        super().__init__(f"{name} is not an rrqnet cable{hint}")


def load(src: Sources) -> Config:
    """Every cable declared in src, and what is wrong with the others. Linear in the size of
    the configuration (tens of thousands of stanzas in a second or two)."""
    with _no_gc():
        return _load(src)


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Reading makes many objects and no cycles worth collecting: the cyclic collector, run
    every few hundred allocations, would scan the growing heap again and again (40 % of the
    time of a big file). What was read is frozen out of its reach after."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


def _load(src: Sources) -> Config:
    cfg = Config()
    declared: dict[str, list[tuple[Cable | None, Location]]] = {}
    for name, cable, found, where in _all(src, cfg):
        issues: list[Issue] = []
        for i in found:
            (cfg.warnings if i.warning else issues).append(i)
        declared.setdefault(name, []).append((cable, where))
        cfg.kinds.setdefault(name, cable.kind if cable is not None else _kind_of(where, src))
        if issues:
            cfg.broken.setdefault(name, []).extend(issues)
        elif cable is not None:
            cfg.cables[name] = cable
    for name, places in declared.items():
        if len(places) > 1:
            first, second = places[0][1], places[1][1]
            cfg.broken.setdefault(name, []).append(
                Issue(second, f"{name} is declared twice: here and at {first}")
            )
            cfg.cables.pop(name, None)
    if cfg.cables:
        _drop_clashing(cfg)
    stat_of = functools.cache(stat_of_path)  # one key file, many cables: looked at once
    for c in list(cfg.cables.values()):
        errors, warnings = check_keyfiles(c, stat_of)
        cfg.warnings += warnings
        if errors:
            cfg.broken.setdefault(c.name, []).extend(errors)
            del cfg.cables[c.name]
    return cfg


def _drop_clashing(cfg: Config) -> None:
    """Cables that clash with another (the same port, say) are broken."""
    from rrqctl.model import check_cables

    for issue in check_cables(cfg.cables.values()):
        for c in list(cfg.cables.values()):
            if issue.location is not None and str(issue.location) == c.where("port"):
                cfg.broken.setdefault(c.name, []).append(issue)
                del cfg.cables[c.name]


def _kind_of(where: Location, src: Sources) -> str:
    if where.file.startswith(src.confd.rstrip("/") + "/"):
        return "confd"
    if where.file.endswith((".netdev", ".conf")) and "/" in where.file:
        return "networkd"
    return "interfaces"


def _all(src: Sources, cfg: Config) -> Iterable[Found]:
    if os.path.lexists(src.interfaces) or src.interfaces_given:
        cfg.interfaces = eni.read(src.interfaces)
        cfg.file_issues = list(cfg.interfaces.issues)
        cfg.unreadable += cfg.interfaces.unreadable
        cfg.warnings += cfg.interfaces.warnings
        yield from interfaces_cables(cfg.interfaces)
    named = [*(src.networkd_dirs if src.networkd_given else ()), *([src.confd] * src.confd_given)]
    cfg.unreadable += [Issue(Location(d), why) for d in named if (why := _not_a_dir(d))]
    names, unread = networkd.netdev_names(src.networkd_dirs)
    cfg.unreadable += unread
    for file_name in names:
        nd = networkd.read_netdev(file_name, src.networkd_dirs)
        if nd is not None and nd.unreadable and not nd.is_cable:
            cfg.unreadable += nd.unreadable  # (it may or may not declare a cable)
        elif nd is not None and nd.is_cable:  # (one it cannot read all of is broken)
            yield networkd_cable(nd, file_name, src.networkd_dirs)
        elif nd is not None:
            cfg.warnings += nd.near_misses()
    for f in _listdir(src.confd, cfg):
        if f.endswith(".conf"):
            found = confd_cable(os.path.join(src.confd, f))
            if found[0] != f.removesuffix(".conf"):
                cfg.aliases[f.removesuffix(".conf")] = found[0]
            yield found


def _listdir(path: str, cfg: Config) -> list[str]:
    try:
        return sorted(os.listdir(path)) if os.path.isdir(path) else []
    except OSError as e:
        cfg.unreadable.append(Issue(Location(path), f"cannot read: {e.strerror}"))
        return []


# ---- /etc/network/interfaces -------------------------------------------------------


def interfaces_cables(ifs: eni.Interfaces) -> Iterable[Found]:
    templates = {i.inherits for i in ifs.ifaces if i.inherits}
    for name in ifs.names():
        settings = [s for s in ifs.options(name) if normalize(s.name).startswith("rrqnet_")]
        if not settings:
            continue
        if name in templates and not any(normalize(s.name) == MARKER for s in settings):
            continue  # a template: its options count where it is inherited
        where = ifs.stanzas(name)[0].loc
        extra: dict[str, object] = {"start": tuple(ifs.classes(name))}
        addresses, ignored = ifs.static_addresses(name)
        if addresses:
            extra["addresses"] = tuple(a for a, _ in addresses)
        places = {f"addresses[{i}]": at for i, (_, at) in enumerate(addresses) if at}
        cable, issues = cable_from_settings(
            name, settings, where, "interfaces", extra=extra, places=places
        )
        yield name, cable, issues + ignored, where


def hook_cable(call: HookCall, src: Sources, *, warn: bool = True) -> Cable:
    """The cable ifup is bringing up. Declared under its name in the interfaces file: as the
    file declares it, all its stanzas together (as `rrqctl show` and `check` see it), but
    its addresses, which are ifup's to give. Else (ifup -i FILE, a mapping's logical name):
    from ifupdown's environment, checked as `rrqctl up` checks. warn: say the warnings (once
    for an ifup: in pre-up)."""
    cfg = load(src)
    ifs = cfg.interfaces
    if ifs is not None and ifs.stanzas(call.iface):
        if call.iface in cfg.broken:
            raise ConfigError(cfg.broken[call.iface])  # as rrqctl show says (two stanzas, say)
        declared = cfg.cables.get(call.iface)
        if declared is not None and declared.kind == "interfaces":
            if warn:  # (what show says of these stanzas: remotes, key files, addresses)
                lines = ifs.lines_of(call.iface)
                _say([w for w in cfg.warnings if w.location in lines])
            return declared.model_copy(update={"addresses": ()})
    cable, issues = _env_cable(call, cfg)
    if cable is None:
        raise ConfigError(issues)
    errors, warnings = check_keyfiles(cable)
    for other in cfg.cables.values():
        if other.name != cable.name and other.port is not None and other.port == cable.port:
            errors.append(
                Issue(
                    loc_of(cable.where("port")),
                    f"UDP port {cable.port} is already used by cable {other.name} "
                    f"({other.where('port')})",
                )
            )
    if errors:
        raise ConfigError(errors)
    if warn:
        _say(issues + warnings)
    classes = tuple(ifs.classes(call.iface)) if ifs is not None else ()
    return cable.model_copy(update={"start": classes})


def _say(warnings: list[Issue]) -> None:
    for w in warnings:
        print(f"rrqctl: {w}", file=sys.stderr)


def _env_cable(call: HookCall, cfg: Config) -> tuple[Cable | None, list[Issue]]:
    ifs = cfg.interfaces
    written = ifs.options(call.iface) if ifs is not None else []
    settings = list(hookenv.locate(call.settings, written))
    stanzas = ifs.stanzas(call.iface) if ifs is not None else []
    where = stanzas[0].loc if stanzas else Location(f"{call.iface} (ifupdown's environment)")
    return cable_from_settings(call.iface, settings, where, "interfaces")


def stray_settings(call: HookCall, src: Sources) -> None:
    """A stanza with rrqnet_* options and no rrqnet_port (ifup runs the hook for it): fine if
    another stanza of the same interface makes it a cable; else what is wrong, as an error."""
    cfg = load(src)
    if call.iface in cfg.cables and cfg.kinds.get(call.iface) == "interfaces":
        return
    issues = cfg.broken.get(call.iface) or _env_cable(call, cfg)[1]
    raise ConfigError(issues or f"{call.iface}: rrqnet_* options without rrqnet_port")


# ---- systemd-networkd --------------------------------------------------------------


def networkd_cable(nd: networkd.Netdev, file_name: str, dirs: tuple[str, ...]) -> Found:
    name_e = nd.get("NetDev", "Name")
    kind_e = nd.get("NetDev", "Kind")
    where = name_e.loc if name_e else Location(nd.file)
    name = name_e.value if name_e else file_name.removesuffix(".netdev")
    if nd.issues:  # a file networkd cannot read says only that
        return name, None, list(nd.issues), where
    issues: list[Issue] = []
    if kind_e is None or kind_e.value != "tap":
        issues.append(
            Issue(
                kind_e.loc if kind_e else where, f"[{networkd.SECTION}] needs Kind=tap in [NetDev]"
            )
        )
    settings, more = networkd.settings(nd)
    issues += more
    extra: dict[str, object] = {"owner": "networkd"}
    places: dict[str, Location] = {}
    net = networkd.network_for(name, dirs)
    for e, field_name in (
        (nd.get("NetDev", "MACAddress"), "mac"),
        (nd.get("NetDev", "MTUBytes"), "mtu"),
        (net.get("Bridge"), "bridge"),
    ):
        if e is not None:
            extra[field_name] = e.value
            places[field_name] = e.loc
    if not settings and not issues:
        at = nd.rrqnet[0].loc if nd.rrqnet else Location(nd.file)
        issues.append(Issue(at, f"[{networkd.SECTION}] has no Port="))
    cable = None
    if not issues:
        cable, issues = cable_from_settings(
            name, settings, where, "networkd", label=_networkd_label, extra=extra, places=places
        )
    return name, cable, issues + nd.near_misses(), where


def _networkd_label(o: OptionSpec) -> str:
    return f"{o.networkd}="


# ---- rrqnet-cron conf.d --------------------------------------------------------------

CONFD_VARS = {"PORT": "rrqnet_port", "MAC": "rrqnet_mac", "BR": "rrqnet_bridge"}


def confd_cable(path: str) -> Found:
    base = os.path.basename(path).removesuffix(".conf")
    where = Location(path)
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            assignments, issues = confd.parse(f.read(), path)
    except OSError as e:
        return base, None, [Issue(where, f"cannot read: {e.strerror}")], where
    by_name = {a.name: a for a in assignments}
    tap = by_name.get("TAP")
    name = tap.words[0] if tap and tap.words else base
    read = _ConfdValues()
    for a in assignments:
        if a.name != "TAP" and not read.take(a):
            issues.append(
                Issue(
                    a.loc,
                    f"unknown variable {a.name} (a conf.d file sets "
                    f"{' '.join(confd.KNOWN)})" + did_you_mean(a.name, confd.KNOWN),
                    warning=True,
                )
            )
    if "PORT" not in by_name and not issues:
        issues.append(Issue(where, "PORT is not set"))
    cable = None
    warnings = [i for i in issues if i.warning]
    errors = [i for i in issues if not i.warning]
    if not errors:
        cable, errors = cable_from_settings(
            name,
            read.settings,
            where,
            "confd",
            label=_confd_label,
            extra=read.extra,
            places=read.places,
        )
    return name, cable, errors + warnings, where


@dataclass
class _ConfdValues:
    """conf.d's variables as rrqnet_* settings, and the values that have no option."""

    settings: list[Setting] = field(default_factory=list)
    extra: dict[str, object] = field(default_factory=dict)
    places: dict[str, Location] = field(default_factory=dict)

    def take(self, a: confd.Assignment) -> bool:
        """Read one assignment; False if the variable is not one rrqnet-cron knows."""
        if a.name in CONFD_VARS:
            self.settings.append(Setting(CONFD_VARS[a.name], " ".join(a.words), a.loc))
        elif a.name == "VPN":
            self.settings += _vpn_remotes(a)
        elif a.name == "OPTIONS":
            opts = [w for w in a.words if w not in ("-v", "-vv", "-vvv")]
            if opts:
                self.settings.append(Setting("rrqnet_options", " ".join(opts), a.loc))
            verbose = [w for w in a.words if w not in opts]
            if verbose:
                self._verbosity(len(verbose[-1]) - 1, a.loc)
        elif a.name == "VERBOSE":
            self._verbosity(_verbosity(a.words[0] if a.words else ""), a.loc)
        elif a.name == "IP":
            self.extra["addresses"] = a.words
            self.places.update({f"addresses[{i}]": at for i, (_, at) in enumerate(a.word_locs())})
        elif a.name == "LOG":
            self.settings.append(Setting("rrqnet_log", " ".join(a.words), a.loc))
        else:
            return False
        return True

    def _verbosity(self, level: int, loc: Location) -> None:
        self.extra["verbosity"] = level
        self.places["verbosity"] = loc


def _vpn_remotes(a: confd.Assignment) -> list[Setting]:
    """VPN=( remote [-i MAC,...] ... ): rrqnet-cron passes the words to rrqnet as they are,
    so '-i MACS' belongs to the remote before it."""
    out: list[Setting] = []
    words = a.word_locs()
    for i, (w, loc) in enumerate(words):
        if i and words[i - 1][0] == "-i" and out:
            continue  # (taken with the -i before it)
        if w == "-i" and out and i + 1 < len(words):
            last = out[-1]
            out[-1] = Setting(last.name, f"{last.value} -i {words[i + 1][0]}", last.loc)
        else:
            out.append(Setting("rrqnet_remote", w, loc))
    return out


def _confd_label(o: OptionSpec) -> str:
    names = {v: k for k, v in CONFD_VARS.items()} | {
        "rrqnet_remote": "VPN",
        "rrqnet_options": "OPTIONS",
        "rrqnet_log": "LOG",
    }
    return names.get(o.name, o.name)


def _verbosity(word: str) -> int:
    if word in ("-v", "-vv", "-vvv"):
        return len(word) - 1
    return 1 if word.lower() in ("1", "yes", "true", "on") else 0
