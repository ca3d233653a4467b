"""Keeping cables up: `rrqctl check` (cron) and the health checks inside the engine."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rrqctl import render
from tests.cronlab import cron, cron_verdict, syslog, with_syslog
from tests.netlab import BIN, Lab, wait_for

SCRIPT = Path(__file__).parents[1] / "data" / "dhclient-script"


def cable(netlab: Lab, *extra: str, health: str = "1") -> tuple[str, str]:
    """Host a with a conf.d cable mynet0 (its IP is part of the cable), b with a plain engine."""
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"], a_if="ua", b_if="ub")
    netlab.tap(b, "tap0", ["10.88.0.2/24"])
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    confd = netlab.dir / a / "conf.d"
    confd.mkdir(parents=True)
    (confd / "mynet0.conf").write_text(
        "TAP=mynet0\nIP=10.88.0.1/24\nPORT=3636\nVPN=( 10.77.0.2:3636 )\n"
        + "".join(f"{e}\n" for e in extra)
    )
    os.environ["RRQCTL_HEALTH_EVERY"] = health
    try:
        netlab.rrqctl(a, "up", "mynet0")
    finally:
        del os.environ["RRQCTL_HEALTH_EVERY"]
    assert netlab.ping(a, "10.88.0.2")
    return a, b


def engine_pid(netlab: Lab, ns: str) -> int:
    return int((netlab.run_dir(ns) / "mynet0.pid").read_text())


def test_killed_engine_is_brought_back_by_one_check_and_the_log_says_why(
    netlab: Lab, tmp_path: Path
) -> None:
    a, _ = cable(netlab)
    old = engine_pid(netlab, a)
    os.kill(old, signal.SIGKILL)
    wait_for(
        lambda: (
            not Path(f"/proc/{old}").exists()
            or "Z" in Path(f"/proc/{old}/stat").read_text().split()[2]
        ),
        5,
        "the engine to die",
    )
    assert not netlab.ping(a, "10.88.0.2", count=1, timeout=1)
    with syslog(tmp_path) as log:
        r = with_syslog(a, log, [str(BIN / "rrqctl"), "check", *netlab.rrqctl_args(a)])
        lines = log.collect(0.3)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout == "mynet0: engine: the engine is not running\nmynet0: repaired\n"
    assert any("mynet0: engine: the engine is not running -> repaired" in line for line in lines), (
        lines
    )
    assert engine_pid(netlab, a) != old
    assert netlab.ping(a, "10.88.0.2")
    assert netlab.rrqctl(a, "check").stdout == "mynet0: ok\n"


def test_deleted_tap_is_recreated_and_the_engine_reattached(netlab: Lab) -> None:
    a, _ = cable(netlab)
    pid = engine_pid(netlab, a)
    netlab.ip(a, "link", "del", "mynet0")
    wait_for(
        lambda: (
            "10.88.0.1/24" in netlab.ip(a, "addr", "show", "dev", "mynet0")
            if "mynet0" in netlab.links(a)
            else False
        ),
        10,
        "mynet0 back with its address",
    )
    assert netlab.ping(a, "10.88.0.2")
    assert engine_pid(netlab, a) == pid  # the same engine, re-attached


def test_tap_pulled_from_its_bridge_is_reattached_at_once_well_within_one_check_period(
    netlab: Lab,
) -> None:
    """The kernel announces the change: the engine does not wait for its next check."""
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"])
    netlab.ip(a, "link", "add", "br0", "type", "bridge")
    netlab.write_interfaces(
        a,
        "iface mynet0 inet manual\n  rrqnet_port 3636\n  rrqnet_remote 10.77.0.2:3636\n"
        "  rrqnet_bridge br0\n",
    )
    os.environ["RRQCTL_HEALTH_EVERY"] = "60"
    try:
        netlab.rrqctl(a, "up", "mynet0")
    finally:
        del os.environ["RRQCTL_HEALTH_EVERY"]
    pid = engine_pid(netlab, a)
    for _ in range(2):  # and again, once the first repair has settled
        time.sleep(2.5)
        netlab.ip(a, "link", "set", "mynet0", "nomaster")
        t0 = time.monotonic()
        wait_for(
            lambda: "master br0" in netlab.ip(a, "link", "show", "mynet0"), 15, "mynet0 in br0"
        )
        assert time.monotonic() - t0 <= 10  # the periodic check would take up to 60 s
    assert engine_pid(netlab, a) == pid


def test_killed_dhclient_is_restarted_and_the_address_leased_again(netlab: Lab) -> None:
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"])
    netlab.tap(b, "tap0", ["10.88.0.1/24"])
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    _, log, _ = netlab.dnsmasq(b, "tap0", "10.88.0.50", "10.88.0.99")
    netlab.write_interfaces(
        a,
        "iface mynet0 inet manual\n  rrqnet_port 3636\n  rrqnet_remote 10.77.0.2:3636\n"
        f"  rrqnet_dhcp dhclient -4 -cf /dev/null -sf {SCRIPT}\n",
    )
    netlab.rrqctl(a, "up", "mynet0")
    lease = r"inet (10\.88\.0\.\d+)/24"
    wait_for(
        lambda: re.search(lease, netlab.ip(a, "-4", "addr", "show", "mynet0")),
        15,
        "the first lease",
    )
    pid = int((netlab.run_dir(a) / "mynet0.dhclient.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    netlab.ip(a, "addr", "flush", "dev", "mynet0")
    acks = log.read_text().count("DHCPACK")
    out = netlab.rrqctl(a, "check").stdout
    assert out == "mynet0: dhclient: dhclient is not running\nmynet0: repaired\n"
    wait_for(
        lambda: re.search(lease, netlab.ip(a, "-4", "addr", "show", "mynet0")), 15, "a lease again"
    )
    assert log.read_text().count("DHCPACK") > acks
    netlab.rrqctl(a, "down", "mynet0")


def test_vanished_key_file_fails_every_repair_and_backs_off(netlab: Lab) -> None:
    a, _ = netlab.host("a"), netlab.host("b")
    key = Path(netlab.keyfile())
    interfaces = netlab.write_interfaces(
        a, f"iface mynet0 inet manual\n  rrqnet_port 3636\n  rrqnet_remote 10.77.0.2:3636={key}\n"
    )
    netlab.rrqctl(a, "up", "mynet0")
    key.unlink()
    os.kill(engine_pid(netlab, a), signal.SIGKILL)
    outs = [netlab.rrqctl(a, "check", check=False) for _ in range(4)]
    assert [o.returncode for o in outs] == [1, 1, 1, 1]
    reason = f"{interfaces}:3: key file {key}: No such file or directory"
    assert f"mynet0: not repaired: {reason}\n" in outs[0].stdout
    assert all("not repaired: waiting: 1 failed repairs; next try in" in o.stdout for o in outs[1:])
    state = json.loads((netlab.run_dir(a) / "check.json").read_text())
    assert state["attempts"] == {"mynet0": 1} and state["failures"] == {"mynet0": 1}


def test_two_checks_at_once_never_half_repair(netlab: Lab) -> None:
    a, _ = cable(netlab)
    os.kill(engine_pid(netlab, a), signal.SIGKILL)
    time.sleep(0.2)
    cmd = ["ip", "netns", "exec", a, str(BIN / "rrqctl"), "check", *netlab.rrqctl_args(a)]
    p1 = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    p2 = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out1, out2 = p1.communicate(60)[0], p2.communicate(60)[0]
    assert (p1.returncode, p2.returncode) == (0, 0)
    assert sorted([out1, out2]) == [
        "mynet0: engine: the engine is not running\nmynet0: repaired\n",
        "mynet0: ok\n",
    ]
    engines = [p for p in netlab.pids(a) if "--attach" in Path(f"/proc/{p}/cmdline").read_text()]
    assert len(engines) == 1
    # and while one holds the lock, another gives up rather than race it
    fd = os.open(netlab.run_dir(a) / "check.lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        r = netlab.rrqctl(a, "check", "--lock-wait", "0.5", check=False)
    finally:
        os.close(fd)
    assert (r.returncode, r.stderr) == (
        7,
        "rrqctl: another rrqctl check is still running; not checking twice\n",
    )


def test_a_cable_taken_down_while_check_waits_for_the_cable_lock_stays_down(netlab: Lab) -> None:
    a = netlab.host("a")
    netlab.write_interfaces(
        a, "iface mynet0 inet manual\n  rrqnet_port 3636\n  rrqnet_remote 10.77.0.2:3636\n"
    )
    netlab.rrqctl(a, "up", "mynet0")
    os.kill(engine_pid(netlab, a), signal.SIGKILL)  # something for check to repair
    run = netlab.run_dir(a)
    held = os.open(run / ".lock", os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # as `rrqctl down mynet0` holds it
    try:
        cmd = ["ip", "netns", "exec", a, str(BIN / "rrqctl"), "check", *netlab.rrqctl_args(a)]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: has_open(p.pid, run / ".lock"), 30, "check to wait for the cable lock")
        # what that down does, under its lock: the tap and the record go
        netlab.ip(a, "link", "del", "mynet0")
        for f in ("mynet0.json", "mynet0.pid", "mynet0.sock"):
            (run / f).unlink(missing_ok=True)
    finally:
        os.close(held)
    out, err = p.communicate(timeout=60)
    assert (p.returncode, out, err) == (0, "", "")
    assert "mynet0" not in netlab.links(a)
    assert netlab.pids(a) == []
    assert json.loads((run / "check.json").read_text())["attempts"] == {}


def has_open(pid: int, path: Path) -> bool:
    fds = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fds / fd) == str(path) for fd in os.listdir(fds))
    except OSError:
        return False


def test_rendered_cron_file_passes_debian_crons_parser(tmp_path: Path) -> None:
    good = cron_verdict(tmp_path / "good", "rrqnet", render.cron_file())
    assert good and not [m for m in good if re.search(r"Error|bad|INSECURE|ignored", m)], good
    # the harness can fail: cron says so for a broken schedule
    bad = cron_verdict(
        tmp_path / "bad", "rrqnet", render.cron_file().replace("* * * * *", "61 * * * *")
    )
    assert any("bad minute" in m for m in bad), bad


@pytest.mark.slow
def test_real_cron_runs_check_and_repairs_a_killed_engine(netlab: Lab, tmp_path: Path) -> None:
    a, _ = cable(netlab)
    old = engine_pid(netlab, a)
    args = [*netlab.rrqctl_args(a), "--ifupdown-state", str(tmp_path / "ifstate")]
    cronfile = render.cron_file("* * * * *", str(BIN / "rrqctl"), args)
    os.kill(old, signal.SIGKILL)
    with cron(tmp_path / "cron", {"rrqnet": cronfile}, ns=a) as (_, log):
        wait_for(
            lambda: (netlab.run_dir(a) / "mynet0.pid").exists() and engine_pid(netlab, a) != old,
            75,
            "cron to run rrqctl check",
        )
        lines = log.collect(0.2)
    assert any("CMD" in m and "rrqctl check --quiet" in m for m in lines), lines  # no systemd here
    assert any("mynet0: engine: the engine is not running -> repaired" in m for m in lines), lines
    assert netlab.ping(a, "10.88.0.2")
