"""Send or receive test data over the overlay, printing what was seen (run inside a netns).

integrity_peer.py tcp-recv PORT           -> prints "<bytes> <sha256>"
integrity_peer.py tcp-send HOST PORT MB   -> prints "<bytes> <sha256>"
integrity_peer.py udp-recv PORT SECONDS   -> prints one line per datagram: sha256 of it
integrity_peer.py udp-send HOST PORT      -> prints one line per datagram sent
"""

from __future__ import annotations

import hashlib
import random
import socket
import sys
import time


def tcp_recv(port: int) -> None:
    srv = socket.create_server(("0.0.0.0", port))
    conn, _ = srv.accept()
    h, n = hashlib.sha256(), 0
    while chunk := conn.recv(1 << 16):
        h.update(chunk)
        n += len(chunk)
    print(n, h.hexdigest(), flush=True)


def tcp_send(host: str, port: int, mb: int) -> None:
    rnd = random.Random(42)
    h, n = hashlib.sha256(), 0
    with socket.create_connection((host, port), timeout=30) as s:
        for _ in range(mb * 16):
            block = rnd.randbytes(1 << 16)
            s.sendall(block)
            h.update(block)
            n += len(block)
    print(n, h.hexdigest(), flush=True)


def udp_recv(port: int, seconds: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    s.bind(("0.0.0.0", port))
    s.settimeout(seconds)
    print("ready", flush=True)
    try:
        while True:
            print(hashlib.sha256(s.recv(65536)).hexdigest(), flush=True)
    except TimeoutError:
        pass


def udp_send(host: str, port: int) -> None:
    rnd = random.Random(7)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sizes = [64] * 200 + [1300] * 200 + [rnd.randrange(1, 1372) for _ in range(300)] + [9] * 50
    for i, size in enumerate(sizes):
        data = i.to_bytes(4, "big") + rnd.randbytes(max(0, size - 4))
        s.sendto(data[:size] if size < 4 else data, (host, port))
        print(hashlib.sha256(data[:size] if size < 4 else data).hexdigest(), flush=True)
        if i % 100 == 99:
            time.sleep(0.01)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "tcp-recv":
        tcp_recv(int(args[0]))
    elif cmd == "tcp-send":
        tcp_send(args[0], int(args[1]), int(args[2]))
    elif cmd == "udp-recv":
        udp_recv(int(args[0]), float(args[1]))
    else:
        udp_send(args[0], int(args[1]))
