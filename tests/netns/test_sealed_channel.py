"""A sealed channel delivers only authentic, fresh datagrams: counters prove it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.netlab import Lab, wait_for
from tests.netns.test_topologies import ARP_ANNOUNCE

SENDER = Path(__file__).with_name("sealed_sender.py")
ROOT = Path(__file__).parents[2]


def send(lab: Lab, ns: str, key: str, *actions: str) -> None:
    subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            ns,
            sys.executable,
            str(SENDER),
            key,
            "10.77.0.1",
            "3636",
            "10.77.0.2",
            "3636",
            ARP_ANNOUNCE.hex(),
            *actions,
        ],
        check=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT)},
    )


def setup(lab: Lab, remote: str) -> tuple[str, str, object]:
    a, b = lab.host("a"), lab.host("b")
    lab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"])
    lab.tap(b, "tap0", ["10.88.0.2/24"], quiet=True)
    key = lab.keyfile()
    eng = lab.rrqnet(b, f"-t tap0 3636 {remote}={key}", "b")
    return a, key, eng


def test_other_key_replay_and_truncation_are_dropped_and_never_delivered(netlab: Lab) -> None:
    a, key, eng = setup(netlab, "10.77.0.1:3636")
    send(
        netlab,
        a,
        key,
        "handshake",
        "other-key",
        "truncated",
        "good",
        "replay",
        "replay",
        "other-key",
    )
    time.sleep(0.5)
    st = eng.status()  # type: ignore[attr-defined]
    assert st["local"]["tx_frames"] == 1  # the one genuine frame reached the tap, once
    assert st["remotes"][0]["rx_frames"] == 1
    assert st["drops"] == {"bad-mac": 2, "replay": 2, "truncated": 1}
    assert st["remotes"][0]["drops"] == st["drops"]


def test_junk_never_creates_a_downlink(netlab: Lab) -> None:
    a, key, eng = setup(netlab, "10.77.0.0/24:3636")
    send(netlab, a, key, "other-key", "truncated", "other-key")
    time.sleep(0.3)
    st = eng.status()  # type: ignore[attr-defined]
    assert st["remotes"] == []
    assert st["local"]["tx_frames"] == 0
    assert st["drops"] == {"bad-mac": 2, "truncated": 1}
    send(netlab, a, key, "handshake")  # a handshake, confirmed, does make the downlink
    wait_for(lambda: eng.status()["remotes"], what="the downlink")  # type: ignore[attr-defined]
    assert eng.status()["remotes"][0]["rx_heartbeats"] == 1  # type: ignore[attr-defined]


def test_plain_datagrams_on_a_sealed_channel_are_dropped(netlab: Lab) -> None:
    a, key, eng = setup(netlab, "10.77.0.1:3636")
    code = (
        "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);"
        "s.bind(('10.77.0.1', 3636)); s.sendto(bytes.fromhex(sys.argv[1]), ('10.77.0.2', 3636));"
        "s.sendto(b'', ('10.77.0.2', 3636))"
    )
    subprocess.run(
        ["ip", "netns", "exec", a, sys.executable, "-c", code, ARP_ANNOUNCE.hex()], check=True
    )
    time.sleep(0.3)
    st = eng.status()  # type: ignore[attr-defined]
    assert st["local"]["tx_frames"] == 0
    assert st["remotes"][0]["rx_heartbeats"] == 0 and st["remotes"][0]["state"] == "waiting"
    assert sum(st["drops"].values()) == 2


@pytest.mark.faketime
def test_a_sealed_cable_comes_back_within_5_s_after_either_end_restarts_30_s_off(
    netlab: Lab,
) -> None:
    """Each end restarts, one with its clock 30 s behind, the other 30 s ahead."""
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"])
    netlab.tap(a, "tap0", ["10.88.0.1/24"])
    netlab.tap(b, "tap0", ["10.88.0.2/24"])
    key = netlab.keyfile()
    engines = {
        "a": netlab.rrqnet(a, f"-t tap0 3636 10.77.0.2:3636={key}", "a"),
        "b": netlab.rrqnet(b, f"-t tap0 3636 10.77.0.1:3636={key}", "b"),
    }
    assert netlab.ping(a, "10.88.0.2")
    for side, ns, other, offset in (("a", a, "10.77.0.2", "-30s"), ("b", b, "10.77.0.1", "+30s")):
        engines[side].stop()
        engines[side] = netlab.rrqnet(
            ns, f"-t tap0 3636 {other}:3636={key}", side + "2", wrap=["faketime", "-f", offset]
        )
        t0 = time.monotonic()
        assert netlab.ping(a, "10.88.0.2", count=1, timeout=5.0), f"{side} restarted"
        assert time.monotonic() - t0 < 5.0
        assert engines[side].status()["remotes"][0]["state"] == "up"


@pytest.mark.slow
def test_a_sealed_cable_comes_back_after_the_underlay_drops_for_a_minute(netlab: Lab) -> None:
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"], a_if="ua", b_if="ub")
    netlab.tap(a, "tap0", ["10.88.0.1/24"])
    netlab.tap(b, "tap0", ["10.88.0.2/24"])
    key = netlab.keyfile()
    netlab.rrqnet(a, f"-t tap0 3636 10.77.0.2:3636={key}", "a")
    netlab.rrqnet(b, f"-t tap0 3636 10.77.0.1:3636={key}", "b")
    assert netlab.ping(a, "10.88.0.2")
    netlab.ip(a, "link", "set", "ua", "down")
    time.sleep(65)  # sessions pass their rekey time meanwhile; handshakes go unanswered
    netlab.ip(a, "link", "set", "ua", "up")
    t0 = time.monotonic()
    assert netlab.ping(a, "10.88.0.2", count=1, timeout=40.0)
    assert netlab.ping(b, "10.88.0.1", count=1, timeout=5.0)
    print(f"back {time.monotonic() - t0:.1f} s after the underlay came back")
