"""No IP fragments by default: taps sized to the path, DF on every datagram, path MTUs
learned, and a frame too big for the path answered as a router would."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.netlab import Lab, sh
from tests.netns.test_integrity import tcp_transfer

pytestmark = pytest.mark.usefixtures("datapath")  # each test on the C and the Python datapath


PLAIN_ROOM, SEALED = 20 + 8 + 14, 32  # IPv4 + UDP + Ethernet; what sealing adds


def frag_creates(ns: str) -> int:
    """IP fragments this namespace has made so far (/proc/net/snmp, Ip: FragCreates)."""
    text = sh(["ip", "netns", "exec", ns, "cat", "/proc/net/snmp"])
    head, values = (line.split() for line in text.splitlines() if line.startswith("Ip:"))
    return int(values[head.index("FragCreates")])


def ping_df(ns: str, addr: str, size: int, count: int = 3) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "ping",
            "-M",
            "do",
            "-s",
            str(size),
            "-c",
            str(count),
            "-i",
            "0.2",
            "-W",
            "2",
            addr,
        ],
        capture_output=True,
        text=True,
    )


def up_cable(lab: Lab, ns: str, addr: str, peer: str, key: str | None) -> int:
    """`rrqctl up` of a cable declared without an MTU; the tap's MTU as it made it."""
    sealed = f"={key}" if key else ""
    lab.write_interfaces(
        ns,
        f"iface mynet0 inet manual\n    rrqnet_port 3636\n    rrqnet_remote {peer}:3636{sealed}\n",
    )
    lab.rrqctl(ns, "up", "mynet0")
    lab.ip(ns, "addr", "add", addr, "dev", "mynet0")
    out = lab.ip(ns, "link", "show", "mynet0")
    return int(re.search(r"mtu (\d+)", out).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("underlay", "sealed"), [(1500, False), (1400, False), (1500, True)], ids=str
)
def test_a_cable_with_no_mtu_declared_carries_full_size_frames_whole(
    netlab: Lab, underlay: int, sealed: bool
) -> None:
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"], a_if="ua", b_if="ub")
    for ns, dev in ((a, "ua"), (b, "ub")):
        netlab.ip(ns, "link", "set", dev, "mtu", str(underlay))
    key = netlab.keyfile() if sealed else None
    mtu_a = up_cable(netlab, a, "10.88.0.1/24", "10.77.0.2", key)
    mtu_b = up_cable(netlab, b, "10.88.0.2/24", "10.77.0.1", key)
    assert mtu_a == mtu_b == underlay - PLAIN_ROOM - (SEALED if sealed else 0)
    before = frag_creates(a), frag_creates(b)
    for ns, addr in ((a, "10.88.0.2"), (b, "10.88.0.1")):
        r = ping_df(ns, addr, mtu_a - 28)
        assert r.returncode == 0, r.stdout + r.stderr  # full size, DF set, both ways
    sent, got = tcp_transfer(netlab, a, b, 20)
    assert got == sent
    assert (frag_creates(a), frag_creates(b)) == before  # no fragment made on either host


def test_a_narrower_hop_that_drops_fragments_is_found_and_answered_with_icmp(
    netlab: Lab,
) -> None:
    """a -(1500)- r -(1400)- b, r dropping every fragment: a's tap is sized to its own link,
    the path is narrower. The first frames too big draw ICMP from r; the engine learns the
    path MTU and answers the next ones with ICMP into the tap, so TCP in a finds the MSS
    that fits, and the ping that is too big is told so."""
    a, r, b = netlab.host("a"), netlab.host("r"), netlab.host("b")
    netlab.link(a, r, ["10.77.0.1/24"], ["10.77.0.254/24"], a_if="ua", b_if="r0")
    netlab.link(r, b, ["10.78.0.254/24"], ["10.78.0.2/24"], a_if="r1", b_if="ub")
    for ns, dev in ((r, "r1"), (b, "ub")):
        netlab.ip(ns, "link", "set", dev, "mtu", "1400")
    netlab.ip(a, "route", "add", "10.78.0.0/24", "via", "10.77.0.254")
    netlab.ip(b, "route", "add", "10.77.0.0/24", "via", "10.78.0.254")
    sh(["ip", "netns", "exec", r, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
    sh(["ip", "netns", "exec", r, "iptables-legacy", "-A", "FORWARD", "-f", "-j", "DROP"])
    mtu_a = up_cable(netlab, a, "10.88.0.1/24", "10.78.0.2", None)
    up_cable(netlab, b, "10.88.0.2/24", "10.77.0.1", None)
    assert mtu_a == 1500 - PLAIN_ROOM  # what a can see of the path
    sent, got = tcp_transfer(netlab, a, b, 20)
    assert got == sent  # TCP flows, over a path narrower than the tap
    fits = 1400 - PLAIN_ROOM
    said = ""
    for _ in range(5):  # the ping that does not fit is told so, by ICMP into a's namespace
        r_ping = ping_df(a, "10.88.0.2", mtu_a - 28, count=1)
        said += r_ping.stdout + r_ping.stderr
        if f"mtu = {fits}" in said or f"mtu={fits}" in said:
            break
    assert f"mtu = {fits}" in said or f"mtu={fits}" in said, said
    assert f"mtu {fits}" in netlab.ip(a, "route", "get", "10.88.0.2")  # a's kernel learned it
    assert ping_df(a, "10.88.0.2", fits - 28).returncode == 0
    status = netlab.rrqctl(a, "status", "mynet0", "--json").stdout
    assert '"too-big"' in status and '"path_mtu": 1400' in status
    assert frag_creates(a) == frag_creates(b) == frag_creates(r) == 0


def test_bare_rrqnet_lets_datagrams_fragment_as_upstream_does(netlab: Lab) -> None:
    """rrqnet(8)'s behaviour, unless RRQNET_PMTU=1: the tap left as it is, fragments made."""
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"])
    netlab.tap(a, "tap0", ["10.88.0.1/24"])
    netlab.tap(b, "tap0", ["10.88.0.2/24"])
    netlab.rrqnet(a, "-t tap0 3636 10.77.0.2:3636", "a")
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    assert ping_df(a, "10.88.0.2", 1472).returncode == 0
    assert frag_creates(a) > 0
