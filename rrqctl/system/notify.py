"""sd_booted(3), sd_notify(3), sd_listen_fds(3) and the journal, through python3-systemd.
Without NOTIFY_SOCKET notifying is a no-op."""

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


def fd_store_size() -> int:
    """$FDSTORE: how many file descriptors systemd keeps for this service (0: none). systemd
    >= 254 sets it from FileDescriptorStoreMax=; rrqnet@.service sets it for older ones."""
    try:
        return int(os.environ.get("FDSTORE", "0")) if enabled() else 0
    except ValueError:
        return 0


def store_fd(name: str, fd: int) -> None:
    """Put a copy of fd in systemd's fd store as `name`, replacing any kept before. systemd
    hands it back when it restarts the service (kept_fds) and closes it when it stops it."""
    if enabled():
        from systemd import daemon

        daemon.notify(f"FDSTOREREMOVE=1\nFDNAME={name}")
        daemon.notify(f"FDSTORE=1\nFDNAME={name}", fds=[fd])


def drop_stored_fd(name: str) -> None:
    if enabled():
        from systemd import daemon

        daemon.notify(f"FDSTOREREMOVE=1\nFDNAME={name}")


def kept_fds() -> dict[str, int]:
    """The fds systemd handed back from the fd store (LISTEN_FDS), by name; the variables
    are unset, so nothing this process starts takes them for its own."""
    if not os.environ.get("LISTEN_FDS"):
        return {}
    from systemd import daemon

    return {name: fd for fd, name in daemon.listen_fds_with_names().items()}


def watchdog_interval() -> float | None:
    """Half of WatchdogSec= when the watchdog is on for this process, else None."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2e6
