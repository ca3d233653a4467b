"""Send crafted sealed datagrams from the address a peer should have (run inside a netns).

usage: sealed_sender.py KEYFILE BIND_IP BIND_PORT DEST_IP DEST_PORT HEX_FRAME ACTION...
ACTION: handshake | good | replay | other-key | truncated | heartbeat

`handshake` makes a session with the engine (as an engine would: initiate, read the response,
confirm with a heartbeat); `good`, `replay` and `heartbeat` need one.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from rrqctl.engine.handshake import RESPONSE, Keys
from rrqctl.engine.sessions import SealedPeer, Sealing


def handshake(s: socket.socket, dest: tuple[str, int], keys: Keys) -> SealedPeer:
    sealing, peer = Sealing(600.0), SealedPeer(keys, dest, initiates=True)
    s.sendto(sealing.initiate(peer, time.monotonic()), dest)
    s.settimeout(3.0)
    while peer.sender(time.monotonic()) is None:
        data, addr = s.recvfrom(65536)  # the engine's own initiations may come too
        if data[:1] == bytes([RESPONSE]):
            sealing.receive(data, (addr[0], addr[1]), peer, keys, time.monotonic())
    session = peer.sender(time.monotonic())
    assert session is not None
    s.sendto(session.seal(b""), dest)  # confirms the handshake
    return peer


def main() -> None:
    keyfile, bind_ip, bind_port, dest_ip, dest_port, frame_hex, *actions = sys.argv[1:]
    frame = bytes.fromhex(frame_hex)
    with open(keyfile, "rb") as f:
        keys = Keys.from_keyfile(f.read())
    stranger = Keys.from_keyfile(os.urandom(64))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind_ip, int(bind_port)))
    dest = (dest_ip, int(dest_port))
    peer: SealedPeer | None = None
    last = b""
    for action in actions:
        session = peer.sender(time.monotonic()) if peer is not None else None
        if action == "handshake":
            peer = handshake(s, dest, keys)
        elif action == "good" and session is not None:
            last = session.seal(frame)
            s.sendto(last, dest)
        elif action == "replay":
            s.sendto(last, dest)
        elif action == "other-key":
            other = SealedPeer(stranger, dest, initiates=True)
            s.sendto(Sealing(600.0).initiate(other, time.monotonic()), dest)
        elif action == "truncated":
            whole = session.seal(frame) if session else bytes.fromhex("24000000") + bytes(60)
            s.sendto(whole[:30], dest)
        elif action == "heartbeat" and session is not None:
            s.sendto(session.seal(b""), dest)
        else:
            raise SystemExit(f"cannot do {action} here")


if __name__ == "__main__":
    main()
