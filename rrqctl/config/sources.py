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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rrqctl.config import confd, eni, hookenv, networkd
from rrqctl.config.hookenv import HookCall
from rrqctl.config.options import (
    BY_NAME,
    MARKER,
    OptionSpec,
    Setting,
    cable_values,
    did_you_mean,
    normalize,
)
from rrqctl.errors import ConfigError, Issue, Location, NotRunningError

if TYPE_CHECKING:  # the model (and pydantic, ~0.2 s) is loaded only once there is a cable
    from rrqctl.model import Cable

DEFAULT_INTERFACES = "/etc/network/interfaces"
DEFAULT_CONFD = "/etc/rrqnet/conf.d"
Label = Callable[[OptionSpec], str]


def _line(i: Issue) -> tuple[str, int]:
    return (i.location.file, i.location.line) if i.location else ("", 0)


@dataclass(frozen=True)
class Sources:
    interfaces: str = DEFAULT_INTERFACES
    networkd_dirs: tuple[str, ...] = networkd.SEARCH_PATH
    confd: str = DEFAULT_CONFD


@dataclass
class Config:
    cables: dict[str, Cable] = field(default_factory=dict)
    broken: dict[str, list[Issue]] = field(default_factory=dict)
    warnings: list[Issue] = field(default_factory=list)
    interfaces: eni.Interfaces | None = None
    file_issues: list[Issue] = field(default_factory=list)  # interfaces(5) syntax errors
    kinds: dict[str, str] = field(default_factory=dict)

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

    def get(self, name: str) -> Cable:
        issues = self.issues_of(name)
        if issues:
            raise ConfigError(issues)
        if name not in self.cables:
            raise UnknownCableError(name, self.names)
        return self.cables[name]


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
    stat_of = functools.cache(_stat)  # one key file, many cables: looked at once
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


Found = tuple[str, "Cable | None", list[Issue], Location]


def _kind_of(where: Location, src: Sources) -> str:
    if where.file.startswith(src.confd.rstrip("/") + "/"):
        return "confd"
    if where.file.endswith((".netdev", ".conf")) and "/" in where.file:
        return "networkd"
    return "interfaces"


def _all(src: Sources, cfg: Config) -> Iterable[Found]:
    if os.path.exists(src.interfaces):
        cfg.interfaces = eni.read(src.interfaces)
        cfg.file_issues = list(cfg.interfaces.issues)
        yield from interfaces_cables(cfg.interfaces)
    for nd in networkd.netdev_names(src.networkd_dirs):
        found = networkd_cable(nd, src.networkd_dirs)
        if found is not None:
            yield found
    if os.path.isdir(src.confd):
        for f in sorted(os.listdir(src.confd)):
            if f.endswith(".conf"):
                yield confd_cable(os.path.join(src.confd, f))


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
        start: dict[str, object] = {"start": tuple(ifs.classes(name))}
        cable, issues = cable_from_settings(name, settings, where, "interfaces", extra=start)
        yield name, cable, issues, where


def cable_from_settings(
    name: str,
    settings: list[Setting],
    where: Location | None,
    kind: str,
    *,
    label: Label | None = None,
    extra: dict[str, object] | None = None,
) -> tuple[Cable | None, list[Issue]]:
    """rrqnet_* settings (as written, any spelling) -> a Cable, or the issues why not."""
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
    if where is not None:
        values["origin"] = str(where)
        origins[""] = where
    try:
        return _build_cable()(values, origins), []
    except ConfigError as e:
        return None, e.issues


@functools.cache
def _build_cable() -> Callable[[dict[str, Any], dict[str, Location]], Cable]:
    """model.build_cable, imported on first use (pydantic: only once there is a cable)."""
    from rrqctl.model import build_cable

    return build_cable


def hook_cable(call: HookCall, src: Sources) -> Cable:
    """The cable ifup is bringing up, from its environment; FILE:LINE from the interfaces file
    wherever the same option and value are written there. Checked as `rrqctl up` checks."""
    cfg = load(src)
    ifs = cfg.interfaces
    written = ifs.options(call.iface) if ifs is not None else []
    settings = list(hookenv.locate(call.settings, written))
    stanzas = ifs.stanzas(call.iface) if ifs is not None else []
    where = stanzas[0].loc if stanzas else Location(f"{call.iface} (ifupdown's environment)")
    cable, issues = cable_from_settings(call.iface, settings, where, "interfaces")
    if cable is None:
        raise ConfigError(issues)
    errors, warnings = check_keyfiles(cable)
    for other in cfg.cables.values():
        if other.name != cable.name and other.port is not None and other.port == cable.port:
            errors.append(
                Issue(
                    _loc(cable.where("port")),
                    f"UDP port {cable.port} is already used by cable {other.name} "
                    f"({other.where('port')})",
                )
            )
    if errors:
        raise ConfigError(errors)
    for w in warnings:
        print(f"rrqctl: {w}", file=sys.stderr)
    classes = tuple(ifs.classes(call.iface)) if ifs is not None else ()
    return cable.model_copy(update={"start": classes})


# ---- systemd-networkd --------------------------------------------------------------


def networkd_cable(file_name: str, dirs: tuple[str, ...]) -> Found | None:
    nd = networkd.read_netdev(file_name, dirs)
    if nd is None or not nd.is_cable:
        return None
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
    for key, field_name in (("MACAddress", "mac"), ("MTUBytes", "mtu")):
        e = nd.get("NetDev", key)
        if e is not None:
            extra[field_name] = e.value
    net = networkd.network_for(name, dirs)
    if "Bridge" in net:
        extra["bridge"] = net["Bridge"].value
    if not settings and not issues:
        at = nd.rrqnet[0].loc if nd.rrqnet else Location(nd.file)
        issues.append(Issue(at, f"[{networkd.SECTION}] has no Port="))
    cable = None
    if not issues:
        cable, issues = cable_from_settings(
            name, settings, where, "networkd", label=_networkd_label, extra=extra
        )
    return name, cable, issues, where


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
    settings: list[Setting] = []
    extra: dict[str, object] = {}
    for a in assignments:
        if a.name in CONFD_VARS:
            settings.append(Setting(CONFD_VARS[a.name], " ".join(a.words), a.loc))
        elif a.name == "VPN":
            settings += [Setting("rrqnet_remote", w, loc) for w, loc in a.word_locs()]
        elif a.name == "OPTIONS":
            opts = [w for w in a.words if w not in ("-v", "-vv", "-vvv")]
            if opts:
                settings.append(Setting("rrqnet_options", " ".join(opts), a.loc))
            verbose = [w for w in a.words if w not in opts]
            if verbose:
                extra["verbosity"] = len(verbose[-1]) - 1
        elif a.name == "VERBOSE":
            extra["verbosity"] = _verbosity(a.words[0] if a.words else "")
        elif a.name == "IP":
            extra["address"] = a.words[0] if a.words else None
        elif a.name != "TAP":
            issues.append(
                Issue(
                    a.loc,
                    f"unknown variable {a.name} (rrqnet-cron reads "
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
            name, settings, where, "confd", label=_confd_label, extra=extra
        )
    return name, cable, errors + warnings, where


def _confd_label(o: OptionSpec) -> str:
    names = {v: k for k, v in CONFD_VARS.items()} | {
        "rrqnet_remote": "VPN",
        "rrqnet_options": "OPTIONS",
    }
    return names.get(o.name, o.name)


def _verbosity(word: str) -> int:
    if word in ("-v", "-vv", "-vvv"):
        return len(word) - 1
    return 1 if word.lower() in ("1", "yes", "true", "on") else 0


# ---- key files ------------------------------------------------------------------------


StatOf = Callable[[str], "os.stat_result | OSError"]


def _stat(path: str) -> os.stat_result | OSError:
    try:
        return os.stat(path)
    except OSError as e:
        return e


def check_keyfiles(cable: Cable, stat_of: StatOf = _stat) -> tuple[list[Issue], list[Issue]]:
    """Key files exist, are regular files, are neither readable nor writable by every user (a
    warning if readable by the group) and nor is their directory writable by every user."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    for i, r in enumerate(cable.remotes):
        if r.keyfile:
            where = functools.partial(cable.where, f"remotes[{i}]")
            _check_key(r.keyfile, where, errors, warnings, stat_of)
    if cable.multicast is not None and cable.multicast.keyfile:
        where = functools.partial(cable.where, "multicast")
        _check_key(cable.multicast.keyfile, where, errors, warnings, stat_of)
    return errors, warnings


def _loc(text: str | None) -> Location | None:
    return Location.parse(text) if text else None


def _check_key(
    path: str,
    where: Callable[[], str | None],
    errors: list[Issue],
    warnings: list[Issue],
    stat_of: StatOf,
) -> None:
    """(where: the FILE:LINE of the declaration, asked only if there is something to say)"""
    st = stat_of(path) if os.path.isabs(path) else None
    if isinstance(st, os.stat_result) and _key_is_fine(path, st, stat_of):
        return
    loc = _loc(where())
    if not os.path.isabs(path):
        errors.append(Issue(loc, f"key file {path} must be an absolute path"))
        return
    st = stat_of(path)
    if isinstance(st, OSError):
        errors.append(Issue(loc, f"key file {path}: {st.strerror}"))
        return
    folder = os.path.dirname(path)
    dir_st = stat_of(folder)
    open_dir = not isinstance(dir_st, OSError) and dir_st.st_mode & stat.S_IWOTH
    if not stat.S_ISREG(st.st_mode):
        errors.append(Issue(loc, f"key file {path} is not a regular file"))
    elif st.st_mode & stat.S_IWOTH:
        errors.append(Issue(loc, f"key file {path} is writable by every user (chmod o-w {path})"))
    elif open_dir and not dir_st.st_mode & stat.S_ISVTX:  # type: ignore[union-attr]
        errors.append(
            Issue(loc, f"key file {path} is in {folder}, which every user may write to")
        )
    elif st.st_mode & stat.S_IROTH:
        errors.append(Issue(loc, f"key file {path} is readable by everyone (chmod o-r {path})"))
    elif open_dir:
        warnings.append(
            Issue(loc, f"key file {path} is in {folder}, which every user may add to", warning=True)
        )
    elif st.st_mode & stat.S_IRGRP:
        warnings.append(Issue(loc, f"key file {path} is readable by its group", warning=True))
    elif st.st_size < 32:
        errors.append(Issue(loc, f"key file {path} is shorter than 32 bytes"))


def _key_is_fine(path: str, st: os.stat_result, stat_of: StatOf) -> bool:
    """The usual case, said quickly: nothing to say of this key file."""
    dir_st = stat_of(os.path.dirname(path))
    return (
        stat.S_ISREG(st.st_mode)
        and not st.st_mode & (stat.S_IRWXO | stat.S_IRGRP)
        and st.st_size >= 32
        and isinstance(dir_st, os.stat_result)
        and not dir_st.st_mode & stat.S_IWOTH
    )
