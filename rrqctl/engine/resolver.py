"""Host names in remotes: resolved in a thread of their own, never on the datapath's.

A name is resolved when the engine starts, again every RESOLVE_EVERY, again every
SILENT_RETRY while its uplink goes unanswered (the peer may have moved; with several
addresses the next one is tried, so the family that answers wins), and every SILENT_RETRY
while it does not resolve at all. What the resolver finds is handed to the engine's loop.
"""

from __future__ import annotations

import contextlib
import ipaddress
import queue
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from rrqctl.engine.remotes import IPAddress

RESOLVE_EVERY = 300.0  # s: every name, however well its uplink does
SILENT_AFTER = 35.0  # s unheard (a heartbeat and some): the uplink's name is looked up again
SILENT_RETRY = 15.0  # s between lookups while it stays unheard, or does not resolve

Answer = list[IPAddress] | str  # the addresses, in the order to try them; or what went wrong


def lookup(host: str, family: int) -> Answer:
    """The addresses of host (AF_INET only, or any family), or why there are none."""
    try:
        infos = socket.getaddrinfo(host, None, family, socket.SOCK_DGRAM)
    except (OSError, UnicodeError) as e:
        return str(getattr(e, "strerror", None) or e)
    out: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if ip not in out:
            out.append(ip)
    return out or "no address"


@dataclass
class Name:
    """What is known of one host name."""

    host: str
    addresses: list[IPAddress] = field(default_factory=list)
    index: int = 0  # the address in use
    error: str | None = None
    asked: float = float("-inf")  # when it was last looked up
    answered: float = float("-inf")

    @property
    def address(self) -> IPAddress | None:
        return self.addresses[self.index] if self.addresses else None

    def due(self, now: float, silent: bool) -> bool:
        """A lookup is due: never made, long ago, or the uplink is unheard / unresolved."""
        since = now - self.asked
        if since < SILENT_RETRY:
            return False
        return self.address is None or silent or now - self.answered >= RESOLVE_EVERY

    def take(self, answer: Answer, now: float, silent: bool) -> bool:
        """Adopt a lookup's answer; True if the address in use changed. While silent, the next
        address is tried (the one in use did not answer)."""
        before = self.address
        self.answered = now
        if isinstance(answer, str):
            self.error = answer
            return False  # what was known stays in use
        self.error = None
        if before in answer:
            i = answer.index(before)
            self.index = (i + 1) % len(answer) if silent else i
        else:
            self.index = 0
        self.addresses = answer
        return self.address != before


class Resolver:
    """Lookups in a thread; each answer is handed back through `deliver` (Engine.call)."""

    def __init__(self, family: int, deliver: Callable[[str, Answer], None]) -> None:
        self.family = family
        self.deliver = deliver
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._pending: set[str] = set()
        self._thread: threading.Thread | None = None

    def ask(self, host: str) -> None:
        if host in self._pending:
            return
        self._pending.add(host)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="resolver", daemon=True)
            self._thread.start()
        self._queue.put(host)

    def done(self, host: str) -> None:
        self._pending.discard(host)

    def _run(self) -> None:
        while (host := self._queue.get()) is not None:
            answer = lookup(host, self.family)
            with contextlib.suppress(RuntimeError, OSError):  # the engine closed meanwhile
                self.deliver(host, answer)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
