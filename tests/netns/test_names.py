"""Remotes given by host name: resolved at start, and again when the peer falls silent."""

from __future__ import annotations

import time

import pytest

from tests.netlab import Lab, wait_for
from tests.netns.test_host_actions import leftovers, stanza

MOUNT_HOSTS = 'mount --bind "$HOSTS" /etc/hosts && exec "$@"'


def own_hosts_file(lab: Lab, text: str) -> tuple[list[str], dict[str, str]]:
    """A command prefix that runs what follows with /etc/hosts as a file of the test's own
    (a private mount namespace: the machine's /etc/hosts is never touched)."""
    hosts = lab.dir / "hosts"
    hosts.write_text(text)
    wrap = ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT_HOSTS, "sh"]
    return wrap, {"HOSTS": str(hosts)}


@pytest.mark.slow
def test_a_remote_by_name_follows_its_peer_to_a_new_address_without_a_restart(
    netlab: Lab,
) -> None:
    a, b = netlab.host("a"), netlab.host("b")
    netlab.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"], a_if="ua", b_if="ub")
    netlab.tap(a, "tap0", ["10.88.0.1/24"])
    netlab.tap(b, "tap0", ["10.88.0.2/24"])
    wrap, env = own_hosts_file(netlab, "127.0.0.1 localhost\n10.77.0.2 peer.rrq.test\n")
    ea = netlab.rrqnet(a, "-v -t tap0 3636 peer.rrq.test:3636", "a", wrap=wrap, env=env)
    netlab.rrqnet(b, "-t tap0 3636 10.77.0.1:3636", "b")
    assert netlab.ping(a, "10.88.0.2")
    (up,) = ea.status()["remotes"]
    assert up["name"] == "peer.rrq.test:3636" and up["state"] == "up"
    # the peer moves, and its name with it
    netlab.ip(b, "addr", "del", "10.77.0.2/24", "dev", "ub")
    netlab.ip(b, "addr", "add", "10.77.0.3/24", "dev", "ub")
    (netlab.dir / "hosts").write_text("127.0.0.1 localhost\n10.77.0.3 peer.rrq.test\n")
    t0 = time.monotonic()
    assert netlab.ping(a, "10.88.0.2", count=1, timeout=60.0), "traffic did not resume"
    assert time.monotonic() - t0 < 60.0
    (moved,) = ea.status()["remotes"]
    assert moved["name"] == "peer.rrq.test:3636"
    assert "peer.rrq.test is at 10.77.0.3 (was 10.77.0.2)" in ea.output()


def test_up_refuses_a_name_that_does_not_resolve_and_makes_nothing(netlab: Lab) -> None:
    a = netlab.host("a")
    path = netlab.write_interfaces(
        a, stanza("rrqnet_port 3636", "rrqnet_remote nowhere.rrq.invalid:3636")
    )
    r = netlab.rrqctl(a, "up", "mynet0", check=False)
    assert r.returncode == 3, r.stdout + r.stderr
    assert f"{path}:4: rrqnet_remote: nowhere.rrq.invalid does not resolve" in r.stderr
    assert leftovers(netlab, a) == {"mynet0": False, "pids": [], "files": []}


def test_a_name_in_every_format_is_shown_as_declared(netlab: Lab) -> None:
    a = netlab.host("a")
    netlab.write_interfaces(a, stanza("rrqnet_port 3636", "rrqnet_remote [peer.rrq.test]:3636"))
    shown = netlab.rrqctl(a, "show", "mynet0").stdout
    assert "peer.rrq.test:3636" in shown
    wrap, env = own_hosts_file(netlab, "127.0.0.1 localhost\n10.77.0.2 peer.rrq.test\n")
    e = netlab.rrqnet(a, "3636 peer.rrq.test:3636", "a", wrap=wrap, env=env)
    wait_for(lambda: e.status()["remotes"], what="the name resolved")
    assert e.status()["remotes"][0]["name"] == "peer.rrq.test:3636"
