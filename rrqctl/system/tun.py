"""/dev/net/tun: attach to a tap (creating a non-persistent one if absent), set its offloads,
adopt a tap's file descriptor that was kept for us.

Plain ioctls, so the datapath process needs no netlink library.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import struct

TUN_PATH = "/dev/net/tun"
TUNSETIFF = 0x400454CA
TUNSETPERSIST = 0x400454CB
TUNGETIFF = 0x800454D2
TUNSETOFFLOAD = 0x400454D0
TUNSETVNETHDRSZ = 0x400454D8
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
IFF_NAPI = 0x0010
IFNAMSIZ = 16

# TUNSETOFFLOAD flags
TUN_F_CSUM = 0x01
TUN_F_TSO4 = 0x02
TUN_F_TSO6 = 0x04
TUN_F_TSO_ECN = 0x08


def _ifreq(name: str, flags: int) -> bytes:
    raw = name.encode()
    if not raw or len(raw) >= IFNAMSIZ or b"/" in raw:
        raise ValueError(f"'{name}' is not a valid interface name")
    return struct.pack("16sH22x", raw, flags)


def open_tap(name: str, *, vnet_hdr: bool = False, nonblocking: bool = True) -> int:
    """A file descriptor attached to tap `name` (frames without packet information)."""
    flags = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
    fd = os.open(TUN_PATH, os.O_RDWR | os.O_CLOEXEC | (os.O_NONBLOCK if nonblocking else 0))
    try:
        fcntl.ioctl(fd, TUNSETIFF, _ifreq(name, flags))
    except OSError as e:
        os.close(fd)
        if e.errno == errno.EINVAL:
            raise OSError(e.errno, f"'{name}' exists and is not a tap (or has other flags)") from e
        if e.errno == errno.EBUSY:
            raise OSError(e.errno, f"tap '{name}' is already in use by another process") from e
        raise
    return fd


def adopt_tap(fd: int, name: str, *, vnet_hdr: bool = False) -> int:
    """fd, made non-blocking and close-on-exec, if it is attached to tap `name` with the
    flags open_tap would set; OSError if not (a tap since deleted: EBADFD)."""
    raw, flags = struct.unpack("16sH22x", fcntl.ioctl(fd, TUNGETIFF, bytes(40)))
    want = IFF_TAP | IFF_NO_PI | (IFF_VNET_HDR if vnet_hdr else 0)
    if raw.rstrip(b"\0").decode() != name or flags & (want | IFF_VNET_HDR) != want:
        raise OSError(errno.EINVAL, f"file descriptor {fd} is not tap '{name}' as opened here")
    os.set_blocking(fd, False)
    os.set_inheritable(fd, False)
    return fd


def set_persist(fd: int, persist: bool) -> None:
    fcntl.ioctl(fd, TUNSETPERSIST, int(persist))


def set_vnet_hdr_size(fd: int, size: int) -> None:
    fcntl.ioctl(fd, TUNSETVNETHDRSZ, struct.pack("i", size))


def set_offload(fd: int, flags: int) -> None:
    fcntl.ioctl(fd, TUNSETOFFLOAD, flags)


SIOCGIFMTU = 0x8921


def get_mtu(name: str) -> int | None:
    """The MTU of interface name in this network namespace (None if there is none)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        raw = fcntl.ioctl(s.fileno(), SIOCGIFMTU, struct.pack("16si20x", name.encode(), 0))
    except (OSError, ValueError):
        return None
    finally:
        s.close()
    mtu: int = struct.unpack("16si20x", raw)[1]
    return mtu
