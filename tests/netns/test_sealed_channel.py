"""A sealed channel delivers only authentic, fresh datagrams: counters prove it."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

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
    send(netlab, a, key, "other-key", "truncated", "good", "replay", "replay", "other-key")
    time.sleep(0.5)
    st = eng.status()  # type: ignore[attr-defined]
    assert st["local"]["tx_frames"] == 1  # the one genuine frame reached the tap, once
    assert st["remotes"][0]["rx_frames"] == 1
    assert st["drops"] == {"bad-tag": 2, "replay": 2, "truncated": 1}
    assert st["remotes"][0]["drops"] == st["drops"]


def test_junk_never_creates_a_downlink(netlab: Lab) -> None:
    a, key, eng = setup(netlab, "10.77.0.0/24:3636")
    send(netlab, a, key, "other-key", "truncated", "other-key")
    time.sleep(0.3)
    st = eng.status()  # type: ignore[attr-defined]
    assert st["remotes"] == []
    assert st["local"]["tx_frames"] == 0
    assert st["drops"] == {"bad-tag": 2, "truncated": 1}
    send(netlab, a, key, "heartbeat")  # an authentic heartbeat does make the downlink
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
