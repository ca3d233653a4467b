"""Debian's real cron, and a syslog the test owns, in private mount namespaces.

The machine's /etc/cron.d, /etc/crontab, spool and /run are never touched: cron sees private
copies, and /dev is a private directory whose /dev/log is the test's own datagram socket.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.netlab import in_private_mounts

DEV_NODES = ("null", "zero", "urandom", "random", "full", "tty")


class Syslog:
    """A /dev/log for a private mount namespace: collects what is logged there."""

    def __init__(self, root: Path) -> None:
        self.dev = root / "dev"
        self.dev.mkdir(parents=True, exist_ok=True)
        for n in DEV_NODES:
            (self.dev / n).touch()
        (self.dev / "net").mkdir(exist_ok=True)
        (self.dev / "net" / "tun").touch()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.dev / "log"))
        self.sock.settimeout(0.05)
        self.lines: list[str] = []

    def mounts(self) -> str:
        """Shell lines that make this directory the namespace's /dev."""
        binds = "".join(f"mount --bind /dev/{n} {self.dev}/{n}; " for n in DEV_NODES)
        return (
            f"{binds}mount --bind /dev/net/tun {self.dev}/net/tun; mount --rbind {self.dev} /dev; "
        )

    def collect(self, seconds: float = 0.0) -> list[str]:
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.lines.append(self.sock.recv(8192).decode(errors="replace"))
            except TimeoutError:
                if time.monotonic() >= deadline:
                    return self.lines

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def syslog(root: Path) -> Iterator[Syslog]:
    s = Syslog(root)
    try:
        yield s
    finally:
        s.close()


def with_syslog(ns: str, log: Syslog, argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    """Run argv in netns ns with /dev/log being log's socket."""
    script = f'set -e; {log.mounts()} exec "$@"'
    return in_private_mounts(ns, script, "sh", *argv, timeout=120)


@contextlib.contextmanager
def cron(
    root: Path, files: dict[str, str], ns: str | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], Syslog]]:
    """Real `cron -f` with only files in its /etc/cron.d (root-owned, mode 0644)."""
    for d in ("cron.d", "spool", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "crontab").write_text("")
    for name, text in files.items():
        p = root / "cron.d" / name
        p.write_text(text)
        p.chmod(0o644)
    with syslog(root) as log:
        script = (
            f"set -e; mount --bind {root}/cron.d /etc/cron.d; mount --bind {root}/crontab /etc/crontab; "
            f"mount --bind {root}/spool /var/spool/cron/crontabs; mount --bind {root}/run /run; "
            f"{log.mounts()} exec cron -f -L 15"
        )
        prefix = ["ip", "netns", "exec", ns] if ns else []
        p = subprocess.Popen(
            [*prefix, "unshare", "--mount", "--propagation", "private", "sh", "-c", script]
        )
        try:
            yield p, log
        finally:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def cron_verdict(root: Path, name: str, text: str, wait: float = 1.5) -> list[str]:
    """What Debian's cron says when it loads one cron.d file (its own parser as the checker)."""
    with cron(root, {name: text}) as (_, log):
        return log.collect(wait)
