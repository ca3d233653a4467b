"""Sealed channels v2, the session layer (docs/protocol.md): the sealed state of one channel
(its sessions, its handshake in flight, its timers), and the engine-wide table of sessions by
index that every sealed datagram is looked up in, with what each message kind owes.

Pure: time comes in as `now` (monotonic seconds) and through `wall` (the wall clock, used
only to date an initiation and to judge one's date); nothing here touches a socket.
"""

from __future__ import annotations

import os
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

from rrqctl.engine import crypto, noise
from rrqctl.engine.handshake import (
    BAD_MAC,
    BAD_TAG,
    COOKIE,
    COOKIE_LEN,
    COOKIE_VALID,
    HANDSHAKE_REPLAY,
    INITIATION,
    INITIATION_LEN,
    MALFORMED,
    RATE_LIMITED,
    RESPONSE,
    RESPONSE_LEN,
    TRANSPORT,
    UNDER_LOAD,
    UNFRESH,
    CookieJar,
    Initiation,
    Keys,
    SeenInitiations,
    TokenBucket,
    check_macs,
    initiation,
    new_index,
    read_cookie,
    read_initiation,
    read_response,
    response,
    source_bytes,
    with_mac2,
)
from rrqctl.engine.transport import (
    EXPIRED_SESSION,
    NOT_SEALED,
    OVERHEAD,
    REJECT_AFTER,
    REKEY_AFTER,
    REKEY_AFTER_MESSAGES,
    REKEY_TIMEOUT,
    TRUNCATED,
    UNKNOWN_SESSION,
    WRONG_ENDPOINT,
    Endpoint,
    MakeBox,
    PyBox,
    Session,
    wall_us,
)

KEEPALIVE = 10.0  # s: heard from, silent since: say something so the peer knows we live
UNANSWERED = KEEPALIVE + REKEY_TIMEOUT  # s: said something, heard nothing: a new handshake
RESPONDER_REKEY = REJECT_AFTER - UNANSWERED  # s: a responder's session, if the other end slept
REKEY_ATTEMPTS = 90.0  # s of retrying every REKEY_TIMEOUT, then every SLOW_RETRY
SLOW_RETRY = 30.0
UNCONFIRMED_FOR = 3 * REKEY_TIMEOUT  # s a responder waits for the first transport datagram
STAGED = 32  # frames held for a channel while its handshake is under way
MAX_SESSIONS = 3  # a channel's live sessions: ours, the peer's, one in the making
UNCONFIRMED_LIMIT = 1024  # responder sessions awaiting their first datagram, engine-wide
HANDSHAKES_PER_SECOND = 50.0  # above this, an initiation must carry a cookie (mac2)
HANDSHAKES_PER_SOURCE = 5.0  # ... and each address gets this many
COOKIE_REPLIES_PER_SECOND = 100.0
NO_SESSION = "no-session"  # a frame pushed out of those waiting for a handshake


class SealedPeer:
    """The sealed state of one channel: its sessions (the newest seals), the handshake it has
    in flight if it is the initiating end (an uplink), frames waiting for a session, timers."""

    def __init__(self, keys: Keys, endpoint: Endpoint, initiates: bool) -> None:
        self.keys = keys
        self.endpoint = endpoint
        self.initiates = initiates
        self.sessions: list[Session] = []  # live ones, oldest first; the last one seals
        self.sent: Initiation | None = None
        self.cookie: bytes | None = None
        self.cookie_at = float("-inf")
        self.last_try = float("-inf")
        self.trying_since: float | None = None
        self.staged: deque[bytes] = deque()
        self.last_sent = float("-inf")
        self.last_heard = float("-inf")
        self.unanswered_since: float | None = None
        self.handshakes = 0  # completed, either role

    @property
    def current(self) -> Session | None:
        return self.sessions[-1] if self.sessions else None

    def sender(self, now: float) -> Session | None:
        s = self.current
        return s if s is not None and s.usable(now) else None

    def adopt(self, s: Session) -> list[Session]:
        """A new live session (it seals from now on); returns the ones it pushed out."""
        s.peer = self
        self.sessions.append(s)
        self.handshakes += 1
        retired = self.sessions[:-MAX_SESSIONS]
        del self.sessions[:-MAX_SESSIONS]
        return retired

    def expire(self, now: float) -> list[Session]:
        gone = [s for s in self.sessions if not s.usable(now)]
        if gone:
            self.sessions = [s for s in self.sessions if s.usable(now)]
        return gone

    def needs_handshake(self, now: float) -> bool:
        """The initiating end's rule: no usable session, one due for a rekey, or no answer."""
        if not self.initiates:
            return False
        s = self.sender(now)
        if s is None or s.counter >= REKEY_AFTER_MESSAGES:
            return True
        age = now - s.created
        if age >= (REKEY_AFTER if s.initiator else RESPONDER_REKEY):
            return True
        return self.unanswered_since is not None and now - self.unanswered_since >= UNANSWERED

    def may_try(self, now: float) -> bool:
        """An initiation now would not come too soon after the last one."""
        since = now - self.last_try
        if since < REKEY_TIMEOUT:
            return False
        if self.trying_since is None or now - self.trying_since < REKEY_ATTEMPTS or self.staged:
            return True
        return since >= SLOW_RETRY

    def keepalive_due(self, now: float) -> bool:
        """Heard from since we last said anything, KEEPALIVE ago: say something."""
        return self.last_heard > self.last_sent and now - self.last_heard >= KEEPALIVE

    def said(self, now: float) -> None:
        self.last_sent = now
        if self.unanswered_since is None:
            self.unanswered_since = now

    def heard(self, now: float) -> None:
        self.last_heard = now
        self.unanswered_since = None

    def stage(self, frame: bytes) -> bool:
        """Hold a frame until a session exists; False if that pushed an older one out."""
        self.staged.append(frame)
        if len(self.staged) > STAGED:
            self.staged.popleft()
            return False
        return True

    def cookie_for(self, now: float) -> bytes | None:
        return self.cookie if now - self.cookie_at < COOKIE_VALID else None

    def status(self, now: float) -> dict[str, Any]:
        s = self.current
        return {
            "sessions": len(self.sessions),
            "session_age": None if s is None else round(now - s.created, 1),
            "handshakes": self.handshakes,
            "handshake_in_flight": self.sent is not None,
        }


class Sealing:
    """Every session of an engine by its index, and what to do with a sealed datagram.

    receive() answers a datagram with its payload (bytes), a drop reason (str) or None (a
    handshake message, handled); what it leads to is left in `events` for the engine:
    ("send", endpoint, datagram), ("established", peer) when our handshake completed, and
    ("confirmed", session) when a responder session is first used by an endpoint that has
    no channel yet."""

    def __init__(
        self,
        freshness: float,
        *,
        wall: Callable[[], int] = wall_us,
        random: Callable[[int], bytes] = os.urandom,
        dh: Callable[[], crypto.DhKey] = crypto.DhKey,
    ) -> None:
        self.freshness_us = int(freshness * 1e6)
        self.wall = wall
        self.random = random
        self.dh = dh
        self.sessions: dict[bytes, Session] = {}
        self.pending: dict[bytes, tuple[Initiation, SealedPeer]] = {}
        self.unconfirmed: OrderedDict[bytes, Session] = OrderedDict()
        keep = 2 * freshness if freshness else REJECT_AFTER
        self.seen = SeenInitiations(max(keep, REJECT_AFTER))
        self.jar = CookieJar(random)
        self.budget = TokenBucket(HANDSHAKES_PER_SECOND, HANDSHAKES_PER_SECOND)
        self.per_source = TokenBucket(HANDSHAKES_PER_SOURCE, 2 * HANDSHAKES_PER_SOURCE)
        self.cookie_budget = TokenBucket(COOKIE_REPLIES_PER_SECOND, COOKIE_REPLIES_PER_SECOND)
        self.cookied: OrderedDict[bytes, None] = OrderedDict()
        self.events: list[tuple[Any, ...]] = []
        self.box: MakeBox = PyBox  # (the C datapath's Box while it runs: fastpath.py)
        self.changed: set[SealedPeer] = set()  # whose sessions changed (the C datapath's)

    def _taken(self, index: bytes) -> bool:
        return index in self.sessions or index in self.pending

    # ---- initiating ---------------------------------------------------------------------

    def initiate(self, peer: SealedPeer, now: float) -> bytes:
        """A new initiation for peer (replacing one in flight); the datagram to send."""
        self.abandon(peer)
        ephemeral = self.dh()
        index = new_index(self._taken, self.random)
        sent = initiation(peer.keys, index, self.wall(), ephemeral, now)
        self.seen.add(ephemeral.public, now)  # so that ours, reflected, is refused
        self.pending[sent.index] = (sent, peer)
        peer.sent = sent
        peer.last_try = now
        if peer.trying_since is None:
            peer.trying_since = now
        return with_mac2(sent.message, peer.cookie_for(now))

    def abandon(self, peer: SealedPeer) -> None:
        if peer.sent is not None:
            self.pending.pop(peer.sent.index, None)
            peer.sent = None

    # ---- receiving ----------------------------------------------------------------------

    def receive(
        self,
        data: bytes,
        endpoint: Endpoint,
        peer: SealedPeer | None,
        keys: Keys,
        now: float,
        *,
        decl: object = None,
    ) -> bytes | str | None:
        """A sealed datagram from endpoint (its channel's peer, if it has one; the keys of the
        declaration that admits it; that declaration)."""
        if len(data) < 4 or data[1:4] != b"\0\0\0":
            return TRUNCATED if len(data) < 4 else NOT_SEALED
        kind = data[0]
        if kind == TRANSPORT:
            return self._transport(data, endpoint, peer, now)
        if kind == INITIATION:
            return self._initiation(data, endpoint, keys, now, decl=decl)
        if kind == RESPONSE:
            return self._response(data, endpoint, now)
        if kind == COOKIE:
            return self._cookie(data, endpoint, now)
        return NOT_SEALED

    def _transport(
        self, data: bytes, endpoint: Endpoint, peer: SealedPeer | None, now: float
    ) -> bytes | str:
        if len(data) < OVERHEAD:
            return TRUNCATED
        s = self.sessions.get(data[4:8])
        if s is None:
            return UNKNOWN_SESSION
        if s.endpoint != endpoint or (s.peer is not None and s.peer is not peer):
            return WRONG_ENDPOINT
        if not s.usable(now):
            return EXPIRED_SESSION
        payload = s.open(data)
        if type(payload) is bytes and not s.confirmed:
            s.confirmed = True
            self.unconfirmed.pop(s.index, None)
            if peer is not None:
                self._adopt(peer, s)
            else:
                self.events.append(("confirmed", s))
        return payload

    def _initiation(
        self, data: bytes, endpoint: Endpoint, keys: Keys, now: float, *, decl: object
    ) -> str | None:
        if len(data) != INITIATION_LEN:
            return MALFORMED
        if not check_macs(data, keys):
            return BAD_MAC
        ephemeral = data[8:40]
        if ephemeral in self.seen:
            return HANDSHAKE_REPLAY
        refused = self._load_check(data, endpoint, keys, now)
        if refused is not None:
            return refused
        try:
            read = read_initiation(data, keys)
        except noise.HandshakeError:
            return BAD_TAG
        if self.freshness_us and abs(read.wall_us - self.wall()) > self.freshness_us:
            return UNFRESH
        self.seen.add(ephemeral, now)
        self.budget.take(None, now)
        index = new_index(self._taken, self.random)
        try:
            reply, keys_ = response(read, keys, index, self.dh())
        except noise.HandshakeError:
            return BAD_TAG
        s = Session(
            index,
            read.sender,
            keys_,
            endpoint=endpoint,
            keys=keys,
            initiator=False,
            now=now,
            box=self.box,
        )
        s.decl = decl
        self.sessions[index] = s
        self.unconfirmed[index] = s
        if len(self.unconfirmed) > UNCONFIRMED_LIMIT:
            _, old = self.unconfirmed.popitem(last=False)
            self.sessions.pop(old.index, None)
        self.events.append(("send", endpoint, reply))
        return None

    def _load_check(self, data: bytes, endpoint: Endpoint, keys: Keys, now: float) -> str | None:
        """Under load (more initiations than the budget), an initiation must prove with its
        mac2 that its sender receives at its address: else it gets a cookie reply, once."""
        if self.budget.has(None, now):
            return None
        source = source_bytes(*endpoint)
        if self.jar.valid(data, source, now):
            return None if self.per_source.take(endpoint[0], now) else RATE_LIMITED
        ephemeral = data[8:40]
        if ephemeral not in self.cookied and self.cookie_budget.take(None, now):
            self.cookied[ephemeral] = None
            if len(self.cookied) > 4096:
                self.cookied.popitem(last=False)
            self.events.append(("send", endpoint, self.jar.reply(data, source, keys, now)))
        return UNDER_LOAD

    def _sent(
        self, data: bytes, length: int, at: int, endpoint: Endpoint
    ) -> tuple[Initiation, SealedPeer] | str:
        """The initiation of ours a response or cookie reply (of its length, naming our index
        at offset at) answers, or why not."""
        if len(data) != length:
            return MALFORMED
        found = self.pending.get(data[at : at + 4])
        if found is None:
            return UNKNOWN_SESSION
        if found[1].endpoint != endpoint:
            return WRONG_ENDPOINT
        return found

    def _response(self, data: bytes, endpoint: Endpoint, now: float) -> str | None:
        found = self._sent(data, RESPONSE_LEN, 8, endpoint)
        if isinstance(found, str):
            return found
        sent, peer = found
        if not check_macs(data, peer.keys):
            return BAD_MAC
        try:
            remote, keys_ = read_response(data, sent)
        except noise.HandshakeError:
            return BAD_TAG
        del self.pending[sent.index]
        peer.sent = None
        peer.trying_since = None
        s = Session(
            sent.index,
            remote,
            keys_,
            endpoint=endpoint,
            keys=peer.keys,
            initiator=True,
            now=now,
            box=self.box,
        )
        self.sessions[s.index] = s
        self._adopt(peer, s)
        self.events.append(("established", peer))
        return None

    def _cookie(self, data: bytes, endpoint: Endpoint, now: float) -> str | None:
        found = self._sent(data, COOKIE_LEN, 4, endpoint)
        if isinstance(found, str):
            return found
        sent, peer = found
        cookie = read_cookie(data, sent, peer.keys)
        if cookie is None:
            return BAD_TAG
        first = peer.cookie_for(now) != cookie
        peer.cookie, peer.cookie_at = cookie, now
        if first:  # ask again at once, with the cookie (a second reply changes nothing)
            self.events.append(("send", endpoint, with_mac2(sent.message, cookie)))
        return None

    # ---- upkeep -------------------------------------------------------------------------

    def adopt(self, peer: SealedPeer, s: Session) -> None:
        """A confirmed session, for the channel the engine made for its endpoint."""
        self._adopt(peer, s)

    def _adopt(self, peer: SealedPeer, s: Session) -> None:
        self._retire(peer.adopt(s))
        self.changed.add(peer)

    def _retire(self, sessions: list[Session]) -> None:
        for s in sessions:
            self.sessions.pop(s.index, None)

    def forget(self, peer: SealedPeer) -> None:
        """A channel is gone: its sessions and its handshake with it."""
        self.abandon(peer)
        self._retire(peer.sessions)
        peer.sessions = []
        self.changed.add(peer)

    def expire(self, now: float) -> None:
        """Sessions past their time, initiations unanswered, responders never confirmed."""
        for index, s in list(self.sessions.items()):
            if not s.usable(now):
                del self.sessions[index]
        for index, (sent, peer) in list(self.pending.items()):
            if now - sent.sent >= REKEY_TIMEOUT:
                del self.pending[index]
                peer.sent = None
        while self.unconfirmed:
            index, s = next(iter(self.unconfirmed.items()))
            if now - s.created < UNCONFIRMED_FOR:
                break
            del self.unconfirmed[index]
            self.sessions.pop(index, None)
        self.seen.expire(now)
