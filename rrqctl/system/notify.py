"""sd_booted(3), sd_notify(3) and the journal, through python3-systemd. Without
NOTIFY_SOCKET notifying is a no-op."""

from __future__ import annotations

import os

SYSTEMD_RUNNING = "/run/systemd/system"


def booted() -> bool:
    """sd_booted(3): systemd is PID 1."""
    return os.path.isdir(SYSTEMD_RUNNING)


def enabled() -> bool:
    return bool(os.environ.get("NOTIFY_SOCKET"))


def notify(*fields: str) -> None:
    """Send 'READY=1', 'STATUS=...', 'WATCHDOG=1', 'STOPPING=1', ... in one message."""
    if enabled():
        from systemd import daemon  # only under systemd: the engine stays small elsewhere

        daemon.notify("\n".join(fields))


def watchdog_interval() -> float | None:
    """Half of WatchdogSec= when the watchdog is on for this process, else None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
