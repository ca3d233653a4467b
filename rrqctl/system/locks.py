"""File locks that say who is busy: one rrqctl at a time changes a cable, one check runs."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from rrqctl.errors import BusyError


@contextlib.contextmanager
def exclusive(path: str, wait: float, busy: str, poll: float = 0.05) -> Iterator[None]:
    """Hold an flock on path (made if missing, and left in place); BusyError(busy) if it is
    not ours within `wait` seconds."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BusyError(busy) from None
                time.sleep(poll)
        yield
    finally:
        os.close(fd)
