"""`rrqctl plan|up|down` on a real host (a namespace): what they make and what they leave."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from rrqctl.engine import cpucaps
from rrqctl.errors import ExitCode, NotRunningError
from rrqctl.supervise.control import query
from tests.netlab import BIN, NOT_FOR_NOBODY, Lab, Proc, nobody_can_run_rrqctl, wait_for

SCRIPT = Path(__file__).parents[1] / "data" / "dhclient-script"


def peer(lab: Lab, quiet: bool = False) -> tuple[str, str]:
    """Host a (for rrqctl) and host b with a plain engine on tap0 (10.88.0.2)."""
    a, b = lab.host("a"), lab.host("b")
    lab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"], a_if="ua", b_if="ub")
    lab.tap(b, "tap0", ["10.88.0.2/24"], quiet=quiet)
    return a, b


def stanza(*options: str, name: str = "mynet0", head: str = "", static: bool = True) -> str:
    """A stanza; static: inet static with address 10.88.0.1/24 (line 2), else inet manual."""
    body = "".join(f"    {o}\n" for o in options)
    if not static:
        return f"{head}iface {name} inet manual\n{body}"
    return f"{head}iface {name} inet static\n    address 10.88.0.1/24\n{body}"


def squat_port(lab: Lab, ns: str, port: int = 3636) -> Proc:
    """A process holding UDP port in ns (so an engine cannot bind it)."""
    code = (
        "import socket,time; s=socket.socket(socket.AF_INET6, socket.SOCK_DGRAM);"
        f"s.bind(('::', {port})); time.sleep(60)"
    )
    squatter = lab.spawn(ns, [sys.executable, "-c", code], "squatter")

    def taken() -> bool:
        ss = subprocess.run(
            ["ip", "netns", "exec", ns, "ss", "-uln"], capture_output=True, text=True
        )
        return f":{port} " in ss.stdout

    wait_for(taken, what="the squatter", proc=squatter)
    return squatter


def leftovers(lab: Lab, ns: str) -> dict[str, object]:
    run = lab.run_dir(ns)
    files = sorted(p.name for p in run.iterdir() if p.name != ".lock") if run.exists() else []
    return {"mynet0": "mynet0" in lab.links(ns), "pids": lab.pids(ns), "files": files}


def test_up_pings_and_down_leaves_nothing(netlab: Lab) -> None:
    a, b = peer(netlab)
    key = netlab.keyfile()
    netlab.rrqnet(b, f"-t tap0 3636 10.77.0.1:3636={key}", "b")
    netlab.write_interfaces(a, stanza("rrqnet_port 3636", f"rrqnet_remote 10.77.0.2:3636={key}"))
    plan = netlab.rrqctl(a, "plan", "mynet0").stdout
    assert plan.splitlines()[0] == "[#] ip tuntap add dev mynet0 mode tap"
    assert "mynet0" not in netlab.links(a)  # plan changed nothing
    out = netlab.rrqctl(a, "up", "mynet0").stdout
    assert out.startswith(  # the tap sized to the path: 1500 - 28 - 14 - 32 (sealed)
        "[#] ip tuntap add dev mynet0 mode tap\n[#] ip link set dev mynet0 mtu 1426\n"
        "[#] ip link set dev mynet0 up\n[#] ip addr add 10.88.0.1/24 dev mynet0\n"
    )
    assert out.endswith("mynet0 is up\n")
    assert netlab.ping(a, "10.88.0.2")  # the stanza's address, as ifup would give it
    detail = netlab.ip(a, "-d", "link", "show", "mynet0")
    assert "tun type tap pi off" in detail  # persistent, no packet information
    st = netlab.rrqctl(a, "status", "mynet0").stdout
    assert re.search(r"10\.77\.0\.2:3636\s+uplink\s+up\s+yes", st), st
    assert sorted(leftovers(netlab, a)["files"]) == ["mynet0.json", "mynet0.pid", "mynet0.sock"]  # type: ignore[arg-type]
    down = netlab.rrqctl(a, "down", "mynet0").stdout
    assert down.splitlines()[-1] == "mynet0 is down"
    assert leftovers(netlab, a) == {"mynet0": False, "pids": [], "files": []}


def test_up_twice_and_down_twice_change_nothing(netlab: Lab) -> None:
    a, _ = peer(netlab)
    netlab.write_interfaces(a, stanza("rrqnet_port 3636", "rrqnet_remote 10.77.0.2:3636"))
    netlab.rrqctl(a, "up", "mynet0")
    pid = int((netlab.run_dir(a) / "mynet0.pid").read_text())
    index = netlab.ip(a, "link", "show", "mynet0").split(":")[0]
    again = netlab.rrqctl(a, "up", "mynet0")
    assert again.stdout == "mynet0 is up: nothing to do\n"
    assert int((netlab.run_dir(a) / "mynet0.pid").read_text()) == pid
    assert netlab.ip(a, "link", "show", "mynet0").split(":")[0] == index
    assert netlab.rrqctl(a, "plan", "mynet0").stdout == "mynet0 is up: nothing to do\n"
    netlab.rrqctl(a, "down", "mynet0")
    assert netlab.rrqctl(a, "down", "mynet0").stdout == "mynet0 is down: nothing to do\n"


def test_a_tap_that_existed_before_is_left_in_place(netlab: Lab) -> None:
    a, _ = peer(netlab)
    netlab.tap(a, "mynet0")
    netlab.write_interfaces(a, stanza("rrqnet_port 3636", "rrqnet_remote 10.77.0.2:3636"))
    out = netlab.rrqctl(a, "up", "mynet0").stdout
    assert "ip tuntap add" not in out
    netlab.rrqctl(a, "down", "mynet0")
    assert "mynet0" in netlab.links(a)
    assert netlab.pids(a) == []


def test_up_gives_the_stanzas_addresses_and_down_leaves_a_tap_found_as_it_was(
    netlab: Lab,
) -> None:
    """inet static (address + netmask) and inet6 static: `rrqctl up` gives the tap what ifup
    would; on a tap that was there before (down), down takes them and the link back."""
    a, b = peer(netlab)
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    netlab.ip(b, "addr", "add", "fd88::2/64", "dev", "tap0")
    netlab.ip(a, "tuntap", "add", "dev", "mynet0", "mode", "tap")
    netlab.write_interfaces(
        a,
        "iface mynet0 inet static\n    address 10.88.0.1\n    netmask 255.255.255.0\n"
        "    rrqnet_port 3636\n    rrqnet_remote 10.77.0.2:3636\n"
        "iface mynet0 inet6 static\n    address fd88::1/64\n",
    )
    plan = netlab.rrqctl(a, "plan", "mynet0").stdout
    assert (
        "[#] ip addr add 10.88.0.1/24 dev mynet0\n[#] ip addr add fd88::1/64 dev mynet0\n" in plan
    )
    netlab.rrqctl(a, "up", "mynet0")
    assert netlab.ping(a, "10.88.0.2") and netlab.ping(a, "fd88::2")
    out = netlab.rrqctl(a, "down", "mynet0").stdout
    assert "[#] ip addr del 10.88.0.1/24 dev mynet0\n" in out
    assert "[#] ip link set dev mynet0 down\n" in out
    link = netlab.ip(a, "addr", "show", "mynet0")
    assert "state DOWN" in link and "10.88.0.1" not in link and "fd88::1" not in link


def test_down_gives_back_a_tap_found_with_its_own_mac_mtu_and_addresses(netlab: Lab) -> None:
    """The admin's tap (MAC, MTU, an address of its own): down undoes only what up did."""
    a, _ = peer(netlab)
    mine = "02:aa:bb:cc:dd:01"
    netlab.tap(a, "mynet0", ["10.99.0.1/24"], mac=mine)
    netlab.ip(a, "link", "set", "dev", "mynet0", "mtu", "1300")
    netlab.write_interfaces(
        a,
        stanza("rrqnet_port 3636", "rrqnet_remote 10.77.0.2:3636",
               "rrqnet_mac 02:00:00:00:36:36", "rrqnet_mtu 1400"),
    )  # fmt: skip
    netlab.rrqctl(a, "up", "mynet0")
    link = netlab.ip(a, "addr", "show", "mynet0")
    assert "02:00:00:00:36:36" in link and "mtu 1400" in link and "10.88.0.1/24" in link
    out = netlab.rrqctl(a, "down", "mynet0").stdout
    assert f"[#] ip link set dev mynet0 address {mine}\n" in out
    assert "[#] ip link set dev mynet0 mtu 1300\n" in out
    link = netlab.ip(a, "addr", "show", "mynet0")
    assert mine in link and "mtu 1300" in link, link
    assert "10.99.0.1/24" in link and "10.88.0.1" not in link, link


def test_down_marks_a_confd_cable_down_only_once_it_holds_the_lock(netlab: Lab) -> None:
    """A down that waits for another rrqctl (and may give up) has not taken the cable
    down: until it holds the lock, check must still keep the cable up."""
    import fcntl

    a, _ = peer(netlab)
    confd = netlab.dir / a / "conf.d"
    confd.mkdir(parents=True, exist_ok=True)
    (confd / "x0.conf").write_text("TAP=x0\nPORT=4000\nVPN=( 10.77.0.2:4000 )\n")
    netlab.rrqctl(a, "up", "x0")
    marker = netlab.run_dir(a) / "x0.down"
    with open(netlab.run_dir(a) / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        down = subprocess.Popen(
            ["ip", "netns", "exec", a, str(BIN / "rrqctl"), "down", "x0", *netlab.rrqctl_args(a)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: _waits_on_a_lock(down.pid), what="down to wait for the lock")
            assert not marker.exists() and "x0" in netlab.links(a)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        out, err = down.communicate(timeout=60)
    assert (down.returncode, out.splitlines()[-1]) == (0, "x0 is down"), err
    assert marker.exists() and "x0" not in netlab.links(a)


def _waits_on_a_lock(pid: int) -> bool:
    """pid (or its child) polls for a lock: it has opened RUN/.lock."""
    for p in [pid, *_children(pid)]:
        fds = Path(f"/proc/{p}/fd")
        try:
            if any(os.readlink(fd).endswith("/.lock") for fd in fds.iterdir()):
                return True
        except OSError:
            continue
    return False


def _children(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []
    return [int(k) for k in kids] + [g for k in kids for g in _children(int(k))]


def test_missing_key_file_fails_before_anything_is_made(netlab: Lab) -> None:
    a, _ = peer(netlab)
    path = netlab.write_interfaces(
        a, stanza("rrqnet_port 3636", "rrqnet_remote 10.77.0.2:3636=/nonexistent/k")
    )
    r = netlab.rrqctl(a, "up", "mynet0", check=False)
    assert r.returncode == 3
    assert r.stderr == f"rrqctl: {path}:4: key file /nonexistent/k: No such file or directory\n"
    assert r.stdout == ""
    assert leftovers(netlab, a) == {"mynet0": False, "pids": [], "files": []}


def test_failure_after_the_tap_was_made_rolls_back(netlab: Lab) -> None:
    """The UDP port is taken: the engine cannot start after the tap exists; up undoes it."""
    a, _ = peer(netlab)
    netlab.write_interfaces(a, stanza("rrqnet_port 3636", "rrqnet_remote 10.77.0.2:3636"))
    squat_port(netlab, a)
    r = netlab.rrqctl(a, "up", "mynet0", check=False)
    assert r.returncode == 5, r.stdout + r.stderr  # the engine's failure, rolled back
    assert "[#] ip tuntap add dev mynet0 mode tap" in r.stdout
    assert "[#] ip link del dev mynet0   (undoing)" in r.stdout
    assert (
        r.stderr == "rrqctl: the engine for mynet0 did not start: UDP port 3636 is already in use\n"
    )
    assert "mynet0" not in netlab.links(a)
    files = sorted(p.name for p in netlab.run_dir(a).iterdir() if p.name != ".lock")
    assert files == []


def test_bridge_makes_the_tap_a_port_of_it(netlab: Lab) -> None:
    a, _ = peer(netlab)
    netlab.ip(a, "link", "add", "br0", "type", "bridge")
    netlab.write_interfaces(
        a,
        stanza(
            "rrqnet_port 3636", "rrqnet_remote 10.77.0.2:3636", "rrqnet_bridge br0", static=False
        ),
    )
    out = netlab.rrqctl(a, "up", "mynet0").stdout
    assert "[#] ip link set dev mynet0 master br0" in out
    assert "master br0" in netlab.ip(a, "link", "show", "mynet0")
    netlab.rrqctl(a, "down", "mynet0")
    assert "mynet0" not in netlab.links(a) and "br0" in netlab.links(a)


def test_missing_bridge_is_refused_before_anything_is_made(netlab: Lab) -> None:
    a, _ = peer(netlab)
    path = netlab.write_interfaces(a, stanza("rrqnet_port 3636", "rrqnet_bridge br9"))
    r = netlab.rrqctl(a, "up", "mynet0", check=False)
    assert (r.returncode, r.stderr) == (
        4,
        f"rrqctl: {path}:4: there is no bridge br9 on this host\n",
    )
    assert "mynet0" not in netlab.links(a)


def test_dhcp_lease_from_a_real_dnsmasq_across_the_cable_and_release_on_down(netlab: Lab) -> None:
    a, b = peer(netlab)
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    _, log, leases = netlab.dnsmasq(b, "tap0", "10.88.0.50", "10.88.0.99")
    netlab.write_interfaces(
        a,
        "iface mynet0 inet manual\n"
        + "".join(
            f"    {o}\n"
            for o in (
                "rrqnet_port 3636",
                "rrqnet_remote 10.77.0.2:3636",
                f"rrqnet_dhcp dhclient -4 -cf /dev/null -sf {SCRIPT}",
            )
        ),
    )
    out = netlab.rrqctl(a, "up", "mynet0").stdout
    assert "dhclient -4 -cf /dev/null -sf" in out and "-nw -pf" in out
    addr = wait_for(
        lambda: re.search(
            r"inet (10\.88\.0\.\d+)/24", netlab.ip(a, "-4", "addr", "show", "mynet0")
        ),
        15,
        "a DHCP lease on mynet0",
    )
    assert netlab.ping(a, "10.88.0.2")
    assert addr.group(1) in leases.read_text()
    netlab.rrqctl(a, "down", "mynet0")
    assert f"DHCPRELEASE(tap0) {addr.group(1)}" in log.read_text()
    assert addr.group(1) not in leases.read_text()
    assert netlab.pids(a) == []


def vm_rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def test_run_engine_process_stays_small_reloads_and_undoes_its_set_up(netlab: Lab) -> None:
    """`rrqctl run` (what the unit runs): the long-lived process holds neither pydantic nor
    pyroute2; reloads and tear-down happen in helpers, and what it made is undone."""
    a, b = peer(netlab)
    key = netlab.keyfile()
    netlab.rrqnet(b, f"-t tap0 3636 10.77.0.1:3636={key}", "b")
    netlab.ip(a, "link", "add", "br0", "type", "bridge")
    netlab.ip(a, "addr", "add", "10.88.0.1/24", "dev", "br0")
    netlab.ip(a, "link", "set", "br0", "up")
    options = ("rrqnet_port 3636", f"rrqnet_remote 10.77.0.2:3636={key}", "rrqnet_bridge br0")
    netlab.write_interfaces(a, stanza(*options, static=False))
    argv = [str(BIN / "rrqctl"), "run", "mynet0", *netlab.rrqctl_args(a)]
    run = netlab.spawn(a, argv, "run")
    sock = netlab.run_dir(a) / "mynet0.sock"
    wait_for(sock.exists, what="the control socket", proc=run)
    assert "master br0" in netlab.ip(a, "link", "show", "mynet0")
    assert netlab.ping(a, "10.88.0.2")
    assert Path(f"/proc/{run.pid}/comm").read_text() == "rrqctl\n"  # the same pid, exec'd
    maps = Path(f"/proc/{run.pid}/maps").read_text()
    assert "pydantic" not in maps
    assert "cryptography" in maps  # a sealed cable: this is the engine, not the front
    assert vm_rss_kb(run.pid) < 40 * 1024
    if os.uname().machine in cpucaps.X86:  # OpenSSL's AVX-512 code left aside (cpucaps.py)
        environ = Path(f"/proc/{run.pid}/environ").read_bytes().split(b"\0")
        mask = os.environ.get(cpucaps.VARIABLE, cpucaps.NO_AVX512)
        assert f"{cpucaps.VARIABLE}={mask}".encode() in environ
    # a reload reads the file again (in a helper): refused with FILE:LINE, then applied
    path = netlab.write_interfaces(a, stanza("rrqnet_port 99999", *options[1:]))
    with pytest.raises(NotRunningError, match=f"{path}:3: rrqnet_port: port 99999 is out of"):
        query(str(sock), "reload")
    netlab.write_interfaces(a, stanza(*options, "rrqnet_remote 10.77.0.9:3636"))
    assert query(str(sock), "reload") == "reloaded 2 remotes"
    assert len(query(str(sock))["remotes"]) == 2
    # SIGHUP: the helper reads the file beside the datapath, which answers meanwhile
    netlab.write_interfaces(
        a, stanza(*options, "rrqnet_remote 10.77.0.9:3636", "rrqnet_remote 10.77.0.10:3636")
    )
    os.kill(run.pid, signal.SIGHUP)
    assert len(query(str(sock))["remotes"]) == 2  # answered while the helper starts
    wait_for(lambda: len(query(str(sock))["remotes"]) == 3, what="the reload applied")
    metrics = netlab.rrqctl(a, "status", "--metrics").stdout
    assert metrics.count("# TYPE rrqnet_macs gauge") == 1
    assert 'rrqnet_channel_up{cable="mynet0",channel="10.77.0.2:3636",kind="uplink"} 1' in metrics
    assert netlab.ping(a, "10.88.0.2")
    assert run.stop() == 0
    assert "[#] ip link set dev mynet0 master br0" in run.output()
    assert "mynet0" not in netlab.links(a) and "br0" in netlab.links(a)
    assert sorted(p.name for p in netlab.run_dir(a).iterdir() if p.name != ".lock") == []


def test_run_whose_engine_cannot_open_undoes_its_set_up(netlab: Lab) -> None:
    a, _ = peer(netlab)
    netlab.write_interfaces(a, stanza("rrqnet_port 3636", "rrqnet_remote 10.77.0.2:3636"))
    squatter = squat_port(netlab, a)
    r = subprocess.run(
        ["ip", "netns", "exec", a, str(BIN / "rrqctl"), "run", "mynet0", *netlab.rrqctl_args(a)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    squatter.stop()
    assert r.returncode == ExitCode.ENGINE, r.stderr
    assert r.stderr.startswith("[#] ip tuntap add dev mynet0 mode tap\n")
    assert "[#] ip link del dev mynet0\n" in r.stderr
    assert r.stderr.endswith("rrqctl: UDP port 3636 is already in use\n")
    assert "mynet0" not in netlab.links(a)


def test_run_appends_its_log_to_the_rrqnet_log_file_and_refuses_one_it_cannot_open(
    netlab: Lab,
) -> None:
    a, _ = peer(netlab)
    log = netlab.dir / "mynet0.log"
    log.write_text("an earlier line\n")
    options = ("rrqnet_port 3636", "rrqnet_remote 10.77.0.2:3636")
    netlab.write_interfaces(a, stanza(*options, f"rrqnet_log -v {log}"))
    run = netlab.spawn(a, [str(BIN / "rrqctl"), "run", "mynet0", *netlab.rrqctl_args(a)], "run")
    wait_for(lambda: "ready" in log.read_text(), what="the log file", proc=run)
    assert run.stop() == 0
    text = log.read_text()
    assert text.startswith("an earlier line\n[#] ip tuntap add dev mynet0 mode tap\n")
    assert "mynet0: uplink 10.77.0.2:3636 added" in text  # the engine's own lines (-v)
    assert text.endswith("[#] ip link del dev mynet0\n")  # and the helper's tear-down
    assert run.output() == ""  # nothing left for the journal
    path = netlab.write_interfaces(a, stanza(*options, "rrqnet_log /nonexistent/mynet0.log"))
    r = subprocess.run(
        ["ip", "netns", "exec", a, str(BIN / "rrqctl"), "run", "mynet0", *netlab.rrqctl_args(a)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (r.returncode, r.stderr) == (
        ExitCode.ACTION,
        f"rrqctl: {path}:5: cannot open log file /nonexistent/mynet0.log: No such file or "
        "directory\n",
    )
    assert "mynet0" not in netlab.links(a)


def test_down_sticks_until_up_and_check_now_retries_at_once(netlab: Lab) -> None:
    """A conf.d cable is one check keeps up (as rrqnet-cron does): after `rrqctl down` it
    stays down until `rrqctl up`. A repair that failed (no bridge) waits before the next
    try; `check --now NAME` tries at once, once the admin has fixed what was wrong."""
    a, _ = peer(netlab)
    confd = netlab.dir / a / "conf.d"
    confd.mkdir(parents=True, exist_ok=True)
    (confd / "x0.conf").write_text("TAP=x0\nPORT=4000\nVPN=( 10.77.0.2:4000 )\nBR=br9\n")
    state = netlab.dir / "no-ifupdown"

    def check(*more: str) -> subprocess.CompletedProcess[str]:
        return netlab.rrqctl(a, "check", f"--ifupdown-state={state}", *more, check=False)

    r = check()
    assert r.returncode == 1 and "x0: not repaired: " in r.stdout
    assert "there is no bridge br9 on this host" in r.stdout
    netlab.ip(a, "link", "add", "br9", "type", "bridge")
    r = check()
    assert r.returncode == 1
    assert "x0: not repaired: waiting: 1 failed repairs; next try in" in r.stdout
    assert "(`rrqctl check --now x0` tries now)" in r.stdout
    r = check("--now", "x0")
    assert (r.returncode, r.stdout.splitlines()[-1]) == (0, "x0: repaired"), r.stdout
    assert "master br9" in netlab.ip(a, "link", "show", "x0")

    netlab.rrqctl(a, "down", "x0")
    assert "x0" not in netlab.links(a)
    r = check()
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert "x0" not in netlab.links(a)
    r = check("x0")  # asked by name: said, not undone
    assert r.stdout == "x0: down: taken down by `rrqctl down x0`: left down until `rrqctl up x0`\n"
    assert "x0" not in netlab.links(a)
    netlab.rrqctl(a, "up", "x0")
    netlab.rrqctl(a, "down", "x0")
    netlab.rrqctl(a, "up", "x0")
    pid = int((netlab.run_dir(a) / "x0.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), what="the engine to die")
    r = check()
    assert "x0: repaired" in r.stdout, r.stdout  # up again: check keeps it up again


@pytest.mark.skipif(not nobody_can_run_rrqctl(), reason=NOT_FOR_NOBODY)
def test_status_as_another_user_says_it_may_not_look(netlab: Lab) -> None:
    a, _ = peer(netlab)
    netlab.write_interfaces(a, stanza("rrqnet_port 3636", static=False))
    netlab.rrqctl(a, "up", "mynet0")
    for argv in (["status", "mynet0"], ["status", "--metrics"], ["status"]):
        r = subprocess.run(
            ["ip", "netns", "exec", a, "runuser", "-u", "nobody", "--", str(BIN / "rrqctl"),
             *argv, *netlab.rrqctl_args(a)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert r.returncode in (1, 3) and r.stdout == "", argv  # (3: its files are not readable)
        lines = r.stderr.splitlines()  # (the declarations it may not read, then the run dir)
        assert lines and all(
            re.fullmatch(r"rrqctl: \S+: (cannot read: )?[Pp]ermission denied.*", line)
            for line in lines
        ), r.stderr
    netlab.dir.chmod(0o755)
    for d in (netlab.dir / a, netlab.run_dir(a)):
        d.chmod(0o755)  # the files may be seen; the socket is still root's
    r = subprocess.run(
        ["ip", "netns", "exec", a, "runuser", "-u", "nobody", "--", str(BIN / "rrqctl"),
         "status", "--metrics", *netlab.rrqctl_args(a)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    sock = netlab.run_dir(a) / "mynet0.sock"
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr == f"rrqctl: {sock}: permission denied (control sockets are root's)\n"
    r = subprocess.run(
        ["ip", "netns", "exec", a, "runuser", "-u", "nobody", "--", str(BIN / "rrqctl"),
         "check", "--dry-run", *netlab.rrqctl_args(a)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert "Traceback" not in r.stderr and r.returncode == 0, r.stderr  # (nothing to repair)
    assert f"mynet0: engine: not asked: {sock}: permission denied" in r.stdout, r.stdout


def test_no_process_imports_an_rrqctl_left_in_the_working_directory(
    netlab: Lab, tmp_path: Path
) -> None:
    """Anyone may leave a package named rrqctl where root happens to stand: the engine, its
    reload and its helpers (each a new Python started as root) must not import it."""
    a, _ = peer(netlab)
    marker = tmp_path / "imported"
    (tmp_path / "rrqctl").mkdir()
    (tmp_path / "rrqctl" / "__init__.py").write_text(f"open({str(marker)!r}, 'a')\n")
    netlab.write_interfaces(a, stanza("rrqnet_port 3636", static=False))
    r = subprocess.run(
        ["ip", "netns", "exec", a, str(BIN / "rrqctl"), "up", "mynet0", *netlab.rrqctl_args(a)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    sock = str(netlab.run_dir(a) / "mynet0.sock")
    assert query(sock, "reload").startswith("reloaded")  # (a helper reads the cable anew)
    assert not marker.exists()
    netlab.rrqctl(a, "down", "mynet0")
