"""rrqnet@.service under a real systemd 252 as PID 1, in a private root; and networkd cables."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from tests.netlab import BIN, Lab, wait_for
from tests.systemd import REPO, Systemd, booted, unit_override

KEY = bytes(range(64))
UNIT = "rrqnet@mynet0.service"


def key_files() -> dict[str, str]:
    return {"etc/rrqnet/keys/k": KEY.decode("latin-1")}


def peer(netlab: Lab, sealed: str = "") -> str:
    p = netlab.host("peer")
    netlab.tap(p, "tap0", ["10.88.0.2/24"])
    return p


def start_peer_engine(netlab: Lab, p: str, key: str = "") -> None:
    netlab.rrqnet(p, f"-t tap0 3636 10.77.0.2:3636{key}", "peer")


def sd_ping(sd: Systemd, addr: str, tries: int = 20) -> bool:
    for _ in range(tries):
        if sd.run("ping", "-c", "2", "-i", "0.2", "-W", "1", addr).returncode == 0:
            return True
    return False


def restarts(sd: Systemd) -> int:
    return int(sd.show(UNIT, "NRestarts")["NRestarts"])


def active(sd: Systemd) -> bool:
    return sd.show(UNIT, "ActiveState")["ActiveState"] == "active"


def ifindex(sd: Systemd, name: str) -> int:
    """The link's ifindex, as `ip` sees it in the booted root's network namespace."""
    r = sd.run("ip", "-o", "link", "show", "dev", name)
    assert r.returncode == 0, f"no link {name}: {r.stderr}"
    return int(r.stdout.split(":", 1)[0])


def persistent(sd: Systemd, name: str) -> bool:
    return "persist on" in sd.run("ip", "-d", "link", "show", "dev", name).stdout


def test_unit_files_verify_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """systemd-analyze verify: nothing on stderr (the unit runs this checkout's rrqctl)."""
    drop = tmp_path / "rrqnet@.service.d"
    drop.mkdir()
    (drop / "test.conf").write_text(
        unit_override()["etc/systemd/system/rrqnet@.service.d/test.conf"]
    )
    check_drop = tmp_path / "rrqnet-check.service.d"
    check_drop.mkdir()
    check_drop.joinpath("test.conf").write_text(
        f"[Service]\nExecStart=\nExecStart={BIN}/rrqctl check --quiet\n"
    )
    for f in (REPO / "units").iterdir():
        (tmp_path / f.name).write_text(f.read_text())
    env = {**os.environ, "SYSTEMD_UNIT_PATH": f"{tmp_path}:"}
    units = ("rrqnet@mynet0.service", "rrqnet.target", "rrqnet-check.service", "rrqnet-check.timer")
    for unit in units:
        r = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(tmp_path / unit)],
            capture_output=True,
            text=True,
            env=env,
        )
        assert (r.returncode, r.stderr) == (0, ""), unit


def test_exposure_score_is_at_most_2_5() -> None:
    r = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(REPO / "units" / "rrqnet@.service")],
        capture_output=True,
        text=True,
    )
    m = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", r.stdout)
    assert m, r.stdout + r.stderr
    print(f"\nsystemd-analyze security --offline=true units/rrqnet@.service: exposure {m.group(1)}")
    assert float(m.group(1)) <= 2.5


def test_service_start_kill_watchdog_reload_stop(netlab: Lab) -> None:
    p = peer(netlab)
    stanza = (
        "iface mynet0 inet manual\n    rrqnet_port 3636\n"
        "    rrqnet_remote 10.77.0.1:3636=/etc/rrqnet/keys/k\n"
    )
    files = {
        **unit_override("WatchdogSec=2\nEnvironment=RRQCTL_TEST_FAULTS=1\n"),
        **key_files(),
        "etc/network/interfaces": stanza,
    }
    key = netlab.keyfile("k")
    with open(key, "wb") as f:
        f.write(KEY)
    with booted(files) as sd:
        sd.link_to(netlab, p, "10.77.0.2/24", "10.77.0.1/24")
        start_peer_engine(netlab, p, f"={key}")
        r = sd.systemctl("start", UNIT)
        assert r.returncode == 0, r.stderr + sd.journal(UNIT)
        props = sd.show(UNIT, "ActiveState", "StatusText", "WatchdogUSec")
        assert props["ActiveState"] == "active" and props["WatchdogUSec"] == "2s"
        assert props["StatusText"].startswith("remotes ")
        sd.run("ip", "addr", "add", "10.88.0.1/24", "dev", "mynet0", check=True)
        assert sd_ping(sd, "10.88.0.2")
        index = ifindex(sd, "mynet0")

        # SIGKILL: systemd restarts it; the tap (made by the first run) is adopted
        sd.systemctl("kill", "-s", "KILL", UNIT)
        wait_for(lambda: restarts(sd) == 1 and active(sd), 20, "a restart after SIGKILL")
        assert sd_ping(sd, "10.88.0.2")

        # a wedged datapath loop: the watchdog kills it, systemd restarts it
        sd.run(
            str(REPO / ".venv/bin/python"),
            "-c",
            "from rrqctl.supervise.control import query\n"
            "try: query('/run/rrqnet/mynet0.sock', 'test-stall', timeout=1)\nexcept Exception: pass",
        )
        wait_for(lambda: restarts(sd) == 2 and active(sd), 30, "the watchdog to kill and restart")
        assert "Watchdog timeout" in sd.journal(UNIT)
        assert sd_ping(sd, "10.88.0.2")

        # reload: a new remote, same tap, same ifindex
        sd.write("/etc/network/interfaces", stanza + "    rrqnet_remote 10.77.0.9:3636\n")
        assert sd.systemctl("reload", UNIT).returncode == 0
        wait_for(
            lambda: len(json.loads(sd.rrqctl("status", "mynet0", "--json").stdout)["remotes"]) == 2,
            10,
            "the new remote",
        )
        assert ifindex(sd, "mynet0") == index  # the tap outlived two crashes
        assert sd_ping(sd, "10.88.0.2")

        # stop: what it made is gone
        assert sd.systemctl("stop", UNIT).returncode == 0
        assert "mynet0" not in sd.run("ip", "-br", "link").stdout, sd.journal(UNIT)
        left = sd.run("ls", "-A", "/run/rrqnet").stdout.split()
        assert [f for f in left if f != ".lock"] == []


def test_networkd_owns_the_tap_and_bridge_and_rrqnet_carries_the_frames(netlab: Lab) -> None:
    p = peer(netlab)
    net = "etc/systemd/network/"
    files = {
        **unit_override(),
        net + "cab0.netdev": "[NetDev]\nName=cab0\nKind=tap\n\n[X-RRQNet]\nPort=3636\n",
        net + "cab0.netdev.d/remote.conf": "[X-RRQNet]\nRemote=10.77.0.1:3636\n",
        net + "br0.netdev": "[NetDev]\nName=br0\nKind=bridge\n",
        net + "cab0.network": "[Match]\nName=cab0\n\n[Network]\nBridge=br0\n",
        net
        + "br0.network": "[Match]\nName=br0\n\n[Network]\nAddress=10.88.0.1/24\nConfigureWithoutCarrier=yes\n",
    }
    with booted(files) as sd:
        sd.link_to(netlab, p, "10.77.0.2/24", "10.77.0.1/24")
        start_peer_engine(netlab, p)
        # the cable first: it waits for networkd's tap by itself
        sd.systemctl("start", "--no-block", "rrqnet@cab0.service", check=True)
        time.sleep(1)
        assert sd.show("rrqnet@cab0.service", "ActiveState")["ActiveState"] == "activating"
        sd.systemctl(
            "start", "sysinit.target", "dbus.socket", "systemd-networkd.service", check=True
        )
        wait_for(
            lambda: sd.show("rrqnet@cab0.service", "ActiveState")["ActiveState"] == "active",
            30,
            "rrqnet@cab0 to go active once networkd made cab0",
        )
        wait_for(
            lambda: "master br0" in sd.run("ip", "link", "show", "cab0").stdout, 20, "cab0 in br0"
        )
        assert "tun type tap" in sd.run("ip", "-d", "link", "show", "cab0").stdout
        assert sd_ping(sd, "10.88.0.2")
        st = json.loads(sd.rrqctl("status", "cab0", "--json").stdout)
        assert st["remotes"][0]["rx_frames"] >= 2
        assert sd.systemctl("stop", "rrqnet@cab0.service").returncode == 0
        time.sleep(0.2)
        assert "cab0" in sd.run("ip", "-br", "link").stdout  # networkd's tap stays: not ours


def test_a_stop_in_the_restart_delay_removes_the_tap_and_check_the_rest(netlab: Lab) -> None:
    """Killed, then stopped before systemd restarts it: no engine is left to tear down. The
    tap goes with systemd's copy of its fd; `rrqctl check` takes away what else was left."""
    files = {
        **unit_override("RestartSec=30\n"),
        "etc/network/interfaces": "iface mynet0 inet manual\n    rrqnet_port 3636\n",
    }
    with booted(files) as sd:
        assert sd.systemctl("start", UNIT).returncode == 0, sd.journal(UNIT)
        index = ifindex(sd, "mynet0")
        assert sd.show(UNIT, "NFileDescriptorStore")["NFileDescriptorStore"] == "1"
        assert not persistent(sd, "mynet0")
        sd.systemctl("kill", "-s", "KILL", UNIT)
        wait_for(
            lambda: sd.show(UNIT, "ActiveState")["ActiveState"] == "activating",
            10,
            "the restart delay",
        )
        assert ifindex(sd, "mynet0") == index  # kept for the restart to adopt
        assert sd.systemctl("stop", UNIT).returncode == 0
        wait_for(lambda: "mynet0" not in sd.run("ip", "-br", "link").stdout, 10, "the tap to go")
        left = sd.run("ls", "-A", "/run/rrqnet").stdout.split()
        assert "mynet0.json" in left  # the record: nothing was left to remove it

        r = sd.rrqctl("check")
        said = "mynet0: unit: rrqnet@mynet0.service is stopped but left its cable set up"
        assert said in r.stdout and "mynet0: repaired" in r.stdout, r.stdout + r.stderr
        left = sd.run("ls", "-A", "/run/rrqnet").stdout.split()
        assert [f for f in left if f.startswith("mynet0")] == []  # (check's own files stay)
        assert "mynet0" not in sd.rrqctl("check").stdout


def test_a_tap_made_beforehand_stays_as_it_was(netlab: Lab) -> None:
    """Not the cable's to remove: neither the stop nor systemd's fd store takes it away."""
    files = {
        **unit_override(),
        "etc/network/interfaces": "iface mynet0 inet manual\n    rrqnet_port 3636\n",
    }
    with booted(files) as sd:
        sd.run("ip", "tuntap", "add", "dev", "mynet0", "mode", "tap", check=True)
        assert sd.systemctl("start", UNIT).returncode == 0, sd.journal(UNIT)
        assert sd.show(UNIT, "NFileDescriptorStore")["NFileDescriptorStore"] == "0"
        assert persistent(sd, "mynet0")
        assert sd.systemctl("stop", UNIT).returncode == 0
        assert "mynet0" in sd.run("ip", "-br", "link").stdout, sd.journal(UNIT)


def test_a_tap_deleted_by_hand_is_made_again_and_kept_in_the_store(netlab: Lab) -> None:
    files = {
        **unit_override(),
        "etc/network/interfaces": "iface mynet0 inet manual\n    rrqnet_port 3636\n",
    }
    with booted(files) as sd:
        assert sd.systemctl("start", UNIT).returncode == 0, sd.journal(UNIT)
        index = ifindex(sd, "mynet0")
        sd.run("ip", "link", "del", "mynet0", check=True)
        wait_for(
            lambda: "re-attached the engine to mynet0" in sd.journal(UNIT),
            20,
            "the engine to make the tap again and re-attach",
        )
        again = ifindex(sd, "mynet0")
        assert again != index
        assert not persistent(sd, "mynet0")  # made persistent, kept in the store, made not so
        sd.systemctl("kill", "-s", "KILL", UNIT)
        wait_for(lambda: active(sd) and restarts(sd) == 1, 20, "a restart")
        assert ifindex(sd, "mynet0") == again  # the new tap was kept in the store
        assert sd.systemctl("stop", UNIT).returncode == 0
        assert "mynet0" not in sd.run("ip", "-br", "link").stdout, sd.journal(UNIT)


def test_ifup_on_a_systemd_host_runs_the_cable_as_its_unit_and_ifdown_stops_it(
    netlab: Lab,
) -> None:
    """The ifupdown hook where systemd is PID 1: real ifup and ifdown, the shipped hook."""
    p = peer(netlab)
    hook = (REPO / "hooks" / "rrqnet").read_text()
    stanzas = (
        "iface mynet0 inet static\n    address 10.88.0.1/24\n    rrqnet_port 3636\n"
        "    rrqnet_remote 10.77.0.1:3636\n\n"
        "iface bad0 inet manual\n    rrqnet_port 3637\n    rrqnet_remote 10.77.0.1:99999\n"
    )
    files = {
        **unit_override("RestartSec=30\n"),
        **{f"etc/network/if-{d}.d/rrqnet": hook for d in ("pre-up", "up", "down", "post-down")},
        "etc/rrqtest/sbin/rrqctl": f'#!/bin/sh\nexec {BIN}/rrqctl "$@"\n',  # on ifup's PATH
        "etc/network/interfaces": stanzas,
    }
    with booted(files) as sd:
        sd.link_to(netlab, p, "10.77.0.2/24", "10.77.0.1/24")
        start_peer_engine(netlab, p)
        sd.run("mount", "--bind", "/etc/rrqtest/sbin", "/usr/local/sbin", check=True)
        sd.run("mkdir", "-p", "/run/network", check=True)

        r = sd.run("ifup", "-v", "mynet0")
        assert r.returncode == 0, r.stdout + r.stderr + sd.journal(UNIT)
        assert "[#] systemctl start rrqnet@mynet0.service" in r.stdout + r.stderr
        assert active(sd)
        assert sd_ping(sd, "10.88.0.2")

        def down_and_gone() -> str:
            r = sd.run("ifdown", "-v", "mynet0")
            assert r.returncode == 0, r.stdout + r.stderr + sd.journal(UNIT)
            assert sd.show(UNIT, "ActiveState")["ActiveState"] == "inactive"
            assert "mynet0" not in sd.run("ip", "-br", "link").stdout
            left = sd.run("ls", "-A", "/run/rrqnet").stdout.split()
            assert not [f for f in left if "mynet0" in f], left
            return r.stdout + r.stderr

        assert "its engine had died" not in down_and_gone()

        # down while systemd waits to restart a crashed engine: the hook takes down the rest
        assert sd.run("ifup", "mynet0").returncode == 0, sd.journal(UNIT)
        sd.systemctl("kill", "-s", "KILL", UNIT)
        wait_for(lambda: sd.show(UNIT, "SubState")["SubState"] == "auto-restart", 10, "the delay")
        assert "rrqctl down mynet0   (its engine had died" in down_and_gone()

        r = sd.run("ifup", "bad0")
        assert r.returncode != 0
        assert "/etc/network/interfaces:8: rrqnet_remote: port 99999" in r.stderr, r.stderr
        bad = "rrqnet@bad0.service"
        assert sd.show(bad, "ActiveState", "NRestarts") == {
            "ActiveState": "inactive",
            "NRestarts": "0",
        }
        assert "bad0" not in sd.run("ip", "-br", "link").stdout
