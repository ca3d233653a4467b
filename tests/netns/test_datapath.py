"""Which datapath an engine runs, and what the C one does (rrqctl/engine/fastpath.c)."""

from __future__ import annotations

import pytest

from tests.netlab import Lab
from tests.netns.test_cable import two_hosts


def test_the_c_datapath_forwards_what_python_decided_and_counts_it(netlab: Lab) -> None:
    """With the extension built, frames of a known flow cross in C (fastpath.c): counters,
    MAC ages and the channel's state move as if Python had forwarded them."""
    pytest.importorskip("rrqctl.engine._fastpath")
    a, b = two_hosts(netlab, 4, 4)
    ea = netlab.rrqnet(a, "-t tap0 3636 10.77.0.2:3636", "a")
    eb = netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    assert netlab.ping(a, "10.88.0.2", count=3)
    before = ea.status()
    assert before["datapath"] == "c"
    assert netlab.ping(a, "10.88.0.2", count=20, timeout=30)
    after, other = ea.status(), eb.status()
    crossed = after["fast_frames"] - before["fast_frames"]
    assert crossed >= 30, (before["fast_frames"], after["fast_frames"])  # most of 40 frames
    assert other["fast_frames"] >= 30
    r0, r1 = before["remotes"][0], after["remotes"][0]
    assert r1["tx_frames"] - r0["tx_frames"] >= 20 and r1["rx_frames"] - r0["rx_frames"] >= 20
    assert r1["state"] == "up" and after["drops"] == {}
    assert all(m["age"] < 2 for m in after["macs"]), after["macs"]  # seen again, in C


def test_the_python_datapath_runs_when_asked_for(netlab: Lab) -> None:
    a, b = two_hosts(netlab, 4, 4)
    env = {"RRQNET_DATAPATH": "python"}
    ea = netlab.rrqnet(a, "-t tap0 3636 10.77.0.2:3636", "a", env=env)
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b", env=env)
    assert netlab.ping(a, "10.88.0.2", count=5)
    st = ea.status()
    assert (st["datapath"], st["fast_frames"]) == ("python", 0)
    assert st["remotes"][0]["tx_frames"] >= 5
