"""python -m bench.forwarder TAP PEER: the least a Python tunnel can be (a bench reference).

One epoll loop that moves frames between an existing tap and UDP port 3636 of PEER, as
plain rrqnet does, with nothing else: no switch, no counters, no checks, no batching. What
it measures is the floor of any tunnel whose per-frame loop runs in CPython: the cost of
the interpreter waking up, reading and sending. rrqctl's engine is that plus its work.
"""

from __future__ import annotations

import os
import select
import socket
import sys

from rrqctl.system.tun import open_tap

PORT = 3636


def main(tap: str, peer: str) -> None:
    fd = open_tap(tap)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", PORT))
    sock.setblocking(False)
    poll = select.epoll()
    poll.register(fd, select.EPOLLIN)
    poll.register(sock.fileno(), select.EPOLLIN)
    read, write, recv, sendto, to = os.read, os.write, sock.recv, sock.sendto, (peer, PORT)
    while True:
        for ready, _ in poll.poll():
            try:
                if ready == fd:
                    sendto(read(fd, 65536), to)
                else:
                    write(fd, recv(65536))
            except BlockingIOError:
                pass


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
