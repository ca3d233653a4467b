"""What an attacker on the underlay does, as a command run inside a test's namespace.

    wire.py sniff IFACE PORT OUT          record UDP datagrams to or from PORT seen on IFACE
                                          (until SIGTERM) as JSON lines: src, sport, dst,
                                          dport, hex
    wire.py send FILE DST DPORT SRC SPORT [RATE SECONDS]
                                          send each recorded payload in FILE (or, with RATE,
                                          cycle through them at RATE datagrams a second for
                                          SECONDS) to DST:DPORT from SRC:SPORT; SRC need
                                          not be ours: the IPv4 header is forged then
    wire.py count IFACE SPORT SECONDS     how many UDP datagrams from port SPORT arrive on
                                          IFACE in SECONDS (printed)
    wire.py group KEYFILE GROUP PORT HEX  one frame to a multicast group, sealed by a member
                                          of its own (a new session) under KEYFILE

FILE holds JSON lines with "hex" (as sniff writes them), or is "-" for random junk.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterator

ETH_P_ALL = 3


def _udp(frame: bytes) -> tuple[str, int, str, int, bytes] | None:
    """(src, sport, dst, dport, payload) of an Ethernet/IPv4/UDP frame."""
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return None
    ihl = (frame[14] & 0x0F) * 4
    sport, dport, length = struct.unpack_from("!HHH", frame, 14 + ihl)
    payload = frame[14 + ihl + 8 : 14 + ihl + length]
    return socket.inet_ntoa(frame[26:30]), sport, socket.inet_ntoa(frame[30:34]), dport, payload


def sniff(iface: str, port: int, out: str) -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(out, "w") as f:
        print("sniffing", flush=True)
        while not stop:
            try:
                frame, meta = s.recvfrom(65536)
            except InterruptedError:
                continue
            u = _udp(frame)
            if u is not None and port in (u[1], u[3]):
                src, sport, dst, dport, payload = u
                rec = {"src": src, "sport": sport, "dst": dst, "dport": dport, "hex": payload.hex()}
                f.write(json.dumps(rec) + "\n")
                f.flush()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _forged(src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(udp))
    udp = udp[:6] + struct.pack("!H", _checksum(pseudo + udp) or 0xFFFF) + udp[8:]
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + len(udp),
        0,
        0x4000,
        64,
        17,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return ip + udp


def _payloads(path: str) -> list[bytes]:
    if path == "-":
        return [os.urandom(n) for n in (20, 60, 96, 92, 52, 150, 1000)]
    with open(path) as f:
        return [bytes.fromhex(json.loads(line)["hex"]) for line in f if line.strip()]


class Sender:
    """Datagrams from src:sport, a socket of ours if the address is ours, else forged."""

    def __init__(self, src: str, sport: int) -> None:
        self.src, self.sport = src, sport
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            self.sock.bind((src, sport))
            self.raw = False
        except OSError:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            self.raw = True

    def send(self, payload: bytes, dst: str, dport: int) -> None:
        try:
            if self.raw:
                self.sock.sendto(_forged(self.src, self.sport, dst, dport, payload), (dst, 0))
            else:
                self.sock.sendto(payload, (dst, dport))
        except OSError:
            pass  # a full queue: the flood goes on


def _paced(payloads: list[bytes], rate: float, seconds: float) -> Iterator[bytes]:
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        due = start + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield payloads[n % len(payloads)]
        n += 1


def send(
    path: str, dst: str, dport: int, src: str, sport: int, rate: float, seconds: float
) -> None:
    payloads = _payloads(path)
    sender = Sender(src, sport)
    it = _paced(payloads, rate, seconds) if rate else iter(payloads)
    n = 0
    for p in it:
        sender.send(p, dst, dport)
        n += 1
    print(f"sent {n}", flush=True)


def count(iface: str, sport: int, seconds: float) -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.settimeout(0.1)
    n = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            frame = s.recv(65536)
        except TimeoutError:
            continue
        u = _udp(frame)
        if u is not None and u[1] == sport:
            n += 1
    print(n, flush=True)


def group_frame(keyfile: str, group: str, port: int, frame: bytes) -> None:
    from rrqctl.engine.group import GroupSender
    from rrqctl.engine.handshake import Keys

    with open(keyfile, "rb") as f:
        sender = GroupSender(Keys.from_keyfile(f.read()).group)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(sender.seal(frame), (group, port))


def main(argv: list[str]) -> None:
    cmd, *args = argv
    if cmd == "sniff":
        sniff(args[0], int(args[1]), args[2])
    elif cmd == "send":
        rate, seconds = (float(args[5]), float(args[6])) if len(args) > 5 else (0.0, 0.0)
        send(args[0], args[1], int(args[2]), args[3], int(args[4]), rate, seconds)
    elif cmd == "group":
        group_frame(args[0], args[1], int(args[2]), bytes.fromhex(args[3]))
    elif cmd == "count":
        count(args[0], int(args[1]), float(args[2]))
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
