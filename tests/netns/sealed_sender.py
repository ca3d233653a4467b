"""Send crafted sealed datagrams from the address a peer should have (run inside a netns).

usage: sealed_sender.py KEYFILE BIND_IP BIND_PORT DEST_IP DEST_PORT HEX_FRAME ACTION...
ACTION: good | replay | other-key | truncated | heartbeat
"""

from __future__ import annotations

import os
import socket
import sys

from rrqctl.engine import crypto


def main() -> None:
    keyfile, bind_ip, bind_port, dest_ip, dest_port, frame_hex, *actions = sys.argv[1:]
    frame = bytes.fromhex(frame_hex)
    with open(keyfile, "rb") as f:
        sealer = crypto.Sealer(crypto.master_key(f.read()))
    stranger = crypto.Sealer(crypto.master_key(os.urandom(64)))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((bind_ip, int(bind_port)))
    dest = (dest_ip, int(dest_port))
    last = b""
    for action in actions:
        if action == "good":
            last = sealer.seal(frame)
            s.sendto(last, dest)
        elif action == "replay":
            s.sendto(last, dest)
        elif action == "other-key":
            s.sendto(stranger.seal(frame), dest)
        elif action == "truncated":
            s.sendto(sealer.seal(frame)[:30], dest)
        elif action == "heartbeat":
            s.sendto(sealer.heartbeat(), dest)
        else:
            raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main()
