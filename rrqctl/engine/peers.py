"""The engine's remote channels by address: the declarations that admit them, downlinks made
and forgotten, key files, and the sealed channels' sessions and handshakes (sessions.py)
as they meet the channels. The datapath (loop.py) asks this module what a sealed datagram
holds and what a frame becomes on the wire; everything it sends on its own (handshakes,
replies, keepalives) goes out through the `send` it is given.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterator

from rrqctl.engine import crypto
from rrqctl.engine.channels import DOWNLINK_LIMIT, Channel, Kind
from rrqctl.engine.handshake import TRANSPORT, UNFRESH, Keys
from rrqctl.engine.ports import SockKey, peer_ip, sockaddr
from rrqctl.engine.remotes import Remote, best_match, endpoint_name
from rrqctl.engine.resolver import SILENT_AFTER, Answer, Name, Resolver
from rrqctl.engine.sessions import NO_SESSION, SealedPeer, Sealing
from rrqctl.engine.stats import Drops, RateLimitedLog
from rrqctl.engine.switch import Switch
from rrqctl.engine.transport import OVERHEAD, REFUSED, REJECT_AFTER, Session

NO_REMOTE = "no-remote"
DOWNLINKS_FULL = "downlinks-full"

Send = Callable[[Channel | None, SockKey, bytes], None]  # a datagram of our own, to an endpoint


class Peers:
    """Channels to remote endpoints, and what admits, seals and opens their datagrams."""

    def __init__(
        self,
        switch: Switch,
        drops: Drops,
        log: logging.Logger,
        send: Send,
        freshness: float,
        *,
        sealing: Sealing | None = None,
    ) -> None:
        self.switch = switch
        self.drops = drops
        self.log = log
        self.ratelog = RateLimitedLog(log)
        self.send = send
        self.freshness = freshness
        self.by_addr: dict[SockKey, Channel] = {}
        self.remotes: tuple[Remote, ...] = ()
        self.downlinks: collections.Counter[Remote] = collections.Counter()  # per declaration
        self.keyfiles: dict[str, bytes] = {}
        self.keys: dict[str, Keys] = {}
        self.sealing = sealing or Sealing(freshness)
        self.family: int | None = None  # the UDP socket's, once it is open
        self.names: dict[str, Name] = {}  # host names in remotes, and what they resolve to
        self.resolver: Resolver | None = None
        self.on_added: Callable[[Channel], None] | None = None  # the engine measures its path

    # ---- declarations and keys ----------------------------------------------------------

    def load_keys(self, paths: list[str]) -> set[str]:
        """Read the key files; the paths whose contents changed (or are new)."""
        files = {path: crypto.read_keyfile(path) for path in paths}
        changed = {p for p, data in files.items() if self.keyfiles.get(p) != data}
        self.keyfiles = files
        self.keys = {
            p: Keys.from_keyfile(data) if p in changed else self.keys[p]
            for p, data in files.items()
        }
        return changed

    def set_remotes(self, remotes: tuple[Remote, ...], family: int | None, now: float) -> None:
        """Adopt a new list of declarations; channels of surviving ones keep their state."""
        self.remotes = remotes
        self.family = family
        for ch in list(self.by_addr.values()):
            if ch.remote not in remotes:
                self.forget(ch, "no longer declared")
        hosts = {r.host for r in remotes if r.host is not None}
        for host in list(self.names):
            if host not in hosts:
                del self.names[host]
        for r in remotes:
            if r.is_uplink and family is not None:
                self._uplink(r, family, now)

    def _uplink(self, r: Remote, family: int, now: float) -> None:
        """The channel of an uplink, at its address (a host name's, once it resolves)."""
        assert r.port is not None
        if r.host is None:
            ip, name = r.address, endpoint_name(r.address, r.port)
        else:
            known = self.names.setdefault(r.host, Name(r.host))
            if known.address is None:
                self._ask(known, now)
                return
            ip, name = known.address, f"{r.host}:{r.port}"
        key = sockaddr(ip, r.port, family)
        if key not in self.by_addr:
            self.add(Channel(Kind.UPLINK, name, now, r, key))

    # ---- host names ---------------------------------------------------------------------

    def _ask(self, name: Name, now: float) -> None:
        if self.resolver is not None and name.asked != now:
            name.asked = now
            self.resolver.ask(name.host)

    def _silent(self, host: str, now: float) -> bool:
        """The uplink of host is unheard for a heartbeat and more (or not there at all)."""
        for ch in self.by_addr.values():
            if isinstance(ch.remote, Remote) and ch.remote.host == host:
                return now - (ch.last_heard if ch.last_heard is not None else ch.created) >= (
                    SILENT_AFTER
                )
        return True

    def resolved(self, host: str, answer: Answer, now: float) -> None:
        """(Loop thread) a lookup's answer: a name that moved takes its uplink with it."""
        if self.resolver is not None:
            self.resolver.done(host)
        name = self.names.get(host)
        if name is None:
            return
        before = name.address
        if not name.take(answer, now, self._silent(host, now)):
            if name.error is not None:
                self.ratelog.warning(
                    ("resolve", host), "%s does not resolve (%s): trying again", host, name.error
                )
            return
        self.log.info("%s is at %s%s", host, name.address, f" (was {before})" if before else "")
        for ch in list(self.by_addr.values()):
            if isinstance(ch.remote, Remote) and ch.remote.host == host:
                self.forget(ch, f"{host} moved to {name.address}")
        if self.family is not None:
            for r in self.remotes:
                if r.host == host and r.is_uplink:
                    self._uplink(r, self.family, now)

    def unresolved(self) -> list[dict[str, str]]:
        out = []
        for r in self.remotes:
            if r.host is not None and self.names.get(r.host, Name(r.host)).address is None:
                known = self.names.get(r.host)
                error = known.error if known is not None and known.error else "resolving"
                out.append({"name": r.text(), "error": error})
        return out

    def rekeyed(self, changed: set[str]) -> None:
        """Channels whose key file changed are forgotten (uplinks come back with new keys)."""
        for ch in list(self.by_addr.values()):
            r = ch.remote
            if isinstance(r, Remote) and r.keyfile in changed:
                self.forget(ch, "key file changed")

    def add(self, ch: Channel) -> None:
        r = ch.remote
        if isinstance(r, Remote) and r.keyfile:
            ch.peer = SealedPeer(self.keys[r.keyfile], ch.addr, initiates=ch.kind is Kind.UPLINK)
        if ch.kind is Kind.DOWNLINK and isinstance(r, Remote):
            self.downlinks[r] += 1
        self.by_addr[ch.addr] = ch
        self.switch.add(ch)
        if self.on_added is not None:
            self.on_added(ch)
        self.log.info("%s %s added%s", ch.kind, ch.name, " (sealed)" if ch.sealed else "")

    def forget(self, ch: Channel, why: str) -> None:
        self.by_addr.pop(ch.addr, None)
        if ch.kind is Kind.DOWNLINK and isinstance(ch.remote, Remote):
            self.downlinks[ch.remote] -= 1
        if ch.peer is not None:
            self.sealing.forget(ch.peer)
        self.switch.remove(ch)
        self.log.info("%s %s forgotten: %s", ch.kind, ch.name, why)

    def _effective(self) -> list[Remote]:
        """The declarations as they admit sources now: host names at their addresses."""
        out = []
        for r in self.remotes:
            if r.host is None:
                out.append(r)
            elif (known := self.names.get(r.host)) is not None and known.address is not None:
                out.append(r.at(known.address))
        return out

    def declaration(self, key: SockKey) -> Remote | str:
        """The declaration that admits a new source, or the reason none does (counted)."""
        found = best_match(self._effective(), peer_ip(key[0]), key[1])
        decl = None if found is None else found.declared()
        if decl is None:
            self.drops.count(NO_REMOTE)
            self.ratelog.info(
                ("no-remote", key[0]), "dropped datagram from %s: no remote admits it", key
            )
            return NO_REMOTE
        if self.downlinks[decl] >= DOWNLINK_LIMIT:
            self.drops.count(DOWNLINKS_FULL)
            self.ratelog.warning(
                ("downlinks-full", decl),
                "dropped datagram from %s: %s already has %d downlinks",
                key,
                decl,
                DOWNLINK_LIMIT,
            )
            return DOWNLINKS_FULL
        return decl

    def downlink(self, decl: Remote, key: SockKey, now: float) -> Channel:
        ch = Channel(Kind.DOWNLINK, endpoint_name(peer_ip(key[0]), key[1]), now, decl, key)
        self.add(ch)
        return ch

    # ---- sealed datagrams in ------------------------------------------------------------

    def opened(self, ch: Channel, datagrams: list[bytes], now: float) -> Iterator[bytes]:
        """The payloads (b"" a heartbeat) of the sealed datagrams from ch that are authentic;
        the others are dropped and counted, handshake messages answered."""
        peer = ch.peer
        assert peer is not None
        sessions = self.sealing.sessions
        heard = False
        for d in datagrams:
            # HOT PATH: a transport datagram of one of ch's own sessions, its next counter
            s = sessions.get(d[4:8]) if len(d) >= OVERHEAD and d[0] == TRANSPORT else None
            if (
                s is not None
                and s.peer is peer
                and d[1:4] == b"\0\0\0"
                and now - s.created < REJECT_AFTER
            ):
                payload = s.box.open(d)
                if type(payload) is bytes:
                    if not heard:
                        heard = True
                        self._heard(ch, peer, now)
                    yield payload
                else:
                    self._refused(ch, REFUSED[payload])  # type: ignore[index]
                continue
            # COLD PATH: handshakes, other sessions, refusals
            result = self._slow(d, ch, now)
            if isinstance(result, bytes):
                self._heard(ch, peer, now)
                yield result
            elif isinstance(result, str):
                self._refused(ch, result)

    def _slow(self, d: bytes, ch: Channel, now: float) -> bytes | str | None:
        assert ch.peer is not None
        result = self.sealing.receive(d, ch.addr, ch.peer, ch.peer.keys, now, decl=ch.remote)
        self._events(now)
        return result

    def admit(
        self, key: SockKey, data: bytes, decl: Remote, now: float
    ) -> tuple[Channel, bytes] | None:
        """A sealed datagram from a source without a channel: handshakes are answered, and
        the first transport datagram of a handshake this engine answered makes the downlink.
        Returns that downlink and the payload, or None (handled or dropped and counted)."""
        assert decl.keyfile is not None
        sealing = self.sealing
        result = sealing.receive(data, key, None, self.keys[decl.keyfile], now, decl=decl)
        confirmed = [e[1] for e in sealing.events if e[0] == "confirmed"]
        self._events(now)
        if isinstance(result, str):
            self._refused(None, result, key)
            return None
        if result is None or not confirmed:
            return None
        ch = self.by_addr.get(key)
        if ch is None or ch.peer is None:
            return None
        return ch, result

    def _refused(self, ch: Channel | None, reason: str, key: SockKey | None = None) -> None:
        self.drops.count(reason)
        if ch is not None:
            ch.refuse(reason)
        if reason == UNFRESH:
            self.ratelog.warning(
                ("unfresh", key or (ch and ch.addr)),
                "refused a handshake from %s: its clock and ours differ by more than %.0f s "
                "(see RRQNET_FRESHNESS): are both in step?",
                ch.name if ch is not None else key,
                self.freshness,
            )

    def _events(self, now: float) -> None:
        sealing = self.sealing
        while sealing.events:
            event = sealing.events.pop(0)
            if event[0] == "send":
                self.send(self.by_addr.get(event[1]), event[1], event[2])
            elif event[0] == "established":
                self._established(event[1], now)
            else:
                self._confirmed(event[1], now)

    def _confirmed(self, s: Session, now: float) -> None:
        """A responder session used for the first time by an endpoint with no channel."""
        ch = self.by_addr.get(s.endpoint)
        if ch is None:
            decl = s.decl
            if not isinstance(decl, Remote) or self.downlinks[decl] >= DOWNLINK_LIMIT:
                self.sealing.sessions.pop(s.index, None)
                self.drops.count(DOWNLINKS_FULL)
                return
            ch = self.downlink(decl, s.endpoint, now)
        if ch.peer is None:
            return
        self.sealing.adopt(ch.peer, s)
        self._came_up_sealed(ch, now)

    def _established(self, peer: SealedPeer, now: float) -> None:
        """Our handshake completed: the frames it waited for, or a heartbeat, confirm it."""
        ch = self.by_addr.get(peer.endpoint)
        if ch is None or ch.peer is not peer:
            return
        self.log.debug("%s: handshake complete", ch.name)
        self._heard(ch, peer, now)
        staged = list(peer.staged)
        peer.staged.clear()
        for frame in staged or [b""]:
            data = self.seal(ch, frame, now)
            if data is None:
                continue
            self.send(ch, ch.addr, data)
            if frame:
                ch.tx_frames += 1
                ch.tx_bytes += len(frame)
            else:
                ch.tx_heartbeats += 1

    def _heard(self, ch: Channel, peer: SealedPeer, now: float) -> None:
        peer.heard(now)
        if ch.heard(now):
            self._came_up_sealed(ch, now)

    def _came_up_sealed(self, ch: Channel, now: float) -> None:
        ch.heard(now)
        self.log.info("%s %s is up (sealed)", ch.kind, ch.name)

    # ---- sealed datagrams out -----------------------------------------------------------

    def seal(self, ch: Channel, frame: bytes, now: float) -> bytes | None:
        """The datagram that carries frame (b"": a heartbeat) on sealed channel ch, or None:
        no session yet, the frame waits for the handshake, which this starts if ours to."""
        peer = ch.peer
        assert peer is not None
        s = peer.sender(now)
        if s is None:
            if frame and not peer.stage(frame):
                self.drops.count(NO_SESSION)
                ch.drop(NO_SESSION)
            if peer.initiates and peer.may_try(now):
                self.initiate(ch, now)
            return None
        peer.said(now)
        return s.seal(frame)

    def initiate(self, ch: Channel, now: float) -> None:
        assert ch.peer is not None
        self.log.debug("%s: handshake initiation", ch.name)
        self.send(ch, ch.addr, self.sealing.initiate(ch.peer, now))

    def tick(self, now: float) -> None:
        """Once a second: names to look up, sessions past their time, handshakes due,
        keepalives due."""
        for host, name in self.names.items():
            if name.due(now, self._silent(host, now)):
                self._ask(name, now)
        self.sealing.expire(now)
        for ch in list(self.by_addr.values()):
            peer = ch.peer
            if peer is None:
                continue
            if peer.expire(now):
                self.sealing.changed.add(peer)
            if peer.needs_handshake(now) and peer.may_try(now):
                self.initiate(ch, now)
            elif peer.keepalive_due(now) and (data := self.seal(ch, b"", now)) is not None:
                self.send(ch, ch.addr, data)
                ch.tx_heartbeats += 1

    def heartbeat(self, ch: Channel, now: float) -> bytes | None:
        """An uplink's heartbeat: empty, or sealed if ch is; None if ch has no session yet
        (then a handshake is started instead, if one is due)."""
        if ch.peer is None:
            return b""
        return self.seal(ch, b"", now)
