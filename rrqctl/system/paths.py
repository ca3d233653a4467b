"""Where a cable's runtime files live: RUN/NAME.{pid,sock,json}, dhclient's files, the lock.

RUN is /run/rrqnet on the host, and /run/rrqnet/netns/NAME inside a network namespace that
`ip netns` named NAME (or /run/rrqnet/netns/ID, its inode number, when it has no name): two
cables of one name in two namespaces are two cables, and neither one's files, control socket
or lock is the other's.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

DEFAULT_RUN_DIR = "/run/rrqnet"
NETNS_NAMES = "/run/netns"  # where `ip netns add` names network namespaces
UNIT_LOG_DIR = "/var/log/rrqnet"  # rrqnet@.service's LogsDirectory=: writable by the unit


def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


@functools.cache
def default_run_dir() -> str:
    """RUN for this process's network namespace (see the module's docstring)."""
    mine = _netns_inode("/proc/self/ns/net")
    hosts = _netns_inode("/proc/1/ns/net")  # readable by root only
    if mine is None or mine == hosts:
        return DEFAULT_RUN_DIR
    try:
        names = sorted(os.listdir(NETNS_NAMES))
    except OSError:
        names = []
    for name in names:
        if _netns_inode(os.path.join(NETNS_NAMES, name)) == mine:
            return os.path.join(DEFAULT_RUN_DIR, "netns", name)
    if hosts is None:
        return DEFAULT_RUN_DIR  # not root, and no name: as likely the host's as not
    return os.path.join(DEFAULT_RUN_DIR, "netns", str(mine))


@dataclass(frozen=True)
class Paths:
    run_dir: str = field(default_factory=default_run_dir)

    def _file(self, name: str, suffix: str) -> str:
        return os.path.join(self.run_dir, f"{name}.{suffix}")

    def pidfile(self, name: str) -> str:
        return self._file(name, "pid")

    def control(self, name: str) -> str:
        return self._file(name, "sock")

    def state(self, name: str) -> str:
        return self._file(name, "json")

    def dhclient_pid(self, name: str) -> str:
        return self._file(name, "dhclient.pid")

    def dhclient_leases(self, name: str) -> str:
        return self._file(name, "dhclient.leases")

    def ifupdown_owned(self, name: str) -> str:
        """Present while ifup's static method owns the cable's addresses (the hook, under
        systemd, starts rrqnet@NAME between ifup's steps: the unit leaves them to ifup)."""
        return self._file(name, "ifupdown")

    def taken_down(self, name: str) -> str:
        """Present after `rrqctl down NAME`: check leaves the cable down until `up`."""
        return self._file(name, "down")

    def changes_lock(self) -> str:
        return os.path.join(self.run_dir, ".lock")

    def check_lock(self) -> str:
        return os.path.join(self.run_dir, "check.lock")

    def health(self, name: str) -> str:
        return self._file(name, "health.json")
