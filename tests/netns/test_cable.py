"""Two hosts, one cable: ping crosses it, plain and sealed, over IPv4 and IPv6 underlays."""

from __future__ import annotations

import pytest

from tests.netlab import Lab, wait_for

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
