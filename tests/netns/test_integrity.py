"""Frames arrive intact: bulk TCP and bursts of UDP through the coalescing datapath."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.netlab import Lab, wait_for
from tests.netns.test_peers import hosts_with_taps

pytestmark = pytest.mark.usefixtures("datapath")  # each test on the C and the Python datapath


PEER = str(Path(__file__).with_name("integrity_peer.py"))


def cable(netlab: Lab, sealed: bool) -> tuple[str, str]:
    a, b = hosts_with_taps(netlab)
    key = f"={netlab.keyfile()}" if sealed else ""
    netlab.rrqnet(a, f"-t tap0 3636 10.77.0.2:3636{key}", "a")
    netlab.rrqnet(b, f"-t tap0 3636 10.77.0.1:3636{key}", "b")
    assert netlab.ping(a, "10.88.0.2")
    return a, b


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_twenty_megabytes_of_tcp_arrive_intact(netlab: Lab, sealed: bool) -> None:
    a, b = cable(netlab, sealed)
    sent, got = tcp_transfer(netlab, a, b, 20)
    assert got == sent and sent[0] == str(20 << 20)


def tcp_transfer(netlab: Lab, a: str, b: str, mb: int) -> tuple[list[str], list[str]]:
    """mb megabytes over TCP from a to b (10.88.0.2): what the sender sent and the receiver
    got, each as [bytes, sha256]."""
    recv = netlab.spawn(
        b, [sys.executable, PEER, "tcp-recv", "5001"], "tcp-recv", stdout=subprocess.PIPE
    )
    wait_for(
        lambda: (
            "5001"
            in subprocess.run(
                ["ip", "netns", "exec", b, "ss", "-tln"], capture_output=True, text=True
            ).stdout
        ),
        what="the receiver",
    )
    sent = subprocess.run(
        ["ip", "netns", "exec", a, sys.executable, PEER, "tcp-send", "10.88.0.2", "5001", str(mb)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    ).stdout.split()
    out, _ = recv.popen.communicate(timeout=60)
    return sent, out.decode().split()


@pytest.mark.parametrize("sealed", [False, True], ids=["plain", "sealed"])
def test_udp_datagrams_of_every_size_arrive_intact(netlab: Lab, sealed: bool) -> None:
    a, b = cable(netlab, sealed)
    recv = netlab.spawn(
        b, [sys.executable, "-u", PEER, "udp-recv", "5002", "2"], "udp-recv", stdout=subprocess.PIPE
    )
    assert recv.popen.stdout is not None and recv.popen.stdout.readline().strip() == b"ready"
    sent = subprocess.run(
        ["ip", "netns", "exec", a, sys.executable, PEER, "udp-send", "10.88.0.2", "5002"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    got = recv.popen.communicate(timeout=30)[0].decode().split()
    assert set(got) <= set(sent)  # nothing arrives that was not sent, byte for byte
    assert len(got) >= 0.98 * len(sent)  # and (nearly) everything arrives, on an idle veth


RELAY = str(Path(__file__).with_name("relay.py"))


def test_200_megabytes_of_tcp_arrive_intact_over_an_underlay_that_corrupts_1_percent(
    netlab: Lab,
) -> None:
    """A middlebox changes a byte in 1 % of the datagrams and recomputes their UDP checksum:
    the cable must hand no corrupted segment to TCP as checked (issue: coalesced runs)."""
    a, m, b = netlab.host("a"), netlab.host("m"), netlab.host("b")
    netlab.link(a, m, ["10.77.0.1/24"], ["10.77.0.254/24"], a_if="ua", b_if="m0")
    netlab.link(m, b, ["10.78.0.254/24"], ["10.78.0.2/24"], a_if="m1", b_if="ub")
    netlab.tap(a, "tap0", ["10.88.0.1/24"])
    netlab.tap(b, "tap0", ["10.88.0.2/24"])
    relay = netlab.spawn(
        m,
        [
            sys.executable,
            "-u",
            RELAY,
            "10.77.0.254",
            "10.78.0.254",
            "3636",
            "10.77.0.1",
            "10.78.0.2",
            "1",
        ],
        "relay",
    )
    wait_for(lambda: "ready" in relay.output(), what="the relay", proc=relay)
    netlab.rrqnet(a, "-t tap0 3636 10.77.0.254:3636", "a")
    netlab.rrqnet(b, "-t tap0 3636 10.78.0.254:3636", "b")
    assert netlab.ping(a, "10.88.0.2")
    sent, got = tcp_transfer(netlab, a, b, 200)
    relay.stop()
    carried, corrupted = (int(x) for x in relay.output().split()[-2:])
    assert corrupted > 0.005 * carried  # the underlay did corrupt
    assert got == sent and sent[0] == str(200 << 20)  # byte for byte
