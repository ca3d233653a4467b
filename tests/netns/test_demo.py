"""`make demo`'s `rrqctl demo`: a sealed cable between two namespaces, pinged, then gone."""

from __future__ import annotations

import subprocess

from tests.netlab import BIN


def test_demo_pings_shows_both_ends_and_leaves_nothing() -> None:
    r = subprocess.run([str(BIN / "rrqctl"), "demo"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 packets transmitted, 3 received" in r.stdout
    assert r.stdout.count("uplink  up     yes") == 2  # both ends: the remote is up and sealed
    assert r.stdout.rstrip().endswith("both ends are gone again.")
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert "rrqdemo-" not in names
