"""Where a cable's runtime files live: RUN/NAME.{pid,sock,json}, dhclient's files, the lock."""

from __future__ import annotations

import os
from dataclasses import dataclass

DEFAULT_RUN_DIR = "/run/rrqnet"
UNIT_LOG_DIR = "/var/log/rrqnet"  # rrqnet@.service's LogsDirectory=: writable by the unit


@dataclass(frozen=True)
class Paths:
    run_dir: str = DEFAULT_RUN_DIR

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

    def changes_lock(self) -> str:
        return os.path.join(self.run_dir, ".lock")

    def check_lock(self) -> str:
        return os.path.join(self.run_dir, "check.lock")

    def health(self, name: str) -> str:
        return self._file(name, "health.json")
