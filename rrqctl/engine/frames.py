"""Ethernet frames as they cross the cable: header fields and MAC addresses."""

from __future__ import annotations

import re

ETH_HLEN = 14  # destination, source, ethertype
HEARTBEAT_MAX = 11  # rrqnet(8): datagrams shorter than 12 bytes are heartbeats
MAX_FRAME = 65535  # the largest frame a tap or a UDP datagram can carry
BROADCAST = b"\xff" * 6

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-]?)(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$")


def is_group(mac: bytes) -> bool:
    """Broadcast or multicast: the I/G bit of the first octet."""
    return bool(mac[0] & 1)


def parse_mac(text: str) -> bytes:
    """'02:00:00:00:00:01' (also '-' separated or bare hex) -> 6 bytes."""
    if not _MAC_RE.match(text):
        raise ValueError(f"'{text}' is not a MAC address (like 02:00:00:00:00:01)")
    return bytes.fromhex(text.replace(":", "").replace("-", ""))


def format_mac(mac: bytes) -> str:
    return mac.hex(":")


def is_unicast_mac(mac: bytes) -> bool:
    return not is_group(mac) and mac != b"\x00" * 6
