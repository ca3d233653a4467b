"""systemd-networkd cables: NAME.netdev with Kind=tap and an [X-RRQNet] section.

Files are found as networkd finds them: the search path (/etc, /run, /usr/local/lib,
/usr/lib), a same-named file in an earlier directory wins, a symlink to /dev/null (or an
empty file) masks, and NAME.netdev.d/*.conf drop-ins apply in lexical order of their names.
networkd owns the tap, its MAC/MTU, the bridge and DHCP ([NetDev] and .network files);
[X-RRQNet] holds only the tunnel:

    [X-RRQNet]
    Port=3636            NoTap=no
    Remote=10.0.0.2:3636=/etc/rrqnet/keys/mynet0.key     (repeatable; empty resets)
    Options=-4 -B 10     Multicast=239.1.2.3:2000         Log=-v daemon.info
    Nice=-5              Freshness=600
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field

from rrqctl.config.options import Setting, did_you_mean
from rrqctl.errors import Issue, Location

SEARCH_PATH = (
    "/etc/systemd/network",
    "/run/systemd/network",
    "/usr/local/lib/systemd/network",
    "/usr/lib/systemd/network",
)
SECTION = "X-RRQNet"
KEYS = {
    "Port": "rrqnet_port",
    "Remote": "rrqnet_remote",
    "Options": "rrqnet_options",
    "Log": "rrqnet_log",
    "Nice": "rrqnet_nice",
    "Freshness": "rrqnet_freshness",
    "Multicast": "rrqnet_multicast",
    "NoTap": "",
}
OWNED_BY_NETWORKD = {
    "Bridge": "Bridge= in the [Network] section of a .network file",
    "DHCP": "DHCP= in the [Network] section of a .network file",
    "MACAddress": "MACAddress= in [NetDev]",
    "MTUBytes": "MTUBytes= in [NetDev]",
}
TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
FALSE = frozenset({"0", "no", "n", "false", "f", "off"})


@dataclass(frozen=True)
class Entry:
    section: str
    key: str
    value: str
    loc: Location


def parse_ini(text: str, path: str) -> tuple[list[Entry], list[Issue], dict[str, Location]]:
    """systemd.syntax(7): [Section] headers, Key=Value, # and ; comments, \\ continuations.
    Sections: each name and where it first appears."""
    entries: list[Entry] = []
    issues: list[Issue] = []
    sections: dict[str, Location] = {}
    section = ""
    pending = ""
    start = 0
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line[0] in "#;"):
            continue
        if not pending:
            start = n
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        loc = Location(path, start)
        if line.startswith("["):
            if not line.endswith("]") or len(line) < 3:
                issues.append(Issue(loc, f"bad section header '{line}'"))
            section = line[1:-1]
            sections.setdefault(section, loc)
        elif "=" not in line:
            issues.append(Issue(loc, f"'{line}' is not Key=Value"))
        elif not section:
            issues.append(Issue(loc, "assignment outside of any section"))
        else:
            key, _, value = line.partition("=")
            entries.append(Entry(section, key.strip(), value.strip(), loc))
    return entries, issues, sections


def _masked(path: str) -> bool:
    return os.path.realpath(path) == os.devnull or (
        os.path.isfile(path) and os.path.getsize(path) == 0
    )


def find(name: str, dirs: tuple[str, ...]) -> str | None:
    """The file named name that networkd would use, or None (absent or masked)."""
    for d in dirs:
        path = os.path.join(d, name)
        if os.path.lexists(path):
            return None if _masked(path) else path
    return None


def dropins(name: str, dirs: tuple[str, ...]) -> tuple[list[str], list[Issue]]:
    """name.d/*.conf from every directory, same-named ones from earlier dirs winning, sorted;
    and the drop-in directories that could not be listed."""
    chosen: dict[str, str] = {}
    unread: list[Issue] = []
    for d in dirs:
        dd = os.path.join(d, f"{name}.d")
        try:
            found = os.listdir(dd) if os.path.isdir(dd) else []
        except OSError as e:
            unread.append(Issue(Location(dd), f"cannot read: {e.strerror}"))
            continue
        for f in found:
            if f.endswith(".conf") and f not in chosen:
                chosen[f] = os.path.join(dd, f)
    return [chosen[f] for f in sorted(chosen) if not _masked(chosen[f])], unread


def netdev_names(dirs: tuple[str, ...]) -> tuple[list[str], list[Issue]]:
    """The .netdev file names in dirs, and the directories that could not be listed."""
    names: set[str] = set()
    unread: list[Issue] = []
    for d in dirs:
        try:
            if os.path.isdir(d):
                names.update(f for f in os.listdir(d) if f.endswith(".netdev"))
        except OSError as e:
            unread.append(Issue(Location(d), f"cannot read: {e.strerror}"))
    return sorted(names), unread


@dataclass
class Netdev:
    """One .netdev and its drop-ins, as networkd reads them."""

    file: str
    entries: list[Entry] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    sections: dict[str, Location] = field(default_factory=dict)
    unreadable: list[Issue] = field(default_factory=list)  # files of it not read (also issues)

    @property
    def is_cable(self) -> bool:
        return SECTION in self.sections or any(SECTION in i.message for i in self.issues)

    def near_misses(self) -> list[Issue]:
        """Sections surely meant as [X-RRQNet] (systemd's names are case-sensitive: networkd
        ignores them, and so does rrqctl), in the .netdev or its drop-ins."""
        ignored = "its keys are ignored" if self.is_cable else "no cable is declared"
        return [
            Issue(
                loc,
                f"[{name}] is not [{SECTION}] (section names are case-sensitive): {ignored}",
                warning=True,
            )
            for name, loc in self.sections.items()
            if name != SECTION and _squash(name) in (_squash(SECTION), "rrqnet")
        ]

    def get(self, section: str, key: str) -> Entry | None:
        found = [e for e in self.entries if e.section == section and e.key == key]
        return found[-1] if found else None

    @property
    def rrqnet(self) -> list[Entry]:
        return [e for e in self.entries if e.section == SECTION]


def _squash(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "").strip()


def read_netdev(name: str, dirs: tuple[str, ...]) -> Netdev | None:
    path = find(name, dirs)
    if path is None:
        return None
    nd = Netdev(path)
    extra, unread = dropins(name, dirs)
    nd.issues += unread
    nd.unreadable += unread
    for f in [path, *extra]:
        try:
            with open(f, encoding="utf-8", errors="surrogateescape") as fh:
                text = fh.read()
        except OSError as e:
            issue = Issue(Location(f), f"cannot read: {e.strerror}")
            nd.issues.append(issue)
            nd.unreadable.append(issue)
            continue
        entries, issues, sections = parse_ini(text, f)
        nd.entries += entries
        nd.issues += issues
        for section, loc in sections.items():
            nd.sections.setdefault(section, loc)  # (each name where it first appears)
    return nd


def settings(nd: Netdev) -> tuple[list[Setting], list[Issue]]:
    """[X-RRQNet] as rrqnet_* settings; later assignments win, an empty Remote= resets."""
    issues: list[Issue] = []
    last: dict[str, Entry] = {}
    remotes: list[Entry] = []
    for e in nd.rrqnet:
        if e.key in OWNED_BY_NETWORKD:
            issues.append(
                Issue(
                    e.loc,
                    f"{e.key}= does not belong in [{SECTION}]: networkd owns it "
                    f"(use {OWNED_BY_NETWORKD[e.key]})",
                )
            )
        elif e.key not in KEYS:
            issues.append(
                Issue(e.loc, f"unknown key {e.key}= in [{SECTION}]" + did_you_mean(e.key, KEYS))
            )
        elif e.key == "Remote":
            remotes = [] if not e.value else [*remotes, e]
        else:
            last[e.key] = e
    out: list[Setting] = []
    port = last.pop("Port", None)
    notap = last.pop("NoTap", None)
    if notap is not None and notap.value.lower() not in TRUE | FALSE:
        issues.append(Issue(notap.loc, f"NoTap= wants yes or no, not '{notap.value}'"))
    if port is not None:
        flag = "notap " if notap is not None and notap.value.lower() in TRUE else ""
        out.append(Setting("rrqnet_port", flag + port.value, port.loc))
    out += [Setting(KEYS[key], e.value, e.loc) for key, e in last.items()]
    out += [Setting("rrqnet_remote", e.value, e.loc) for e in remotes]
    return out, issues


def network_for(ifname: str, dirs: tuple[str, ...]) -> dict[str, Entry]:
    """[Network] Bridge= and DHCP= of the first .network file (lexically) matching ifname."""
    names: set[str] = set()
    for d in dirs:
        if os.path.isdir(d):
            names.update(f for f in os.listdir(d) if f.endswith(".network"))
    for n in sorted(names):
        path = find(n, dirs)
        if path is None:
            continue
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as fh:
                entries, _, _ = parse_ini(fh.read(), path)
        except OSError:
            continue  # as systemd-networkd does with a .network file it cannot read
        globs = " ".join(
            e.value for e in entries if e.section == "Match" and e.key == "Name"
        ).split()
        if globs and any(fnmatch.fnmatchcase(ifname, g) for g in globs):
            return {
                e.key: e for e in entries if e.section == "Network" and e.key in ("Bridge", "DHCP")
            }
    return {}
