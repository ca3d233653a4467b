"""The session layer of sealed channels against a simple model, under whatever a network and
an attacker without the key can do: lose, reorder, duplicate, replay (from any address),
reflect, restart either end, step either clock, let time pass.

The model: every frame an end accepts was sent by the other end, and is accepted at most
once (safety); once the network behaves and the clocks agree within the tolerance, fresh
frames cross both ways again (an honest peer always gets back in).
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from rrqctl.engine.handshake import UNFRESH
from tests.unit.sealsim import FRESHNESS, Datagram, End, Endpoint

A_ADDR: Endpoint = ("10.0.0.1", 3636)
B_ADDR: Endpoint = ("10.0.0.2", 3636)
ATTACKER: Endpoint = ("10.0.0.66", 3636)  # inside B's mask, when B has one
ADDR = {"A": A_ADDR, "B": B_ADDR}
OTHER = {"A": "B", "B": "A"}
KEYFILE = os.path.join(tempfile.mkdtemp(prefix="rrq-model-"), "key")
with open(KEYFILE, "wb") as _f:
    _f.write(os.urandom(64))
logging.getLogger("sealsim").addHandler(logging.NullHandler())
logging.getLogger("sealsim").propagate = False
HEAL_FOR = 240  # simulated seconds an honest exchange may take to come back

sides = st.sampled_from(["A", "B"])
picks = st.integers(0, 10_000)


class SealedCable(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.t = 1000.0
        self.flight: list[Datagram] = []
        self.captured: list[Datagram] = []
        self.sent: dict[str, set[bytes]] = {"A": set(), "B": set()}
        self.delivered: dict[str, set[bytes]] = {"A": set(), "B": set()}
        self.numbers = itertools.count()
        self.received: dict[str, set[bytes]] = {"A": set(), "B": set()}  # datagrams, per end
        self.offsets = {"A": 0, "B": 0}
        self.declaration = {"A": f"10.0.0.2:3636={KEYFILE}", "B": ""}
        self.ends: dict[str, End] = {}

    def clock(self) -> float:
        return self.t

    def _end(self, side: str) -> End:
        return End(ADDR[side], self.declaration[side], KEYFILE, self.clock, self.offsets[side])

    @initialize(b_is_a_mask=st.booleans())
    def start(self, b_is_a_mask: bool) -> None:
        """A has an uplink to B; B an uplink to A, or a downlink mask that admits A."""
        mask = "10.0.0.0/24" if b_is_a_mask else "10.0.0.1:3636"
        self.declaration["B"] = f"{mask}={KEYFILE}"
        self.ends = {side: self._end(side) for side in ("A", "B")}
        self._tick()

    # ---- the network ------------------------------------------------------------------

    def _collect(self) -> None:
        for end in self.ends.values():
            for d in end.take_out():
                self.flight.append(d)
                self.captured.append(d)

    def _deliver(self, source: Endpoint, dest: Endpoint, data: bytes) -> None:
        side = next((s for s, a in ADDR.items() if a == dest), None)
        if side is None:
            return  # to the attacker, or to nobody
        end = self.ends[side]
        unfresh = end.drops.snapshot().get(UNFRESH, 0)
        payloads = end.receive(data, source)
        if end.drops.snapshot().get(UNFRESH, 0) == unfresh:
            # (an initiation refused because the clocks differed was not taken in: sent
            # again once they agree, it is a late delivery, which any network may make)
            self.received[side].add(data)
        for payload in payloads:
            if payload:
                assert payload in self.sent[OTHER[side]], "a frame the other end never sent"
                assert payload not in self.delivered[side], "a frame accepted twice"
                self.delivered[side].add(payload)
        self._collect()

    def _tick(self) -> None:
        for end in self.ends.values():
            end.tick()
        self._collect()

    def _frame(self, side: str) -> bytes:
        return (
            b"\x02\0\0\0\0\x01"
            + b"\x02\0\0\0\0"
            + side.encode()
            + b"\x88\xb5"
            + b"%08d" % next(self.numbers)
        )

    # ---- what happens -----------------------------------------------------------------

    @rule(side=sides)
    def send_frame(self, side: str) -> None:
        frame = self._frame(side)
        if self.ends[side].send_frame(ADDR[OTHER[side]], frame):
            self.sent[side].add(frame)
        self._collect()

    @precondition(lambda self: self.flight)
    @rule(i=picks)
    def deliver(self, i: int) -> None:
        self._deliver(*self.flight.pop(i % len(self.flight)))

    @precondition(lambda self: self.flight)
    @rule(i=picks)
    def lose(self, i: int) -> None:
        self.flight.pop(i % len(self.flight))

    @precondition(lambda self: self.flight)
    @rule(i=picks)
    def duplicate(self, i: int) -> None:
        self.flight.append(self.flight[i % len(self.flight)])

    @precondition(lambda self: self.captured)
    @rule(i=picks, to=sides, source=st.sampled_from(["same", "new-port", "attacker", "itself"]))
    def replay(self, i: int, to: str, source: str) -> None:
        """A datagram seen on the wire, sent again to either end from some address."""
        src, _, data = self.captured[i % len(self.captured)]
        addr = {
            "same": src,
            "new-port": (src[0], src[1] + 1),
            "attacker": ATTACKER,
            "itself": ADDR[to],
        }[source]
        replayed = data in self.received[to]
        before = len(self.flight)
        self._deliver(addr, ADDR[to], data)
        if replayed and addr != ADDR[OTHER[to]]:  # a true replay, from a forged source
            assert not [d for d in self.flight[before:] if d[1] == addr], "a reply to a replay"

    @precondition(lambda self: self.captured)
    @rule(i=picks)
    def reflect(self, i: int) -> None:
        """A datagram sent back to its sender, as if from the address it went to."""
        src, dst, data = self.captured[i % len(self.captured)]
        self._deliver(dst, src, data)

    @rule(seconds=st.sampled_from([1, 2, 5, 11, 16, 31, 61, 121, 181]))
    def wait(self, seconds: int) -> None:
        for _ in range(seconds):
            self.t += 1.0
            self._tick()

    @rule(side=sides)
    def restart(self, side: str) -> None:
        """An end starts afresh. What it saw before is forgotten: an initiation recorded
        within the freshness limit can be replayed to it once and earns one response, no
        bigger than itself (docs/protocol.md, what is left)."""
        self.ends[side] = self._end(side)
        self.received[side] = set()
        self._tick()

    @rule(side=sides, seconds=st.sampled_from([-900, -300, -30, 30, 300, 900]))
    def step_clock(self, side: str, seconds: int) -> None:
        self.offsets[side] += seconds * 1_000_000
        self.ends[side].wall_offset_us = self.offsets[side]

    # ---- the model --------------------------------------------------------------------

    @invariant()
    def nothing_of_its_own_comes_back(self) -> None:
        for side in ("A", "B"):
            assert not self.delivered[side] & self.sent[side]

    @precondition(lambda self: abs(self.offsets["A"] - self.offsets["B"]) < FRESHNESS * 1e6)
    @rule()
    def heal(self) -> None:
        """The network behaves from now on: fresh frames must cross both ways again."""
        self.flight.clear()
        fresh: dict[str, set[bytes]] = {"A": set(), "B": set()}
        for _ in range(HEAL_FOR):
            self.t += 1.0
            self._tick()
            for side in ("A", "B"):
                frame = self._frame(side)
                if self.ends[side].send_frame(ADDR[OTHER[side]], frame):
                    self.sent[side].add(frame)
                    fresh[side].add(frame)
            self._collect()
            while self.flight:
                self._deliver(*self.flight.pop(0))
            if all(fresh[s] & self.delivered[OTHER[s]] for s in ("A", "B")):
                return
        raise AssertionError(f"no fresh frame crossed both ways within {HEAL_FOR} s")


TestSealedCable = SealedCable.TestCase
TestSealedCable.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
