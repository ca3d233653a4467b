"""A remote is `up` only while something authentic arrives from it."""

from __future__ import annotations

import time

import pytest

from tests.netlab import Engine, Lab, wait_for
from tests.netns.test_peers import hosts_with_taps

TWO_HEARTBEATS = 60.0


def uplink(e: Engine) -> dict[str, object]:
    return e.remote("10.77.0.2:3636")


@pytest.mark.slow
def test_a_peer_that_stops_answering_or_is_refused_is_stale_within_2_heartbeats_with_why(
    netlab: Lab,
) -> None:
    """Two cables side by side: on one the far end stops; on the other it comes back with
    another key file, so that everything it sends is refused."""
    silent_a, silent_b = hosts_with_taps(netlab)
    c, d = netlab.host("c"), netlab.host("d")
    netlab.link(c, d, ["10.77.0.1/24"], ["10.77.0.2/24"], a_if="uc", b_if="ud")
    netlab.tap(c, "tap0", ["10.88.0.1/24"])
    netlab.tap(d, "tap0", ["10.88.0.2/24"])
    key, other_key = netlab.keyfile("key"), netlab.keyfile("other")
    watcher = netlab.rrqnet(silent_a, "-t tap0 3636 10.77.0.2:3636", "watcher")
    far = netlab.rrqnet(silent_b, "-t tap0 3636 10.77.0.1:3636", "far")
    sealed = netlab.rrqnet(c, f"-t tap0 3636 10.77.0.2:3636={key}", "sealed")
    rekeyed = netlab.rrqnet(d, f"-t tap0 3636 10.77.0.1:3636={key}", "rekeyed")
    assert netlab.ping(silent_a, "10.88.0.2") and netlab.ping(c, "10.88.0.2")
    assert uplink(watcher)["state"] == uplink(sealed)["state"] == "up"
    far.stop()
    rekeyed.stop()
    netlab.rrqnet(d, f"-t tap0 3636 10.77.0.1:3636={other_key}", "rekeyed2")
    t0 = time.monotonic()
    # the last word each heard was before t0: stale no later than 2 heartbeats after it
    wait_for(lambda: uplink(watcher)["state"] == "stale", TWO_HEARTBEATS + 3, "stale")
    wait_for(lambda: uplink(sealed)["state"] == "stale", TWO_HEARTBEATS + 3, "stale (sealed)")
    assert time.monotonic() - t0 <= TWO_HEARTBEATS + 3
    assert str(uplink(watcher)["stale_reason"]).startswith("no reply for ")
    why = str(uplink(sealed)["stale_reason"])
    assert "refused since (bad-mac)" in why, why
    # said once in the log, at the engine's next tick
    wait_for(lambda: "is stale: no reply for" in watcher.output(), 3, "the log line")
    time.sleep(2)
    assert watcher.output().count("is stale") == 1
