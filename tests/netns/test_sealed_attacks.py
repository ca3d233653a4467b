"""Sealed channels attacked as someone without the key would, with the real `rrqnet`: a hub
that admits a sealed mask, a peer with an uplink to it, an attacker and a victim on the same
segment. Datagrams recorded on the wire are replayed from new endpoints, reflected, and
flooded from the peer's own address; none of it reaches a tap, makes a downlink, moves a
MAC binding or makes the hub send anything to the attacker or the victim."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rrqctl.supervise.control import query
from tests.netlab import BIN, Engine, Lab, Proc, wait_for

WIRE = Path(__file__).with_name("wire.py")
ROOT = Path(__file__).parents[2]
HUB, PEER, ATTACKER, VICTIM = "10.9.0.1", "10.9.0.2", "10.9.0.3", "10.9.0.4"
PEER_MAC = "02:00:00:00:00:02"
PORT = 3636


@dataclass
class Cable:
    lab: Lab
    hub: str
    peer: str
    attacker: str
    victim: str
    key: str
    hub_engine: Engine
    peer_engine: Engine
    recorded: Path  # what crossed the hub's wire while the cable came up and pinged

    def start_peer(self) -> Engine:
        args = f"-t tap0 {PORT} {HUB}:{PORT}={self.key}"
        self.peer_engine = self.lab.rrqnet(self.peer, args, "peer")
        return self.peer_engine

    def wire(self, ns: str, *args: str, name: str = "") -> Proc | str:
        argv = [sys.executable, str(WIRE), *args]
        if name:
            return self.lab.spawn(ns, argv, name)
        done = subprocess.run(
            ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True
        )
        return done.stdout

    def records(self, src: str) -> Path:
        """The recorded datagrams sent from src, as a file wire.py sends from."""
        out = self.lab.dir / f"from-{src}.json"
        lines = [
            line
            for line in self.recorded.read_text().splitlines()
            if json.loads(line)["src"] == src
        ]
        assert lines, f"nothing recorded from {src}"
        out.write_text("\n".join(lines) + "\n")
        return out

    def ping_ok(self, count: int = 5) -> bool:
        r = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                self.peer,
                "ping",
                "-c",
                str(count),
                "-i",
                "0.2",
                "-W",
                "1",
                "10.88.0.1",
            ],
            capture_output=True,
            text=True,
        )
        return r.returncode == 0


@pytest.fixture
def cable(netlab: Lab) -> Iterator[Cable]:
    hosts = {
        netlab.host(n): a for n, a in (("hub", HUB), ("peer", PEER), ("x", ATTACKER), ("v", VICTIM))
    }
    hub, peer, attacker, victim = hosts
    netlab.segment({ns: f"{addr}/24" for ns, addr in hosts.items()})
    netlab.tap(hub, "tap0", ["10.88.0.1/24"], quiet=True)
    netlab.tap(peer, "tap0", ["10.88.0.2/24"], mac=PEER_MAC, quiet=True)
    key = netlab.keyfile()
    recorded = netlab.dir / "recorded.json"
    sniffer = netlab.spawn(
        hub, [sys.executable, str(WIRE), "sniff", "u0", str(PORT), str(recorded)], "sniff"
    )
    wait_for(lambda: "sniffing" in sniffer.output(), what="the sniffer", proc=sniffer)
    hub_engine = netlab.rrqnet(hub, f"-t tap0 {PORT} 10.9.0.0/24={key}", "hub")
    c = Cable(netlab, hub, peer, attacker, victim, key, hub_engine, None, recorded)  # type: ignore[arg-type]
    c.start_peer()
    assert c.ping_ok(), "the sealed cable does not carry pings"
    time.sleep(0.3)
    sniffer.stop()
    yield c


def downlinks(e: Engine) -> list[str]:
    return [r["name"] for r in e.status()["remotes"]]


def binding(e: Engine, mac: str) -> str | None:
    return next((m["channel"] for m in e.status()["macs"] if m["mac"] == mac), None)


def test_replays_from_new_endpoints_reach_no_tap_and_get_no_answer(cable: Cable) -> None:
    """Everything the peer sent, replayed from the attacker's own address on 40 ports and
    from a forged victim's address on 40 more (attack 1)."""
    hub = cable.hub_engine
    before = hub.status()
    assert downlinks(hub) == [f"{PEER}:{PORT}"]
    assert binding(hub, PEER_MAC) == f"{PEER}:{PORT}"
    listeners = [
        cable.wire(ns, "count", "u0", str(PORT), "6", name=f"count-{ns}")
        for ns in (cable.attacker, cable.victim)
    ]
    time.sleep(0.5)
    records = str(cable.records(PEER))
    for port in range(5000, 5040):
        cable.wire(cable.attacker, "send", records, HUB, str(PORT), ATTACKER, str(port))
        cable.wire(cable.attacker, "send", records, HUB, str(PORT), VICTIM, str(port))
    for listener in listeners:
        assert isinstance(listener, Proc)
        wait_for(lambda p=listener: not p.alive(), timeout=15, what="the listener")  # type: ignore[misc]
        assert listener.output().split()[-1] == "0", "the hub answered a replay"
    after = hub.status()
    assert downlinks(hub) == [f"{PEER}:{PORT}"]  # no downlink for the attacker or the victim
    # what reached the tap meanwhile is what the peer itself sent (its ARP, say): no replay
    to_tap = after["local"]["tx_frames"] - before["local"]["tx_frames"]
    genuine = after["remotes"][0]["rx_frames"] - before["remotes"][0]["rx_frames"]
    assert to_tap <= genuine  # (the switch may drop some of them; a replay would add)
    assert binding(hub, PEER_MAC) == f"{PEER}:{PORT}"  # the peer's MAC stayed where it was
    new = {k: v - before["drops"].get(k, 0) for k, v in after["drops"].items()}
    assert new.get("handshake-replay", 0) > 0 and new.get("wrong-endpoint", 0) > 0
    assert sum(new.values()) == 80 * len(Path(records).read_text().splitlines())
    assert cable.ping_ok()


def test_reflected_datagrams_cause_no_outage(cable: Cable) -> None:
    """The hub's own datagrams sent back to it as if from the peer, and the peer's to the
    peer as if from the hub (attack 2): refused, and the pings go on without a loss."""
    hub_records = str(cable.records(HUB))
    peer_records = str(cable.records(PEER))
    before = cable.hub_engine.status()["drops"]
    cable.wire(cable.attacker, "send", hub_records, HUB, str(PORT), PEER, str(PORT))
    cable.wire(cable.attacker, "send", peer_records, PEER, str(PORT), HUB, str(PORT))
    assert cable.ping_ok(count=10)
    after = cable.hub_engine.status()["drops"]
    assert after.get("unknown-session", 0) + after.get("handshake-replay", 0) > sum(
        before.get(k, 0) for k in ("unknown-session", "handshake-replay")
    )
    assert cable.peer_engine.status()["remotes"][0]["state"] == "up"


def test_a_peer_restarted_under_a_forged_flood_from_its_own_address_is_back_within_5_s(
    cable: Cable,
) -> None:
    """3000 datagrams a second carrying the peer's address and port (its recorded datagrams
    and junk) while the peer restarts (attack 3)."""
    records = cable.records(PEER)
    junk = cable.lab.dir / "junk.json"
    junk.write_text(
        records.read_text()
        + "".join(
            json.dumps({"hex": (bytes.fromhex(k) + bytes(92)).hex()}) + "\n"
            for k in ("21000000", "22000000", "24000000")
        )
    )
    cable.peer_engine.stop()
    flood = cable.wire(
        cable.attacker,
        "send",
        str(junk),
        HUB,
        str(PORT),
        PEER,
        str(PORT),
        "3000",
        "12",
        name="flood",
    )
    time.sleep(2.0)
    t0 = time.monotonic()
    cable.start_peer()
    wait_for(lambda: cable.ping_ok(count=1), timeout=5.0, what="the peer back within 5 s")
    took = time.monotonic() - t0
    assert isinstance(flood, Proc) and flood.alive(), "the flood ended before the peer was back"
    flood.stop()
    drops = cable.hub_engine.status()["drops"]
    assert sum(drops.values()) > 3000  # the flood did arrive, and was refused
    assert took < 5.0


@pytest.mark.faketime
@pytest.mark.parametrize("offset", ["-30s", "+30s"])
def test_the_peer_restarted_with_its_clock_30_s_off_is_back_within_5_s(
    cable: Cable, offset: str
) -> None:
    cable.peer_engine.stop()
    t0 = time.monotonic()
    args = f"-t tap0 {PORT} {HUB}:{PORT}={cable.key}"
    wrap = ["faketime", "-f", offset]
    cable.peer_engine = cable.lab.rrqnet(cable.peer, args, "peer-" + offset, wrap=wrap)
    wait_for(lambda: cable.ping_ok(count=1), timeout=5.0, what=f"the peer ({offset}) back")
    assert time.monotonic() - t0 < 5.0


@pytest.mark.faketime
def test_the_hub_restarted_with_its_clock_30_s_off_takes_the_peer_back(cable: Cable) -> None:
    """The hub cannot call a downlink back: the peer notices the silence (15 s at most, once
    it has sent something unanswered) and makes a new handshake."""
    cable.hub_engine.stop()
    cable.hub_engine = cable.lab.rrqnet(
        cable.hub,
        f"-t tap0 {PORT} 10.9.0.0/24={cable.key}",
        "hub2",
        wrap=["faketime", "-f", "+30s"],
    )
    t0 = time.monotonic()
    wait_for(lambda: cable.ping_ok(count=1), timeout=25.0, what="the cable back")
    assert time.monotonic() - t0 < 20.0


GROUP, GROUP_PORT = "239.77.0.5", 4000


def test_sealed_multicast_refuses_replays_and_junk_and_takes_a_new_key_on_reload(
    netlab: Lab,
) -> None:
    """Attack 4: a group member replays another's datagrams from a new port, junk comes from
    new sources; then both ends get a new key by reload, and the old key is refused."""
    a, b, c = (netlab.host(n) for n in ("a", "b", "c"))
    netlab.segment({a: "10.9.0.1/24", b: "10.9.0.2/24", c: "10.9.0.3/24"})
    for ns in (a, b, c):
        netlab.ip(ns, "route", "add", "224.0.0.0/4", "dev", "u0")
    key = netlab.keyfile()
    old_key = netlab.dir / "old-key"
    old_key.write_bytes(Path(key).read_bytes())
    socks = {}
    for ns, addr in ((a, "10.88.0.1/24"), (b, "10.88.0.2/24")):
        netlab.write_interfaces(
            ns,
            f"iface mc0 inet manual\n    rrqnet_port {PORT}\n"
            f"    rrqnet_options -m {GROUP}:{GROUP_PORT}={key}\n",
        )
        run = netlab.spawn(
            ns, [str(BIN / "rrqctl"), "run", "mc0", *netlab.rrqctl_args(ns)], f"run-{ns}"
        )
        socks[ns] = netlab.run_dir(ns) / "mc0.sock"
        wait_for(socks[ns].exists, what="the control socket", proc=run)
        netlab.ip(ns, "addr", "add", addr, "dev", "mc0")
    recorded = netlab.dir / "group.json"
    sniffer = netlab.spawn(
        c, [sys.executable, str(WIRE), "sniff", "u0", str(GROUP_PORT), str(recorded)], "sniff"
    )
    wait_for(lambda: "sniffing" in sniffer.output(), what="the sniffer", proc=sniffer)
    assert netlab.ping(a, "10.88.0.2")
    time.sleep(0.3)
    sniffer.stop()

    def status(ns: str) -> dict[str, object]:
        st = query(str(socks[ns]))
        assert isinstance(st, dict)
        return st

    before = status(b)
    (mc,) = before["remotes"]  # type: ignore[misc]
    sessions = mc["group_sessions"]
    from_a = netlab.dir / "from-a.json"
    from_a.write_text(
        "".join(
            line + "\n"
            for line in recorded.read_text().splitlines()
            if json.loads(line)["src"] == "10.9.0.1"
        )
    )
    n = len(from_a.read_text().splitlines())
    assert n > 0
    for port in (5001, 5002, 5003):  # a member replays a's datagrams from ports of its own
        run_wire(c, "send", str(from_a), GROUP, str(GROUP_PORT), "10.9.0.3", str(port))
    run_wire(c, "send", "-", GROUP, str(GROUP_PORT), "10.9.0.3", "5004")  # junk
    time.sleep(0.5)
    after = status(b)
    (mc2,) = after["remotes"]  # type: ignore[misc]
    to_tap = after["local"]["tx_frames"] - before["local"]["tx_frames"]  # type: ignore[index]
    genuine = mc2["rx_frames"] - mc["rx_frames"]
    assert to_tap <= genuine  # no replayed frame reached the tap (the switch may drop some)
    assert mc2["group_sessions"] == sessions  # junk made no session
    drops = after["drops"]
    assert drops.get("wrong-source", 0) >= 3 * n - 3  # type: ignore[union-attr]

    Path(key).write_bytes(os.urandom(64))  # a new key for the group, on both ends
    for ns in (a, b):
        assert query(str(socks[ns]), "reload").startswith("reloaded")
    assert netlab.ping(a, "10.88.0.2")
    before = status(b)
    run_wire(c, "group", str(old_key), GROUP, str(GROUP_PORT), ARP_FRAME.hex())
    time.sleep(0.3)
    after = status(b)
    (mc, mc2) = before["remotes"][0], after["remotes"][0]  # type: ignore[index]
    to_tap = after["local"]["tx_frames"] - before["local"]["tx_frames"]  # type: ignore[index]
    assert to_tap <= mc2["rx_frames"] - mc["rx_frames"]  # only a's own (late ND, say) did
    assert after["drops"].get("bad-tag", 0) == before["drops"].get("bad-tag", 0) + 1  # type: ignore[union-attr]


ARP_FRAME = bytes.fromhex(
    "ffffffffffff020000000003080600010800060400010200000000030a0903030000000000000a090303"
)


def run_wire(ns: str, *args: str) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, sys.executable, str(WIRE), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return done.stdout
