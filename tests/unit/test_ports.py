"""The UDP port's sends, on real sockets: what a failure part-way costs is counted in full."""

from __future__ import annotations

import socket
import time

import pytest

from rrqctl.engine import ports
from rrqctl.engine.channels import Channel, Kind
from rrqctl.engine.loop import Engine
from rrqctl.model import build_cable
from tests.unit.test_engine_timing import free_port, received

SMALL = b"x" * 100
TOO_BIG = b"y" * 65600  # more than a UDP datagram holds: the kernel refuses it (EMSGSIZE)


@pytest.fixture
def port_and_peer() -> tuple[ports.UdpPort, socket.socket]:
    p = ports.UdpPort(free_port(), ipv4_only=True)
    peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    peer.bind(("127.0.0.1", 0))
    peer.setblocking(False)
    yield p, peer  # type: ignore[misc]
    p.close()
    peer.close()


def test_a_send_that_fails_part_way_says_how_many_were_not_sent(
    port_and_peer: tuple[ports.UdpPort, socket.socket],
) -> None:
    p, peer = port_and_peer
    addr = peer.getsockname()
    with pytest.raises(ports.SendError) as e:
        p.send([SMALL, SMALL, TOO_BIG, SMALL, SMALL], addr)
    assert e.value.unsent == 3
    assert received(peer) == [SMALL, SMALL]  # what went before the failure did arrive


@pytest.mark.parametrize(("pmtu", "reason"), [(False, "send-error"), (True, "too-big")])
def test_every_datagram_lost_on_a_send_error_is_counted(pmtu: bool, reason: str) -> None:
    """(With path MTU discovery on, EMSGSIZE says the datagram was too big for the path.)"""
    cable = build_cable(
        {"name": "t", "port": free_port(), "local": "none", "ipv4_only": True, "remotes": []}
    )
    e = Engine(cable.engine_settings().with_pmtu(pmtu))
    e.open()
    try:
        ch = Channel(Kind.DOWNLINK, "x", 0.0, None, ("127.0.0.1", 9))
        assert not e._send(ch, [SMALL] * 10 + [TOO_BIG] + [SMALL] * 53)
        assert e.drops.snapshot() == {reason: 54}
        assert ch.drops == {reason: 54}
    finally:
        e.close()


def test_a_destination_whose_path_refused_gso_is_tried_again_later(
    port_and_peer: tuple[ports.UdpPort, socket.socket],
) -> None:
    p, peer = port_and_peer
    addr = peer.getsockname()
    p._no_gso[addr] = time.monotonic()
    assert p._gso_refused(addr)
    p._no_gso[addr] = time.monotonic() - ports.NO_GSO_FOR
    assert not p._gso_refused(addr) and addr not in p._no_gso


def test_the_set_of_destinations_without_gso_is_bounded(
    port_and_peer: tuple[ports.UdpPort, socket.socket],
) -> None:
    p, peer = port_and_peer
    if not p.gso:
        pytest.skip("no UDP GSO here")
    for i in range(ports.NO_GSO_LIMIT):
        p._no_gso[("127.0.0.1", 10000 + i)] = time.monotonic()
    # a GSO send the path refuses (more than a GSO send may hold) adds one, pushes one out
    big = [b"z" * 40000] * 2
    p._gso(big, 40000, peer.getsockname())
    assert peer.getsockname() in p._no_gso
    assert len(p._no_gso) == ports.NO_GSO_LIMIT
    assert received(peer) == big  # sent one by one instead
