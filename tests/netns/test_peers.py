"""Real foreign peers: vdeplug4 over UDP, dpipe + vde_plug over stdio, multicast groups."""

from __future__ import annotations

import time

import pytest

from tests.netlab import BIN, Lab, wait_for
from tests.netns.test_topologies import ARP_ANNOUNCE

pytestmark = pytest.mark.usefixtures("datapath")  # each test on the C and the Python datapath


def hosts_with_taps(lab: Lab, quiet: bool = False) -> tuple[str, str]:
    a, b = lab.host("a"), lab.host("b")
    lab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"], a_if="ua", b_if="ub")
    lab.tap(a, "tap0", ["10.88.0.1/24"], quiet=quiet)
    lab.tap(b, "tap0", ["10.88.0.2/24"], quiet=quiet)
    return a, b


def test_uplink_to_vde_plug_udp(netlab: Lab) -> None:
    """vde_plug udp:// sends one raw frame per datagram: rrqnet's plain format."""
    a, b = hosts_with_taps(netlab)
    eng = netlab.rrqnet(a, "-t tap0 3636 10.77.0.2:5000", "engine")
    netlab.spawn(b, ["vde_plug", "udp://5000->10.77.0.1:3636", "tap://tap0"], "vde_plug")
    assert netlab.ping(a, "10.88.0.2")
    up = eng.status()["remotes"][0]
    assert up["state"] == "up" and up["rx_frames"] >= 3 and up["tx_frames"] >= 3


def test_dpipe_rrqnet_stdio_with_vde_plug_tap(netlab: Lab) -> None:
    """dpipe rrqnet -t - ... = vde_plug tap://tap0: the VDE stream format on stdin/stdout."""
    a, b = hosts_with_taps(netlab)
    control = netlab.dir / "stdio.sock"
    netlab.spawn(
        a,
        [
            "dpipe",
            str(BIN / "rrqnet"),
            "-v",
            "-t",
            "-",
            "3636",
            "10.77.0.2:3636",
            "=",
            "vde_plug",
            "tap://tap0",
        ],
        "dpipe",
        env={"RRQNET_CONTROL": str(control)},
    )
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    assert netlab.ping(a, "10.88.0.2")
    from rrqctl.supervise.control import query

    st = query(str(control))
    assert st["local"]["kind"] == "stdio"
    assert st["local"]["rx_frames"] >= 3 and st["local"]["tx_frames"] >= 3


def multicast_route(lab: Lab, *hosts_ifs: tuple[str, str]) -> None:
    for ns, ifname in hosts_ifs:
        lab.ip(ns, "route", "add", "224.0.0.0/4", "dev", ifname)


def test_two_engines_on_one_multicast_group(netlab: Lab) -> None:
    a, b = hosts_with_taps(netlab)
    multicast_route(netlab, (a, "ua"), (b, "ub"))
    ea = netlab.rrqnet(a, "-v -m 239.77.0.1:4000 -t tap0 3636", "a")
    eb = netlab.rrqnet(b, "-v -m 239.77.0.1:4000 -t tap0 3636", "b")
    assert netlab.ping(a, "10.88.0.2")
    for e in (ea, eb):
        mc = e.status()["remotes"][0]
        assert mc["kind"] == "multicast" and mc["rx_frames"] >= 3 and mc["tx_frames"] >= 3
        # our own datagrams come back (multicast loop is on, as QEMU needs): never as frames
        assert e.status()["drops"].get("binding-conflict", 0) == 0


def test_sealed_multicast_group(netlab: Lab) -> None:
    a, b = hosts_with_taps(netlab)
    multicast_route(netlab, (a, "ua"), (b, "ub"))
    key = netlab.keyfile()
    netlab.rrqnet(a, f"-m 239.77.0.2:4000={key} -t tap0 3636", "a")
    eb = netlab.rrqnet(b, f"-m 239.77.0.2:4000={key} -t tap0 3636", "b")
    assert netlab.ping(a, "10.88.0.2")
    assert eb.status()["remotes"][0]["sealed"] is True


def test_multicast_plus_unicast_cycle_is_cut_by_binding(netlab: Lab) -> None:
    """Two paths between two engines (the group and mutual uplinks) form a loop:
    each broadcast arrives twice, and the binding rule must drop the second copy."""
    a, b = hosts_with_taps(netlab, quiet=True)
    multicast_route(netlab, (a, "ua"), (b, "ub"))
    ea = netlab.rrqnet(a, "-m 239.77.0.3:4000 -t tap0 3636 10.77.0.2:3636", "a")
    eb = netlab.rrqnet(b, "-m 239.77.0.3:4000 -t tap0 3636 10.77.0.1:3636", "b")
    wait_for(lambda: eb.status()["remotes"][1]["state"] == "up", what="b's uplink up")
    assert netlab.ping(a, "10.88.0.2")
    before = eb.status()
    netlab.send_frame(a, "tap0", ARP_ANNOUNCE)
    time.sleep(1.0)
    after = eb.status()
    assert after["local"]["tx_frames"] - before["local"]["tx_frames"] == 1
    cut = after["drops"].get("binding-conflict", 0) - before["drops"].get("binding-conflict", 0)
    assert cut == 1
    assert ea.status()["local"]["tx_frames"] >= 3  # and a still hears its ping replies
