"""Frames arrive intact: bulk TCP and bursts of UDP through the coalescing datapath."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.netlab import Lab, wait_for
from tests.netns.test_peers import hosts_with_taps

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
        ["ip", "netns", "exec", a, sys.executable, PEER, "tcp-send", "10.88.0.2", "5001", "20"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout.split()
    out, _ = recv.popen.communicate(timeout=60)
    assert out.decode().split() == sent and sent[0] == str(20 << 20)


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
