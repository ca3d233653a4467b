"""sd_notify as rrqnet@.service sees it, against a notify socket this test owns."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.netlab import BIN
from tests.unit.test_engine_timing import free_port


def collect(sock: socket.socket, until: float) -> list[str]:
    out = []
    while time.monotonic() < until:
        with contextlib.suppress(TimeoutError):
            out.append(sock.recv(4096).decode())
    return out


@pytest.mark.system
def test_ready_status_watchdog_reloading_stopping_in_order(tmp_path: Path) -> None:
    port = free_port()
    (tmp_path / "interfaces").write_text(
        f"iface hub0 inet manual\n  rrqnet_port notap {port}\n  rrqnet_options -4 -S 127.0.0.1\n"
        f"  rrqnet_remote 127.0.0.1:{free_port()}\n"
    )
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.05)
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    env.pop("WATCHDOG_PID", None)
    (tmp_path / "none").mkdir()
    args = [
        "--interfaces",
        str(tmp_path / "interfaces"),
        "--run-dir",
        str(tmp_path / "run"),
        "--confd",
        str(tmp_path / "none"),
        "--networkd-dir",
        str(tmp_path / "none"),
    ]
    p = subprocess.Popen(
        [str(BIN / "rrqctl"), "run", "hub0", *args], env=env, stderr=subprocess.PIPE
    )
    try:
        first = collect(sock, time.monotonic() + 5.0)
        p.send_signal(signal.SIGHUP)
        around_reload = collect(sock, time.monotonic() + 1.0)
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0, p.stderr.read() if p.stderr else ""
        last = collect(sock, time.monotonic() + 0.3)
    finally:
        if p.poll() is None:
            p.kill()
        sock.close()
    assert first[0].startswith("READY=1\nSTATUS=remotes 0/1 up, frames in 0 out 0")
    # fed every WatchdogSec/2 = 0.1 s by the datapath loop: ~48 in 4.9 s
    assert 30 <= first.count("WATCHDOG=1") <= 60, first
    others = [m for m in first[1:] if m != "WATCHDOG=1"]
    assert 1 <= len(others) <= 2 and all(
        m.startswith("STATUS=remotes ") for m in others
    )  # every 5 s
    reload = [m for m in around_reload if m != "WATCHDOG=1" and not m.startswith("STATUS=")]
    assert reload[0] == "RELOADING=1"
    assert reload[1].startswith("READY=1\nSTATUS=")
    # a helper reads the cable (a Python start-up) while the loop goes on feeding the watchdog
    during = around_reload[around_reload.index(reload[0]) : around_reload.index(reload[1])]
    assert "WATCHDOG=1" in during
    assert last[-1] == "STOPPING=1"
    assert "WATCHDOG=1" not in last[last.index("STOPPING=1") :]
