"""A UDP relay between two engines that corrupts some of what it carries (run in a netns).

usage: relay.py A_SIDE_IP B_SIDE_IP PORT A_IP B_IP PERCENT

Datagrams from A_IP:PORT to A_SIDE_IP:PORT go on to B_IP:PORT from B_SIDE_IP:PORT, and
back the other way. PERCENT of them get one byte changed after the Ethernet header of the
frame they carry, and are sent on as new datagrams: with a UDP checksum the relay's kernel
computes afresh, as a middlebox that corrupts and recomputes would. Prints "ready", and on
SIGTERM how many it carried and corrupted.
"""

from __future__ import annotations

import contextlib
import random
import select
import signal
import socket
import sys


def main() -> None:
    a_side, b_side, port_text, a_ip, b_ip, percent = sys.argv[1:]
    port = int(port_text)
    rate = float(percent) / 100
    rnd = random.Random(1)
    socks = {}
    for name, ip in (("a", a_side), ("b", b_side)):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((ip, port))
        s.setblocking(False)
        socks[name] = s
    onward = {"a": (socks["b"], (b_ip, port)), "b": (socks["a"], (a_ip, port))}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    carried = corrupted = 0
    print("ready", flush=True)
    while not stop:
        try:
            ready, _, _ = select.select(list(socks.values()), [], [], 0.2)
        except InterruptedError:
            continue
        for name, s in socks.items():
            if s not in ready:
                continue
            out, dest = onward[name]
            for _ in range(64):
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    break
                if len(data) > 14 and rnd.random() < rate:
                    i = rnd.randrange(14, len(data))
                    data = data[:i] + bytes([data[i] ^ (1 << rnd.randrange(8))]) + data[i + 1 :]
                    corrupted += 1
                carried += 1
                with contextlib.suppress(BlockingIOError):  # a full queue: a loss, as on a wire
                    out.sendto(data, dest)
    print(carried, corrupted, flush=True)


if __name__ == "__main__":
    main()
