"""Engine behaviours on real taps and sockets: tap down, -S, -tpg, reload."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netlab import BIN, Lab, wait_for
from tests.netns.test_peers import hosts_with_taps

pytestmark = pytest.mark.usefixtures("datapath")  # each test on the C and the Python datapath

RECORDER = (
    "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
    "s.bind(('10.77.0.1', 3636)); sys.stdout.reconfigure(line_buffering=True)\n"
    "while True: d, a = s.recvfrom(65536); print(len(d), a[0])"
)


def test_writes_to_a_tap_that_is_down_are_counted_not_fatal(netlab: Lab) -> None:
    a, b = hosts_with_taps(netlab)
    netlab.rrqnet(a, "-t tap0 3636 10.77.0.2:3636", "a")
    eb = netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    netlab.ip(b, "link", "set", "tap0", "down")
    assert not netlab.ping(a, "10.88.0.2", count=2, timeout=1)
    wait_for(lambda: eb.status()["drops"].get("tap-down", 0) >= 1, what="tap-down drops")
    assert eb.alive()
    netlab.ip(b, "link", "set", "tap0", "up")
    assert netlab.ping(a, "10.88.0.2")


def test_source_address_for_outgoing_udp(netlab: Lab) -> None:
    a, b = hosts_with_taps(netlab)
    netlab.ip(b, "addr", "add", "10.77.0.3/24", "dev", "ub")
    netlab.rrqnet(a, "-t tap0 3636 10.77.0.3:3636", "a")  # a admits only .3
    eb = netlab.rrqnet(b, "-t tap0 -S 10.77.0.3 3636 10.77.0.1:3636", "b")
    assert netlab.ping(b, "10.88.0.1")
    assert eb.status()["drops"] == {}


def test_tpg_pads_1461_to_1477_byte_datagrams_to_1478(netlab: Lab) -> None:
    a, b = hosts_with_taps(netlab, quiet=True)
    rec = netlab.spawn(a, [sys.executable, "-c", RECORDER], "recorder")
    netlab.rrqnet(b, "-tpg -t tap0 3636 10.77.0.1:3636", "b")
    for size in (1460, 1461, 1470, 1477, 1478, 1500):
        frame = bytes.fromhex("ffffffffffff020000000042") + b"\x88\xb5" + bytes(size - 14)
        netlab.send_frame(b, "tap0", frame)
    wait_for(lambda: rec.output().count("\n") >= 7, what="7 datagrams (heartbeat + 6 frames)")
    sizes = [int(line.split()[0]) for line in rec.output().splitlines()]
    assert sizes == [0, 1460, 1478, 1478, 1478, 1478, 1500]


def test_engine_exits_cleanly_on_sigterm_and_removes_its_control_socket(netlab: Lab) -> None:
    a, _ = hosts_with_taps(netlab)
    ea = netlab.rrqnet(a, "-t tap0 3636 10.77.0.2:3636", "a")
    assert ea.control.exists()
    assert ea.stop() == 0
    assert not ea.control.exists()
    r = subprocess.run(["ip", "-n", a, "link", "show", "tap0"], capture_output=True)
    assert r.returncode == 0  # a tap made by someone else is left alone


def test_engine_creates_a_non_persistent_tap_when_absent(netlab: Lab) -> None:
    a = netlab.host("a")
    ea = netlab.rrqnet(a, "-t auto0 3636", "a")
    out = netlab.ip(a, "-d", "link", "show", "auto0")
    assert "tun type tap" in out
    ea.stop()
    time.sleep(0.1)
    r = subprocess.run(["ip", "-n", a, "link", "show", "auto0"], capture_output=True)
    assert r.returncode != 0  # gone with the engine


ADOPT = """
import errno, json, logging, os, subprocess

from rrqctl.engine.loop import Engine
from rrqctl.engine.ports import TapPort
from rrqctl.model import build_cable
from rrqctl.system import tun

def index(): return open("/sys/class/net/kept0/ifindex").read().strip()
def fails(name, fd):
    try: TapPort(name, fd)
    except OSError as e: return errno.errorcode[e.errno]
    finally: os.close(fd)
kept = tun.open_tap("kept0", vnet_hdr=True)  # as the engine before this one opened it
was = index()
port = TapPort("kept0", os.dup(kept))  # by name it would be EBUSY: kept holds the tap
out = {"adopted": index() == was, "non-blocking": not os.get_blocking(port.fd)}
port.close()
out["another tap's name"] = fails("other0", os.dup(kept))
subprocess.run(["ip", "link", "del", "kept0"], check=True)
out["its tap deleted"] = fails("kept0", os.dup(kept))
settings = build_cable({"name": "kept0", "port": 3636, "local": "tap"}).engine_settings()
engine = Engine(settings, tap_fd=os.dup(kept), log=logging.getLogger("t"))
engine.open()
out["opened afresh"] = index() != was
engine.close()
print(json.dumps(out))
"""


def test_a_kept_tap_fd_is_adopted_and_one_gone_stale_is_not(netlab: Lab) -> None:
    """What the engine does with the tap's fd that systemd kept across a crash."""
    a = netlab.host("a")
    argv = ["ip", "netns", "exec", a, sys.executable, "-c", ADOPT]
    out = subprocess.run(argv, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "adopted": True,
        "non-blocking": True,
        "another tap's name": "EINVAL",
        "its tap deleted": "EBADFD",
        "opened afresh": True,
    }
    assert "not adopting the tap kept for us" in out.stderr


def test_two_engines_of_one_tap_name_in_two_namespaces_each_answer_for_themselves(
    netlab: Lab,
) -> None:
    """No RRQNET_CONTROL, no --run-dir: the default places differ by network namespace."""
    a, b = hosts_with_taps(netlab)
    procs = {
        ns: netlab.spawn(ns, [str(BIN / "rrqnet"), "-t", "tap0", "3636", addr], f"engine-{ns}")
        for ns, addr in ((a, "10.77.0.2:3636"), (b, "10.77.0.1:3636"))
    }
    for ns in (a, b):
        netlab.cleanup_dirs.append(Path("/run/rrqnet/netns") / ns)
    assert netlab.ping(a, "10.88.0.2")
    for ns, proc in procs.items():
        status = subprocess.run(
            ["ip", "netns", "exec", ns, str(BIN / "rrqctl"), "status", "tap0", "--json"],
            capture_output=True,
            text=True,
            check=True,
        )
        st = json.loads(status.stdout)
        st = st[0] if isinstance(st, list) else st
        assert st["pid"] == proc.pid  # its own engine, not the other namespace's
        assert Path(f"/run/rrqnet/netns/{ns}/tap0.sock").exists()
