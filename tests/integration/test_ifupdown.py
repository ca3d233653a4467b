"""`ifup mynet0` / `ifdown mynet0` with Debian's real ifupdown and the repo's hook."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.ifupdown import IfupdownHost
from tests.netlab import BIN, Lab, wait_for

SCRIPT = Path(__file__).parents[1] / "data" / "dhclient-script"


def underlay(lab: Lab, *names: str) -> list[str]:
    """Hosts on one underlay segment (a bridge in the first host's namespace is overkill:
    a chain of veths from the first host is enough for two or three)."""
    hosts = [lab.host(n) for n in names]
    for i, h in enumerate(hosts[1:], start=2):
        lab.link(
            hosts[0],
            h,
            [f"10.77.{i}.1/24"],
            [f"10.77.{i}.2/24"],
            a_if=f"to{names[i - 1]}",
            b_if="up0",
        )
    return hosts


def stanza(name: str, *options: str, method: str = "manual", head: str = "") -> str:
    return head + f"iface {name} inet {method}\n" + "".join(f"    {o}\n" for o in options)


def test_ifup_brings_up_a_sealed_cable_between_two_hosts_and_ifdown_leaves_nothing(
    netlab: Lab,
) -> None:
    a, b = underlay(netlab, "a", "b")
    key = netlab.keyfile()
    ha = IfupdownHost(
        netlab,
        a,
        stanza(
            "mynet0",
            "address 10.88.0.1/24",
            "rrqnet_port 3636",
            f"rrqnet_remote 10.77.2.2:3636={key}",
            method="static",
        ),
    )
    hb = IfupdownHost(
        netlab,
        b,
        stanza(
            "mynet0",
            "address 10.88.0.2/24",
            "rrqnet_port 3636",
            f"rrqnet_remote 10.77.2.1:3636={key}",
            method="static",
        ),
    )
    for h in (ha, hb):
        r = h.ifup("mynet0")
        assert r.returncode == 0, r.stderr
        assert h.state() == "mynet0=mynet0\n"
    assert netlab.ping(a, "10.88.0.2")
    st = netlab.ip(a, "-4", "addr", "show", "mynet0")
    assert "10.88.0.1/24" in st
    for h in (ha, hb):
        assert h.leftovers()["files"] == ["mynet0.json", "mynet0.pid", "mynet0.sock"]
        r = h.ifdown("mynet0")
        assert r.returncode == 0, r.stderr
        assert h.leftovers() == {"link": False, "pids": [], "files": []}
        assert h.state() == ""


def test_the_seed_example_stanza_comes_up_and_logs_to_its_file(netlab: Lab) -> None:
    """rrqnet-ifupdown.sh(8)'s example (with real addresses): -4 -B 10 -T 1, -v to a file."""
    a, b = underlay(netlab, "a", "b")
    key = netlab.keyfile("mynet.key")
    log = netlab.dir / "mynet0.log"
    ha = IfupdownHost(
        netlab,
        a,
        stanza(
            "mynet0",
            "address 10.88.0.1/24",
            "rrqnet_port 3636",
            "rrqnet_options -4 -B 10 -T 1",
            f"rrqnet_remote 10.77.2.2:3636={key}",
            f"rrqnet_log -v {log}",
            method="static",
        ),
    )
    netlab.tap(b, "tap0", ["10.88.0.2/24"])
    netlab.rrqnet(b, f"-4 -t tap0 3636 10.77.2.1:3636={key}", "b")
    assert ha.ifup("mynet0").returncode == 0
    assert netlab.ping(a, "10.88.0.2")
    text = wait_for(
        lambda: log.exists() and "is up" in log.read_text() and log.read_text(), what="log lines"
    )
    assert "uplink 10.77.2.2:3636 added (sealed)" in text
    assert "uplink 10.77.2.2:3636 is up" in text
    cmd = (ha.run / "mynet0.json").read_text()
    assert '"ipv4_only": true' in cmd and '"buffers": 10' in cmd and '"threads": 1' in cmd
    assert ha.ifdown("mynet0").returncode == 0


def test_two_remote_lines_give_two_remotes(netlab: Lab) -> None:
    (a,) = underlay(netlab, "a")
    ha = IfupdownHost(
        netlab,
        a,
        stanza(
            "mynet0",
            "rrqnet_port 3636",
            "rrqnet_remote 10.77.9.1:3636",
            "rrqnet_remote 10.77.9.2:3636",
        ),
    )
    assert ha.ifup("mynet0").returncode == 0
    from rrqctl.supervise.control import query

    remotes = query(str(ha.run / "mynet0.sock"))["remotes"]
    assert [r["name"] for r in remotes] == ["10.77.9.1:3636", "10.77.9.2:3636"]
    assert ha.ifdown("mynet0").returncode == 0


def test_bridge_option_makes_the_tap_a_port_of_the_bridge(netlab: Lab) -> None:
    (a,) = underlay(netlab, "a")
    netlab.ip(a, "link", "add", "br0", "type", "bridge")
    ha = IfupdownHost(
        netlab,
        a,
        stanza("mynet0", "rrqnet_port 3636", "rrqnet_remote 10.77.9.1:3636", "rrqnet_bridge br0"),
    )
    assert ha.ifup("mynet0").returncode == 0
    assert "master br0" in netlab.ip(a, "link", "show", "mynet0")
    assert ha.ifdown("mynet0").returncode == 0
    assert "mynet0" not in netlab.links(a)


def test_dhcp_option_gets_a_lease_from_dnsmasq_across_the_cable_and_ifdown_releases_it(
    netlab: Lab,
) -> None:
    a, b = underlay(netlab, "a", "b")
    netlab.tap(b, "tap0", ["10.88.0.1/24"])
    netlab.rrqnet(b, "-t tap0 3636 10.77.2.1:3636", "b")
    _, log, leases = netlab.dnsmasq(b, "tap0", "10.88.0.50", "10.88.0.99")
    ha = IfupdownHost(
        netlab,
        a,
        stanza(
            "mynet0",
            "rrqnet_port 3636",
            "rrqnet_remote 10.77.2.2:3636",
            f"rrqnet_dhcp dhclient -4 -cf /dev/null -sf {SCRIPT}",
        ),
    )
    r = ha.ifup("mynet0")
    assert r.returncode == 0, r.stderr
    lease = wait_for(
        lambda: re.search(
            r"inet (10\.88\.0\.\d+)/24", netlab.ip(a, "-4", "addr", "show", "mynet0")
        ),
        15,
        "a lease on mynet0",
    )
    assert netlab.ping(a, "10.88.0.1")
    assert "dhclient.pid" in " ".join(ha.leftovers()["files"])  # type: ignore[arg-type]
    assert ha.ifdown("mynet0").returncode == 0
    assert f"DHCPRELEASE(tap0) {lease.group(1)}" in log.read_text()
    assert lease.group(1) not in leases.read_text()
    assert ha.leftovers() == {"link": False, "pids": [], "files": []}


def test_notap_cable_switches_between_its_remotes(netlab: Lab) -> None:
    hub, c1, c2 = underlay(netlab, "hub", "c1", "c2")
    hh = IfupdownHost(
        netlab, hub, stanza("hub0", "rrqnet_port notap 3636", "rrqnet_remote 10.77.0.0/16:3636")
    )
    r = hh.ifup("hub0")
    assert r.returncode == 0, r.stderr
    assert "hub0" not in netlab.links(hub)
    for ns, n in ((c1, 2), (c2, 3)):
        netlab.tap(ns, "tap0", [f"10.88.0.{n}/24"])
        netlab.rrqnet(ns, f"-t tap0 3636 10.77.{n}.1:3636", f"client{n}")
    assert netlab.ping(c1, "10.88.0.3")  # c1 reaches c2 through the hub
    from rrqctl.supervise.control import query

    st = query(str(hh.run / "hub0.sock"))
    assert st["local"] is None and len(st["remotes"]) == 2
    assert hh.ifdown("hub0").returncode == 0
    assert hh.leftovers("hub0") == {"link": False, "pids": [], "files": []}


def test_ifup_a_and_ifdown_a_handle_every_auto_cable(netlab: Lab) -> None:
    (a,) = underlay(netlab, "a")
    text = (
        stanza("cab1", "rrqnet_port 3601", "rrqnet_remote 10.77.9.1:3601", head="auto cab1\n")
        + stanza("cab2", "rrqnet_port 3602", "rrqnet_remote 10.77.9.1:3602", head="auto cab2\n")
        + stanza("cab3", "rrqnet_port 3603", "rrqnet_remote 10.77.9.1:3603")
    )
    ha = IfupdownHost(netlab, a, text)
    r = ha.ifup("-a")
    assert r.returncode == 0, r.stderr
    links = netlab.links(a)
    assert "cab1" in links and "cab2" in links and "cab3" not in links
    assert sorted(ha.state().split()) == ["cab1=cab1", "cab2=cab2", "lo=lo"]
    assert ha.ifdown("-a").returncode == 0
    assert "cab1" not in netlab.links(a) and "cab2" not in netlab.links(a)
    assert netlab.pids(a) == []


def test_a_stanza_with_an_error_fails_ifup_names_the_line_and_leaves_nothing(netlab: Lab) -> None:
    (a,) = underlay(netlab, "a")
    ha = IfupdownHost(
        netlab,
        a,
        stanza("mynet0", "rrqnet_port 3636", "rrqnet_remote 10.77.9.1:99999", "rrqnet_nice 5"),
    )
    r = ha.ifup("mynet0")
    assert r.returncode != 0
    assert (
        "rrqctl: /etc/network/interfaces:3: rrqnet_remote: port 99999 is out of range 1-65535\n"
        in r.stderr
    )
    assert ha.leftovers() == {"link": False, "pids": [], "files": []}
    assert ha.state() == ""


def test_check_leaves_alone_a_cable_that_ifdown_is_taking_down(netlab: Lab) -> None:
    """ifup and ifdown hold ifupdown's lock on the interface from start to end; cron's check
    must not 'repair' a cable in the middle of that (here: bring back the engine ifdown is
    about to stop), and must not bring it back once ifdown is done."""
    (a,) = underlay(netlab, "a")
    gate = netlab.dir / "ifdown-may-go-on"
    ha = IfupdownHost(
        netlab,
        a,
        stanza(
            "mynet0",
            "address 10.88.0.1/24",
            "rrqnet_port 3636",
            "rrqnet_remote 10.77.9.1:3636",
            f"pre-down while [ ! -e {gate} ]; do sleep 0.1; done",
            method="static",
            head="auto mynet0\n",
        ),
    )
    assert ha.ifup("mynet0").returncode == 0
    pid = int((ha.run / "mynet0.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid not in engines(netlab, a), what="the engine to die")
    with ThreadPoolExecutor(1) as pool:
        down = pool.submit(ha.ifdown, "mynet0")
        wait_for(lambda: "mynet0" not in ha.state(), what="ifdown to begin")
        r = ha.check()
        assert (r.returncode, r.stderr) == (0, "")
        assert r.stdout == "mynet0: ifupdown: ifup or ifdown is changing it; left to them\n"
        assert engines(netlab, a) == []
        gate.touch()
        assert down.result(60).returncode == 0
    nothing = {"link": False, "pids": [], "files": ["check.json", "check.lock"]}  # check's own
    assert ha.leftovers() == nothing
    r = ha.check()
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    assert ha.leftovers() == nothing
    assert json.loads((ha.run / "check.json").read_text())["attempts"] == {}


def engines(lab: Lab, ns: str) -> list[int]:
    """Engine processes (rrqctl run) in ns."""
    out = []
    for p in lab.pids(ns):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")
            if b"run" in argv and any(x.endswith(b"rrqctl") for x in argv):
                out.append(p)
    return out


def test_ifup_finds_rrqctl_installed_from_pypi_where_ifupdowns_path_does_not(
    netlab: Lab,
) -> None:
    """`pip install` into a venv, `rrqctl install --root`: ifupdown's PATH has no rrqctl, so
    the hook calls the one install was run as (written into it)."""
    (a,) = underlay(netlab, "a")
    text = stanza("mynet0", "address 10.88.0.1/24", "rrqnet_port 3636", method="static")
    ha = IfupdownHost(netlab, a, text + stanza("other0", "rrqnet_prot 3637"), installed=True)
    hook = (ha.dir / "etc-network" / "if-pre-up.d" / "rrqnet").read_text()
    assert f"RRQCTL={BIN}/rrqctl\n" in hook
    r = ha.ifup("mynet0")
    assert r.returncode == 0, r.stderr
    assert "10.88.0.1/24" in netlab.ip(a, "-4", "addr", "show", "mynet0")
    assert engines(netlab, a)
    # a typo in rrqnet_port itself: said with its line, through the same hook (issue 24.5)
    r = ha.ifup("other0")
    assert r.returncode != 0
    assert (
        "rrqctl: /etc/network/interfaces:5: unknown option rrqnet_prot; "
        "did you mean rrqnet_port?\n" in r.stderr
    ), r.stderr
    assert "other0" not in netlab.links(a)
    assert ha.ifdown("mynet0").returncode == 0
    assert ha.leftovers() == {"link": False, "pids": [], "files": []}


def test_a_typo_in_rrqnet_port_fails_ifup_with_its_line_and_a_guess(netlab: Lab) -> None:
    (a,) = underlay(netlab, "a")
    ha = IfupdownHost(
        netlab, a, stanza("mynet0", "rrqnet_prot 3636", "rrqnet_remote 10.77.9.1:3636")
    )
    r = ha.ifup("mynet0")
    assert r.returncode != 0
    assert r.stderr.startswith(
        "rrqctl: /etc/network/interfaces:2: unknown option rrqnet_prot; did you mean rrqnet_port?\n"
    ), r.stderr
    assert ha.leftovers() == {"link": False, "pids": [], "files": []}
    assert ha.state() == ""
    r = ha.ifdown("mynet0")
    assert (r.returncode, r.stderr) == (0, "ifdown: interface mynet0 not configured\n")


def test_two_stanzas_for_one_cable_fail_ifup_as_show_does(netlab: Lab) -> None:
    (a,) = underlay(netlab, "a")
    ha = IfupdownHost(
        netlab,
        a,
        stanza("mynet0", "rrqnet_port 3636", "rrqnet_remote 10.77.9.1:3636")
        + stanza("mynet0", "rrqnet_port 3637"),
    )
    r = ha.ifup("mynet0")
    assert r.returncode != 0
    assert "rrqctl: /etc/network/interfaces:5: rrqnet_port given twice (first at " in r.stderr
    assert ha.leftovers() == {"link": False, "pids": [], "files": []}
    assert ha.state() == ""


def test_an_address_family_stanza_of_a_cable_is_not_taken_for_a_typo(netlab: Lab) -> None:
    """iface mynet0 inet static + iface mynet0 inet6 static: one cable, two stanzas; the hook
    runs for each, and the one without rrqnet_port has nothing to do."""
    (a,) = underlay(netlab, "a")
    ha = IfupdownHost(
        netlab,
        a,
        stanza("mynet0", "address 10.88.0.1/24", "address 10.88.0.9/24", "rrqnet_port 3636",
               method="static")
        + "iface mynet0 inet6 static\n    address fd88::1/64\n    rrqnet_nice 5\n"
        "    rrqnet_mtu 1380\n    rrqnet_remote 10.77.9.1:3636\n",
    )  # fmt: skip
    plan = ha.rrqctl("plan", "mynet0")
    assert plan.stdout.startswith(
        "[#] ifup mynet0   (as `rrqctl up` would; then its hook and ifup do:)\n"
    ), plan.stdout
    r = ha.ifup("mynet0")
    assert r.returncode == 0, r.stderr
    assert "fd88::1/64" in netlab.ip(a, "-6", "addr", "show", "mynet0")
    # the options of both stanzas are the cable's, as show reads them
    assert "mtu 1380" in netlab.ip(a, "link", "show", "mynet0")
    record = (ha.run / "mynet0.json").read_text()
    assert "10.77.9.1" in record and '"nice": 5' in record, record
    # a line ifup ignores is said once (in pre-up), not once per stanza and phase
    warning = "/etc/network/interfaces:3: warning: ifup gives a stanza its first address only"
    assert r.stderr.count(warning) == 1, r.stderr
    assert ha.ifdown("mynet0").returncode == 0
    assert ha.leftovers() == {"link": False, "pids": [], "files": []}


def test_rrqctl_up_and_down_of_a_stanza_go_through_ifup_and_ifdown(netlab: Lab) -> None:
    """One owner: ifupdown's record of what is up stays true whichever command is used."""
    (a,) = underlay(netlab, "a")
    text = stanza("mynet0", "address 10.88.0.1/24", "rrqnet_port 3636", method="static")
    ha = IfupdownHost(netlab, a, text)
    r = ha.rrqctl("up", "mynet0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"[#] ifup mynet0 --state-dir {ha.dir}/state\n")
    assert ha.state() == "mynet0=mynet0\n"
    assert "10.88.0.1/24" in netlab.ip(a, "-4", "addr", "show", "mynet0")
    r = ha.ifdown("mynet0")
    assert r.returncode == 0, r.stderr
    assert ha.leftovers() == {"link": False, "pids": [], "files": []}

    assert ha.ifup("mynet0").returncode == 0
    r = ha.rrqctl("down", "mynet0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith(f"[#] ifdown mynet0 --state-dir {ha.dir}/state\n")
    assert ha.state() == ""
    assert ha.leftovers() == {"link": False, "pids": [], "files": []}
    r = ha.rrqctl("up", "mynet0")
    assert r.returncode == 0, r.stdout + r.stderr
    assert ha.leftovers()["files"] == ["mynet0.json", "mynet0.pid", "mynet0.sock"]
    assert ha.ifdown("mynet0").returncode == 0
