"""The engine's own link reader (rtnetlink, no pyroute2) against links made with ip(8)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.netlab import Lab

OBSERVE = """
import dataclasses, json, sys
from rrqctl.system.observe import observe
from rrqctl.system.paths import Paths
name, bridge = sys.argv[1], sys.argv[2] or None
print(json.dumps(dataclasses.asdict(observe(name, Paths(sys.argv[3]), bridge=bridge))))
"""


def observed(lab: Lab, ns: str, name: str, bridge: str = "") -> dict[str, Any]:
    argv = [sys.executable, "-c", OBSERVE, name, bridge, str(lab.dir / "run")]
    out = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_a_tap_in_a_bridge_is_seen_as_ip_made_it(netlab: Lab) -> None:
    a = netlab.host("a")
    netlab.tap(
        a, "tap9", ["10.66.0.1/24", "10.67.0.1/16", "fd00:66::1/64"], mac="02:aa:bb:cc:dd:ee"
    )
    netlab.ip(a, "link", "set", "tap9", "mtu", "1400")
    netlab.ip(a, "link", "add", "br9", "type", "bridge")
    netlab.ip(a, "link", "set", "tap9", "master", "br9")
    seen = observed(netlab, a, "tap9", "br9")
    addresses = seen.pop("tap_addresses")
    assert {"10.66.0.1/24", "10.67.0.1/16", "fd00:66::1/64"} <= set(addresses)
    assert all("/" in x for x in addresses)  # and the kernel's own fe80:: one, if any
    assert seen == {
        "tap_exists": True,
        "tap_is_tap": True,
        "tap_up": True,
        "tap_mac": "02:aa:bb:cc:dd:ee",
        "tap_mtu": 1400,
        "tap_master": "br9",
        "bridge_exists": True,
        "engine_pid": None,
        "engine_answers": True,  # (unless a check asked it and it did not answer)
        "dhclient_pid": None,
        "fitting_mtu": 0,  # asked only for a tap still to be made
    }


def test_missing_down_and_wrong_kinds_are_seen(netlab: Lab) -> None:
    a = netlab.host("a")
    netlab.ip(a, "link", "add", "vx9", "type", "veth", "peer", "name", "vy9")
    netlab.ip(a, "tuntap", "add", "dev", "tap8", "mode", "tap")
    assert observed(netlab, a, "nosuch0")["tap_exists"] is False
    down = observed(netlab, a, "tap8", "nosuchbr")
    assert (down["tap_exists"], down["tap_up"], down["tap_master"]) == (True, False, None)
    assert down["bridge_exists"] is False
    not_a_tap = observed(netlab, a, "vx9", "vx9")  # a veth is neither a tap nor a bridge
    assert (not_a_tap["tap_is_tap"], not_a_tap["bridge_exists"]) == (False, False)


WATCH = """
import json, subprocess, sys
from rrqctl.system.linkstate import LinkWatch
watch = LinkWatch("tap7")
def after(*argv):
    subprocess.run(["ip", *argv], check=True)  # the kernel announces before ip returns
    return watch.changed()
print(json.dumps({
    "nothing yet": watch.changed(),
    "another link": after("link", "set", "tap6", "up"),
    "into a bridge": after("link", "set", "tap7", "master", "br7"),
    "an address": after("addr", "add", "10.7.0.1/24", "dev", "tap7"),
    "another link's address": after("addr", "add", "10.8.0.1/24", "dev", "tap6"),
    "deleted": after("link", "del", "tap7"),
    "made again": after("tuntap", "add", "dev", "tap7", "mode", "tap"),
    "the new one's address": after("addr", "add", "10.7.0.2/24", "dev", "tap7"),
}))
"""


def test_the_link_watch_hears_of_changes_to_its_link_and_its_addresses_only(
    netlab: Lab,
) -> None:
    a = netlab.host("a")
    netlab.ip(a, "tuntap", "add", "dev", "tap7", "mode", "tap")
    netlab.ip(a, "tuntap", "add", "dev", "tap6", "mode", "tap")
    netlab.ip(a, "link", "add", "br7", "type", "bridge")
    out = subprocess.run(
        ["ip", "netns", "exec", a, sys.executable, "-c", WATCH], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "nothing yet": False,
        "another link": False,
        "into a bridge": True,
        "an address": True,
        "another link's address": False,
        "deleted": True,
        "made again": True,
        "the new one's address": True,
    }
