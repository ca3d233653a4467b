"""Two network namespaces on a veth underlay, processes in them, and cleanup."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

UNDERLAY = ("10.201.0.1", "10.201.0.2")
OVERLAY = ("10.202.0.1", "10.202.0.2")
OVERLAY_MTU = 1400


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {r.stderr.strip()}")
    return r


class Lab:
    def __init__(self) -> None:
        tag = secrets.token_hex(2)
        self.a, self.b = f"rqbench-{tag}-a", f"rqbench-{tag}-b"
        self.dir = Path(tempfile.mkdtemp(prefix=f"rqbench-{tag}-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    def up(self) -> None:
        for ns in (self.a, self.b):
            sh("ip", "netns", "add", ns)
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh(
            "ip",
            "link",
            "add",
            "ua",
            "netns",
            self.a,
            "type",
            "veth",
            "peer",
            "name",
            "ub",
            "netns",
            self.b,
        )
        for ns, dev, addr in ((self.a, "ua", UNDERLAY[0]), (self.b, "ub", UNDERLAY[1])):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")

    def ns(self, side: int) -> str:
        return (self.a, self.b)[side]

    def run(self, side: int, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns(side), *argv, check=check)

    def spawn(
        self, side: int, argv: Sequence[str], log: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        with open(self.dir / log, "wb") as f:
            p = subprocess.Popen(
                ["ip", "netns", "exec", self.ns(side), *argv],
                stdout=f,
                stderr=f,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.procs.clear()
        for ns in (self.a, self.b):  # anything left in the namespaces (daemons that forked)
            for pid in sh("ip", "netns", "pids", ns, check=False).stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)

    def down(self) -> None:
        self.stop_all()
        for ns in (self.a, self.b):
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    def wait_overlay(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while self.run(0, "ping", "-c", "1", "-W", "1", OVERLAY[1], check=False).returncode != 0:
            if time.monotonic() > deadline:
                logs = "\n".join(
                    f"--- {p.name}\n{p.read_text()[-1500:]}" for p in self.dir.glob("*.log")
                )
                raise RuntimeError(f"the overlay did not come up in {timeout:.0f}s\n{logs}")


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    lb = Lab()
    try:
        lb.up()
        yield lb
    finally:
        lb.down()
