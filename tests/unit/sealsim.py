"""Two engines' sealed channels on simulated time and a simulated network: the session layer
(rrqctl.engine.peers over sessions.py) exactly as the engine drives it, minus the sockets.

Each End is one engine with one sealed declaration; what it sends lands in `out` as
(source, destination, datagram), and the test decides what the network does with it.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from rrqctl.engine.channels import HEARTBEAT_INTERVAL, Channel
from rrqctl.engine.peers import Peers
from rrqctl.engine.remotes import parse_remote
from rrqctl.engine.sessions import Sealing
from rrqctl.engine.stats import Drops
from rrqctl.engine.switch import Switch

WALL0 = 1_790_000_000_000_000  # the wall clock at simulated time 0, us since the epoch
FRESHNESS = 600.0
Endpoint = tuple[str, int]
Datagram = tuple[Endpoint, Endpoint, bytes]


class End:
    """One engine: its address, its declaration of the other end, its clocks."""

    def __init__(
        self,
        addr: Endpoint,
        declaration: str,
        keyfile: str,
        clock: Callable[[], float],
        wall_offset_us: int = 0,
    ) -> None:
        self.addr = addr
        self.clock = clock
        self.wall_offset_us = wall_offset_us
        self.out: list[Datagram] = []
        self.drops = Drops()
        sealing = Sealing(FRESHNESS, wall=self.wall_us)
        self.peers = Peers(
            Switch(),
            self.drops,
            logging.getLogger("sealsim"),
            self._send,
            FRESHNESS,
            sealing=sealing,
        )
        self.peers.load_keys([keyfile])
        self.peers.set_remotes((parse_remote(declaration),), socket.AF_INET, clock())

    def wall_us(self) -> int:
        return WALL0 + int(self.clock() * 1e6) + self.wall_offset_us

    def _send(self, ch: Channel | None, addr: Endpoint, data: bytes) -> None:
        self.out.append((self.addr, addr, data))

    def channel(self, addr: Endpoint) -> Channel | None:
        return self.peers.by_addr.get(addr)

    def send_frame(self, to: Endpoint, frame: bytes) -> bool:
        """Seal frame for the channel to `to` (False: no such channel). It may wait in the
        channel for a handshake; either way what goes on the wire is in `out`."""
        ch = self.channel(to)
        if ch is None:
            return False
        data = self.peers.seal(ch, frame, self.clock())
        if data is not None:
            self._send(ch, to, data)
        return True

    def receive(self, data: bytes, source: Endpoint) -> list[bytes]:
        """What the engine makes of a datagram from source: the payloads it accepts."""
        now = self.clock()
        ch = self.channel(source)
        if ch is not None:
            return list(self.peers.opened(ch, [data], now))
        decl = self.peers.declaration(source)
        if isinstance(decl, str):
            return []
        admitted = self.peers.admit(source, data, decl, now)
        return [] if admitted is None else [admitted[1]]

    def tick(self) -> None:
        """The engine's once-a-second work, as Engine._tick does it."""
        now = self.clock()
        for ch in list(self.peers.switch.channels):
            if ch.heartbeat_due(now):
                ch.next_heartbeat = now + HEARTBEAT_INTERVAL
                data = self.peers.heartbeat(ch, now)
                if data is not None:
                    self._send(ch, ch.addr, data)
            elif ch.forgotten(now):
                self.peers.forget(ch, "silent for 3 minutes")
        self.peers.tick(now)

    def take_out(self) -> list[Datagram]:
        out, self.out = self.out, []
        return out
