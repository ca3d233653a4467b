"""python -m bench.forwarder TAP PEER: the least a Python tunnel can be (a bench reference).

One epoll loop that moves frames between an existing tap and UDP port 3636 of PEER, as
plain rrqnet does, with nothing else: no switch, no counters, no checks, no batching. What
it measures is the floor of any tunnel whose per-frame loop runs in CPython: the cost of
the interpreter waking up, reading and sending. rrqctl's engine is that plus its work.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
PORT = 3636


def main(tap: str, peer: str) -> None:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", tap.encode(), IFF_TAP | IFF_NO_PI))
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
