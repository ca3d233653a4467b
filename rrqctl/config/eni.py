"""/etc/network/interfaces, as interfaces(5) and ifupdown 0.8 read it. Parsed, never run.

Stanzas: iface (with inherits), mapping (script and map lines, recorded only), auto,
allow-CLASS, rename, no-auto-down, no-scripts, source (globs), source-directory (file
names matching ^[a-zA-Z0-9_-]+$). Comments are whole lines; a trailing backslash
continues a line. Missing sourced files are skipped, as ifupdown does (with a warning when
a name, not a pattern, finds nothing).
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from rrqctl.config.options import Setting
from rrqctl.errors import Issue, Location

RUN_PARTS_NAME = re.compile(r"^[a-zA-Z0-9_-]+$")
LIST_KEYWORDS = ("auto", "rename", "no-auto-down", "no-scripts")
# inet/inet6 static options ifup applies and `rrqctl up` does not (it gives address/netmask)
IFUP_ONLY = ("gateway", "pointopoint", "metric", "hwaddress", "scope", "mtu", "broadcast")


@dataclass(slots=True)
class Iface:
    name: str
    family: str | None
    method: str | None
    loc: Location
    inherits: str | None = None
    options: list[Setting] = field(default_factory=list)


@dataclass
class Mapping:
    patterns: list[str]
    loc: Location
    script: str | None = None
    maps: list[str] = field(default_factory=list)


@dataclass
class Interfaces:
    ifaces: list[Iface] = field(default_factory=list)
    mappings: list[Mapping] = field(default_factory=list)
    # class ('auto' for auto and allow-auto, 'hotplug', ...) -> [(name or pattern, where)]
    allow: dict[str, list[tuple[str, Location]]] = field(default_factory=dict)
    lists: dict[str, list[tuple[str, Location]]] = field(default_factory=dict)  # rename, no-*
    files: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    unreadable: list[Issue] = field(default_factory=list)  # files not read at all (also issues)
    warnings: list[Issue] = field(default_factory=list)
    # indexes, made on first use once reading is done: every lookup by name is then O(1)
    _by_name: dict[str, list[Iface]] | None = field(default=None, repr=False, compare=False)
    _classes: dict[str, list[str]] | None = field(default=None, repr=False, compare=False)
    _patterns: list[tuple[str, str]] = field(default_factory=list, repr=False, compare=False)

    def names(self) -> list[str]:
        return list(self._stanzas_by_name())

    def _stanzas_by_name(self) -> dict[str, list[Iface]]:
        if self._by_name is None:
            self._by_name = {}
            for i in self.ifaces:
                self._by_name.setdefault(i.name, []).append(i)
        return self._by_name

    def stanzas(self, name: str) -> list[Iface]:
        return self._stanzas_by_name().get(name, [])

    def options(self, name: str) -> list[Setting]:
        """All options for name: inherited ones first, then each stanza's own, in file order."""
        stanzas = self.stanzas(name)
        if len(stanzas) == 1 and stanzas[0].inherits is None:
            return stanzas[0].options  # the usual case (the caller only reads it)
        out: list[Setting] = []
        for stanza in stanzas:
            out += self._inherited(stanza, {name})
            out += stanza.options
        return out

    def static_addresses(self, name: str) -> tuple[list[tuple[str, Location | None]], list[Issue]]:
        """The addresses ifup (0.8) gives name, each with where it is written: the first
        `address` of each inet/inet6 static stanza (its own or inherited), its `netmask` if
        there is one (over a /prefix), else its /prefix, else the class's (IPv4) or /128.
        Also warnings for what ifup ignores (a second `address` in a stanza)."""
        out: list[tuple[str, Location | None]] = []
        ignored: list[Issue] = []
        for stanza in self.stanzas(name):
            if stanza.method != "static":
                continue
            options = self._inherited(stanza, {name}) + stanza.options
            netmask = next((s.value for s in reversed(options) if s.name == "netmask"), None)
            given = [s for s in options if s.name == "address"]
            if not given:
                continue
            first, more = given[0], given[1:]
            out.append((_with_prefix(first.value, netmask, stanza.family), first.loc))
            ignored += [
                Issue(
                    s.loc,
                    f"ifup gives a stanza its first address only: {s.value} is not given "
                    "(an address of its own needs an 'iface ... static' stanza of its own)",
                    warning=True,
                )
                for s in more
            ]
        return out, ignored

    def lines_of(self, name: str) -> set[Location]:
        """Where name's stanzas are written: their iface lines and their options'."""
        out = {st.loc for st in self.stanzas(name)}
        out.update(o.loc for st in self.stanzas(name) for o in st.options if o.loc is not None)
        return out

    def ifup_only(self, name: str) -> list[Issue]:
        """Warnings for what ifup gives name and `rrqctl up` does not (when it brings the
        cable up itself): methods but static and manual, and static options but addresses."""
        out: list[Issue] = []
        for stanza in self.stanzas(name):
            if stanza.method not in ("static", "manual", None):
                said = (
                    f"rrqctl up does not run the {stanza.family} {stanza.method} method (ifup does)"
                )
                out.append(Issue(stanza.loc, said, warning=True))
            if stanza.method != "static":
                continue
            for s in self._inherited(stanza, {name}) + stanza.options:
                if s.name in IFUP_ONLY:
                    said = f"rrqctl up does not set {s.name} (ifup does)"
                    out.append(Issue(s.loc, said, warning=True))
        return out

    def _inherited(self, stanza: Iface, seen: set[str]) -> list[Setting]:
        parent = stanza.inherits
        if parent is None or parent in seen:
            return []
        out: list[Setting] = []
        for p in self.stanzas(parent):
            out += self._inherited(p, seen | {parent})
            out += p.options
        return out

    def classes(self, name: str) -> list[str]:
        """The allow- classes that name (or a pattern matching it) is listed in."""
        from fnmatch import fnmatchcase

        if self._classes is None:  # made once: names as listed, and the patterns apart
            self._classes, self._patterns = {}, []
            for cls, entries in self.allow.items():
                for entry, _ in entries:
                    pattern = entry.partition("=")[0]
                    if pattern.startswith("/"):
                        self._patterns.append((cls, pattern[1:]))
                    listed = self._classes.setdefault(entry, [])
                    if cls not in listed:
                        listed.append(cls)  # (in the order of self.allow, as the loop goes)
        listed = self._classes.get(name, [])
        if not self._patterns:
            return list(listed)
        found = set(listed)
        found.update(cls for cls, p in self._patterns if fnmatchcase(name, p))
        return [cls for cls in self.allow if cls in found]


class _Reader:
    """One pass over a file and what it sources; appends to `into`."""

    _handlers: ClassVar[dict[str, Callable[[_Reader, Location, list[str]], None]]]

    def __init__(self, into: Interfaces) -> None:
        self.out = into
        self.current: Iface | Mapping | None = None

    def read_file(self, path: str, via: Location | None = None) -> None:
        path = os.path.normpath(path)
        if path in self.out.files:
            self.out.issues.append(Issue(via, f"{path} is already read (a source loop)"))
            return
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                text = f.read()
        except OSError as e:
            said = f"cannot read {path}: {e.strerror}" if via else f"cannot read: {e.strerror}"
            issue = Issue(via or Location(path), said)
            self.out.issues.append(issue)
            self.out.unreadable.append(issue)
            return
        self.out.files.append(path)
        self.current = None
        handlers = self._handlers
        for line_no, line in logical_lines(text):
            keyword, *more = line.split(None, 1)
            cur = self.current
            # the usual line, an option of an iface stanza, in fewest steps (a big file has
            # hundreds of thousands); anything else goes by line()
            if more and isinstance(cur, Iface) and keyword not in handlers:
                value = more[0].strip()
                if value and keyword not in LIST_KEYWORDS and not keyword.startswith("allow-"):
                    cur.options.append(Setting(keyword, value, Location(path, line_no)))
                    continue
            self.line(Location(path, line_no), line)
        self.current = None

    def line(self, loc: Location, line: str) -> None:
        keyword, *more = line.split(None, 1)
        rest = more[0] if more else ""
        handler = self._handlers.get(keyword)
        if handler is not None:
            handler(self, loc, rest.split())
        elif keyword in LIST_KEYWORDS or keyword.startswith("allow-"):
            self._list(loc, keyword, rest.split())
        else:
            self._option(loc, keyword, rest.strip())

    def _iface(self, loc: Location, args: list[str]) -> None:
        inherits = None
        if "inherits" in args:
            i = args.index("inherits")
            if i + 1 >= len(args):
                self.out.issues.append(Issue(loc, "inherits needs the name of a template stanza"))
                self.current = None
                return
            inherits = args[i + 1]
            args = args[:i] + args[i + 2 :]
        if not args or (len(args) < 3 and inherits is None) or len(args) > 3:
            self.out.issues.append(
                Issue(loc, "want 'iface NAME FAMILY METHOD' (or 'iface NAME inherits TEMPLATE')")
            )
            self.current = None
            return
        family, method = [*args[1:], None, None][:2]
        self.current = Iface(args[0], family, method, loc, inherits)
        self.out.ifaces.append(self.current)

    def _mapping(self, loc: Location, args: list[str]) -> None:
        if not args:
            self.out.issues.append(Issue(loc, "mapping needs at least one interface pattern"))
        self.current = Mapping(args, loc)
        self.out.mappings.append(self.current)

    def _list(self, loc: Location, keyword: str, names: list[str]) -> None:
        self.current = None
        if not names:
            self.out.issues.append(Issue(loc, f"{keyword} needs at least one interface name"))
        if keyword in ("auto", "allow-auto") or keyword.startswith("allow-"):
            cls = "auto" if keyword in ("auto", "allow-auto") else keyword.removeprefix("allow-")
            entries = self.out.allow.setdefault(cls, [])
        else:
            entries = self.out.lists.setdefault(keyword, [])
        for n in names:
            entries.append((n, loc))

    def _option(self, loc: Location, name: str, value: str) -> None:
        cur = self.current
        if cur is None:
            self.out.issues.append(
                Issue(loc, "misplaced option (outside an iface or mapping stanza)")
            )
        elif not value:
            self.out.issues.append(Issue(loc, "option with empty value"))
        elif isinstance(cur, Mapping):
            if name == "script":
                cur.script = value
            elif name == "map":
                cur.maps.append(value)
            else:
                self.out.issues.append(
                    Issue(loc, f"'{name}' in a mapping stanza (want script or map)")
                )
        else:
            cur.options.append(Setting(name, value, loc))

    def _paths(self, loc: Location, pattern: str) -> list[str]:
        return sorted(glob.glob(self._paths_pattern(loc, pattern)))

    def _paths_pattern(self, loc: Location, pattern: str) -> str:
        """pattern, relative to the file it is written in."""
        return (
            pattern if os.path.isabs(pattern) else os.path.join(os.path.dirname(loc.file), pattern)
        )

    def _source(self, loc: Location, args: list[str]) -> None:
        self.current = None
        if len(args) != 1:
            self.out.issues.append(Issue(loc, "source needs one path (shell wildcards allowed)"))
            return
        paths = self._paths(loc, args[0])
        for path in paths:
            if os.path.isfile(path):
                self.read_file(path, loc)
        if not glob.has_magic(args[0]):  # a name, not a pattern: it was meant to be there
            self._missing(loc, "source", args[0], paths, os.path.isfile)
        elif not paths:  # a pattern in a folder that cannot be listed matches nothing, quietly
            folder = os.path.dirname(self._paths_pattern(loc, args[0]))
            if os.path.isdir(folder) and not os.access(folder, os.R_OK | os.X_OK):
                issue = Issue(loc, f"cannot read {folder}: Permission denied")
                self.out.issues.append(issue)
                self.out.unreadable.append(issue)

    def _source_directory(self, loc: Location, args: list[str]) -> None:
        self.current = None
        if len(args) != 1:
            self.out.issues.append(Issue(loc, "source-directory needs one directory"))
            return
        dirs = self._paths(loc, args[0])
        if not glob.has_magic(args[0]):
            self._missing(loc, "source-directory", args[0], dirs, os.path.isdir)
        for d in dirs:
            try:
                names = sorted(os.listdir(d)) if os.path.isdir(d) else []
            except OSError as e:
                issue = Issue(loc, f"cannot read {d}: {e.strerror}")
                self.out.issues.append(issue)
                self.out.unreadable.append(issue)
                continue
            for name in names:
                path = os.path.join(d, name)
                if RUN_PARTS_NAME.match(name) and os.path.isfile(path):
                    self.read_file(path, loc)

    def _missing(
        self, loc: Location, keyword: str, name: str, found: list[str], fits: Callable[[str], bool]
    ) -> None:
        """A warning for a source(-directory) that reads nothing (ifupdown skips it too)."""
        if found and fits(found[0]):
            return
        if not found:
            said = f"{keyword} {name}: no such file or directory (skipped, as ifupdown does)"
        elif keyword == "source":
            said = f"source {name} is a directory: 'source-directory {name}' reads its files"
        else:
            said = f"source-directory {name} is not a directory: 'source {name}' reads a file"
        self.out.warnings.append(Issue(loc, said, warning=True))


_Reader._handlers = {
    "iface": _Reader._iface,
    "mapping": _Reader._mapping,
    "source": _Reader._source,
    "source-directory": _Reader._source_directory,
}


def logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) of each non-blank, non-comment line, continuations joined."""
    if "\\" not in text:  # no continuation anywhere: the common case, in one pass
        return [
            (n, raw)
            for n, raw in enumerate(text.splitlines(), start=1)
            if (s := raw.lstrip()) and s[0] != "#"
        ]
    out: list[tuple[int, str]] = []
    buf: str | None = None
    start = 0
    for n, raw in enumerate(text.splitlines(), start=1):
        if buf is None:
            if not raw.strip() or raw.lstrip().startswith("#"):
                continue
            buf, start = "", n
        if raw.endswith("\\"):
            buf += raw[:-1]
            continue
        if (buf + raw).strip():  # a continuation into a blank line leaves nothing to read
            out.append((start, buf + raw))
        buf = None
    if buf is not None and buf.strip():
        out.append((start, buf))
    return out


def read(path: str) -> Interfaces:
    """Parse path and everything it sources; problems are in .issues, never raised."""
    out = Interfaces()
    _Reader(out).read_file(path)
    return out


def parse_text(text: str, path: str = "interfaces") -> Interfaces:
    """Parse text as if it were the file at path (sources resolve relative to it)."""
    out = Interfaces()
    reader = _Reader(out)
    out.files.append(os.path.normpath(path))
    for line_no, line in logical_lines(text):
        reader.line(Location(path, line_no), line)
    return out


def _with_prefix(address: str, netmask: str | None, family: str | None) -> str:
    """address as ifup 0.8 gives it: ADDRESS/PREFIX (what the model checks)."""
    host = address.partition("/")[0]
    if netmask is not None:
        return f"{host}/{netmask}"
    if "/" in address:
        return address
    if family == "inet6" or ":" in host:
        return f"{host}/128"
    first = host.split(".")[0]
    octet = int(first) if first.isdigit() else 0
    classful = 8 if octet < 128 else 16 if octet < 192 else 24 if octet < 224 else 32
    return f"{host}/{classful}"
