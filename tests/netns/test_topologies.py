"""Layouts from rrqnet(8): a star through a server, and a triangle of mutual uplinks."""

from __future__ import annotations

import subprocess
import time

import pytest

from tests.netlab import Lab, wait_for

pytestmark = pytest.mark.usefixtures("datapath")  # each test on the C and the Python datapath


# A gratuitous ARP from a MAC no switch has seen yet (so no earlier binding is involved)
ARP_ANNOUNCE = bytes.fromhex(
    "ffffffffffff020000000099080600010800060400010200000000990a5a00630000000000000a5a0063"
)


def test_star_clients_reach_each_other_through_the_server(netlab: Lab) -> None:
    srv, c1, c2 = netlab.host("srv"), netlab.host("c1"), netlab.host("c2")
    netlab.link(srv, c1, ["10.70.1.1/24"], ["10.70.1.2/24"])
    netlab.link(srv, c2, ["10.70.2.1/24"], ["10.70.2.2/24"])
    netlab.ip(c1, "route", "add", "10.70.0.0/16", "via", "10.70.1.1")
    netlab.ip(c2, "route", "add", "10.70.0.0/16", "via", "10.70.2.1")
    subprocess.run(
        ["ip", "netns", "exec", srv, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True
    )
    netlab.tap(c1, "tap0", ["10.80.0.11/24"])
    netlab.tap(c2, "tap0", ["10.80.0.12/24"])
    # the server has no tap: a pure switch between its downlinks
    server = netlab.rrqnet(srv, "3636 10.70.0.0/16:3636", "server")
    netlab.rrqnet(c1, "-t tap0 3636 10.70.1.1:3636", "c1")
    netlab.rrqnet(c2, "-t tap0 3636 10.70.2.1:3636", "c2")
    wait_for(lambda: len(server.status()["remotes"]) == 2, what="two downlinks")
    assert netlab.ping(c1, "10.80.0.12")
    remotes = {r["name"]: r for r in server.status()["remotes"]}
    assert remotes["10.70.1.2:3636"]["rx_frames"] >= 3
    assert remotes["10.70.2.2:3636"]["tx_frames"] >= 3


def test_triangle_of_mutual_uplinks_pings_and_does_not_multiply_broadcasts(netlab: Lab) -> None:
    """Each host has an uplink to both others: a cycle. A broadcast must not loop."""
    names = ("x", "y", "z")
    hosts = {n: netlab.host(n) for n in names}
    addr: dict[tuple[str, str], str] = {}  # (from, to) -> to's underlay address on that link
    for i, (p, q) in enumerate([("x", "y"), ("y", "z"), ("x", "z")], start=1):
        netlab.link(
            hosts[p],
            hosts[q],
            [f"10.72.{i}.1/24"],
            [f"10.72.{i}.2/24"],
            a_if=f"to{q}",
            b_if=f"to{p}",
        )
        addr[(p, q)], addr[(q, p)] = f"10.72.{i}.2", f"10.72.{i}.1"
    engines = {}
    for i, n in enumerate(names, start=1):
        netlab.tap(hosts[n], "tap0", [f"10.90.0.{i}/24"], mac=f"02:00:00:00:00:0{i}", quiet=True)
        ups = " ".join(f"{addr[(n, m)]}:3636" for m in names if m != n)
        engines[n] = netlab.rrqnet(hosts[n], f"-v -t tap0 3636 {ups}", n)
    for n in names:
        wait_for(
            lambda n=n: all(r["state"] == "up" for r in engines[n].status()["remotes"]),
            what=f"{n}'s uplinks up",
        )
    assert netlab.ping(hosts["x"], "10.90.0.2")
    assert netlab.ping(hosts["x"], "10.90.0.3")
    before = {n: engines[n].status() for n in names}
    netlab.send_frame(hosts["x"], "tap0", ARP_ANNOUNCE)
    time.sleep(1.0)
    after = {n: engines[n].status() for n in names}

    def delta(n: str, f: str) -> int:
        return int(after[n]["local"][f] - before[n]["local"][f])

    def cut(n: str) -> int:
        return after[n]["drops"].get("binding-conflict", 0) - before[n]["drops"].get(
            "binding-conflict", 0
        )

    assert delta("x", "rx_frames") == 1  # the frame entered the cable once
    # y and z each deliver it to their tap exactly once; x never gets it back
    assert {n: delta(n, "tx_frames") for n in names} == {"x": 0, "y": 1, "z": 1}
    # y and z each forward their copy on: those two second copies are what the binding cuts
    assert sum(cut(n) for n in names) == 2
