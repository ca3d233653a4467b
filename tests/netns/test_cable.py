"""Two hosts, one cable: ping crosses it, plain and sealed, over IPv4 and IPv6 underlays."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from rrqctl.engine.switch import LOCAL_MAC_LIMIT, MAC_SHARE
from tests.netlab import Lab, wait_for

pytestmark = pytest.mark.usefixtures("datapath")  # each test on the C and the Python datapath

UNDERLAY = {
    4: ("10.77.0.1/24", "10.77.0.2/24", "10.77.0.1", "10.77.0.2"),
    6: ("fd77::1/64", "fd77::2/64", "[fd77::1]", "[fd77::2]"),
}
OVERLAY = {
    4: ("10.88.0.1/24", "10.88.0.2/24", "10.88.0.2"),
    6: ("fd88::1/64", "fd88::2/64", "fd88::2"),
}


def two_hosts(lab: Lab, underlay: int, overlay: int) -> tuple[str, str]:
    a, b = lab.host("a"), lab.host("b")
    ua, ub, _, _ = UNDERLAY[underlay]
    lab.link(a, b, [ua], [ub])
    oa, ob, _ = OVERLAY[overlay]
    lab.tap(a, "tap0", [oa])
    lab.tap(b, "tap0", [ob])
    return a, b


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
@pytest.mark.parametrize(
    ("underlay", "overlay"),
    [(4, 4), (6, 4), (6, 6), (4, 6)],
    ids=["v4-over-v4", "v4-over-v6", "v6-over-v6", "v6-over-v4"],
)
def test_ping_crosses_the_cable(netlab: Lab, underlay: int, overlay: int, sealed: bool) -> None:
    a, b = two_hosts(netlab, underlay, overlay)
    _, _, addr_a, addr_b = UNDERLAY[underlay]
    key = f"={netlab.keyfile()}" if sealed else ""
    ea = netlab.rrqnet(a, f"-v -t tap0 3636 {addr_b}:3636{key}", "a")
    eb = netlab.rrqnet(b, f"-v -t tap0 3636 {addr_a}:3636{key}", "b")
    assert netlab.ping(a, OVERLAY[overlay][2])
    ra = ea.status()["remotes"][0]
    rb = eb.status()["remotes"][0]
    assert ra["state"] == rb["state"] == "up"
    assert ra["sealed"] is rb["sealed"] is sealed
    # at least the 3 echo requests went out of a and came into b (and replies back)
    assert ra["tx_frames"] >= 3 and rb["rx_frames"] >= 3
    assert rb["tx_frames"] >= 3 and ra["rx_frames"] >= 3
    assert ea.status()["drops"] == {} and eb.status()["drops"] == {}


def test_ipv4_only_socket(netlab: Lab) -> None:
    a, b = two_hosts(netlab, 4, 4)
    netlab.rrqnet(a, "-4 -t tap0 3636 10.77.0.2:3636", "a")
    netlab.rrqnet(b, "-4 -t tap0 3636 10.77.0.1:3636", "b")
    assert netlab.ping(a, "10.88.0.2")


def test_downlink_is_learned_from_an_uplink_and_forgotten_sources_are_refused(netlab: Lab) -> None:
    """A 'server' with only a block declaration learns the client from its heartbeat."""
    a, b = two_hosts(netlab, 4, 4)
    server = netlab.rrqnet(a, "-t tap0 3636 10.77.0.0/24:3636", "server")
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "client")
    wait_for(lambda: server.status()["remotes"], what="the downlink to appear")
    down = server.status()["remotes"][0]
    assert (down["kind"], down["name"], down["state"]) == ("downlink", "10.77.0.2:3636", "up")
    assert netlab.ping(b, "10.88.0.1")


def test_sources_not_declared_are_dropped_and_counted(netlab: Lab) -> None:
    a, b = two_hosts(netlab, 4, 4)
    server = netlab.rrqnet(a, "-t tap0 3636 10.77.0.9:3636", "server")
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "stranger")
    wait_for(lambda: server.status()["drops"].get("no-remote", 0) >= 1, what="a no-remote drop")
    assert not netlab.ping(b, "10.88.0.1", count=1, timeout=1)
    assert server.status()["remotes"][0]["rx_frames"] == 0


def metric(text: str, name: str, **labels: str) -> float:
    """The value of the one sample of name whose labels include labels."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    found = []
    for line in text.splitlines():
        if line.startswith(name + "{") and all(w in line for w in want):
            found.append(float(line.rsplit(" ", 1)[1]))
    assert len(found) == 1, f"{name} {labels}: {found}\n{text}"
    return found[0]


def test_metrics_and_status_say_what_crossed_and_what_the_process_uses(netlab: Lab) -> None:
    a, b = two_hosts(netlab, 4, 4)
    ea = netlab.rrqnet(a, "-t tap0 3636 10.77.0.2:3636", "a")
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    before = ea.query("metrics")
    assert netlab.ping(a, "10.88.0.2", count=5)
    after = ea.query("metrics")
    for line in after.splitlines():  # Prometheus text: comments, or NAME{LABELS} VALUE
        assert line.startswith("# ") or (
            line.count("{") == 1 and float(line.rsplit(" ", 1)[1]) >= 0
        )
    channel = {"cable": "tap0", "channel": "10.77.0.2:3636", "direction": "tx"}
    sent = metric(after, "rrqnet_channel_frames_total", **channel)
    assert sent >= 5 + metric(before, "rrqnet_channel_frames_total", **channel)
    assert metric(after, "rrqnet_channel_up", channel="10.77.0.2:3636") == 1
    rss = metric(after, "rrqnet_resident_memory_bytes", cable="tap0")
    assert 5 << 20 < rss < 40 << 20
    assert metric(after, "rrqnet_cpu_seconds_total", cable="tap0") > 0
    st = ea.status()
    assert st["pid"] == ea.pid and 5 << 20 < st["rss_bytes"] < 40 << 20


FLOOD = """
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("tap0", 0))
for i in range(int(sys.argv[1])):
    s.send(b"\\xff" * 6 + (0x020000000000 + 0x10000 + i).to_bytes(6, "big") + b"\\x88\\xb5" + bytes(46))
    if i % 128 == 127:
        time.sleep(0.005)  # a tap drops what its reader has not taken when its queue is full
"""


def test_a_flood_of_made_up_source_macs_fills_the_table_to_its_limit_and_the_cable_works_on(
    netlab: Lab,
) -> None:
    a, b = two_hosts(netlab, 4, 4)
    ea = netlab.rrqnet(a, "-t tap0 3636 10.77.0.2:3636", "a")
    eb = netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    assert netlab.ping(a, "10.88.0.2")  # both taps' MACs learned at both ends
    before = eb.status()
    flood = [sys.executable, "-c", FLOOD, str(LOCAL_MAC_LIMIT + 1000)]
    subprocess.run(["ip", "netns", "exec", b, *flood], check=True)

    def taken() -> int:  # flood frames the engine read from its tap, once it has read them all
        seen = [eb.status()["local"]["rx_frames"] for _ in range(2) if not time.sleep(0.3)]
        return seen[1] - before["local"]["rx_frames"] if seen[0] == seen[1] else 0

    n = wait_for(taken, what="the engine to read the flood")
    assert n > LOCAL_MAC_LIMIT  # the tap may drop some, but not this many
    st = eb.status()
    local = [m for m in st["macs"] if m["channel"] == "tap0"]
    assert len(local) == LOCAL_MAC_LIMIT  # the local end's room, full
    learned = [m for m in local if m["mac"].startswith("02:00:00:01:")]
    assert len(learned) == LOCAL_MAC_LIMIT - 1  # the flood took what was left (tap0's own: 1)
    assert list(st["drops"]) == ["mac-table-full"]  # and every other frame of it was dropped:
    assert 0 <= n - len(learned) - st["drops"]["mac-table-full"] <= 20  # (n: the tap's own too)
    assert st["rss_bytes"] < 40 << 20
    # a took b's share of its table, no more, and its own tap's MACs are still learned
    from_b = [m for m in ea.status()["macs"] if m["channel"] == "10.77.0.2:3636"]
    assert len(from_b) == MAC_SHARE
    assert ea.status()["drops"].get("mac-table-full", 0) > 0
    assert netlab.ping(a, "10.88.0.2") and netlab.ping(b, "10.88.0.1")  # known MACs still switch
