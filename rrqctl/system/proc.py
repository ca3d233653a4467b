"""Processes: the only module that runs subprocesses (dhclient, systemctl, ip netns exec).

Every command run is logged; a failure is an ActionError with argv, code and stderr.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence

from rrqctl.errors import ActionError

log = logging.getLogger("rrqctl.proc")


def python_module(module: str) -> list[str]:
    """How to run one of rrqctl's modules in a new Python: this interpreter, and -P, so that
    the working directory (where anyone may have left an `rrqctl` package) is never on the
    module path of a process that runs as root."""
    return [sys.executable, "-P", "-m", module]


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    capture: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run argv to completion, capturing its output (else it goes where ours goes)."""
    log.debug("run: %s", shlex.join(argv))
    try:
        r = subprocess.run(
            list(argv),
            check=False,
            capture_output=capture,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            input=input_text,
        )
    except FileNotFoundError:
        raise ActionError(f"{argv[0]}: command not found", argv) from None
    except subprocess.TimeoutExpired:
        raise ActionError(f"{shlex.join(argv)}: no answer after {timeout:.0f}s", argv) from None
    if check and r.returncode != 0:
        raise ActionError(
            f"{shlex.join(argv)} failed (exit {r.returncode})", argv, r.returncode, r.stderr
        )
    return r


def spawn(
    argv: Sequence[str],
    *,
    stdout: int | None = None,
    stderr: int | None = None,
    env: Mapping[str, str] | None = None,
    detach: bool = False,
    pass_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start argv without waiting. detach: its own session, stdin from /dev/null."""
    log.debug("spawn: %s", shlex.join(argv))
    try:
        return subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=dict(env) if env is not None else None,
            start_new_session=detach,
            pass_fds=tuple(pass_fds),
        )
    except FileNotFoundError:
        raise ActionError(f"{argv[0]}: command not found", argv) from None


def alive(pid: int) -> bool:
    """pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def terminate(pid: int, timeout: float = 5.0, sig: int = signal.SIGTERM) -> bool:
    """Signal pid and wait for it to go (SIGKILL after timeout); True if it was running."""
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while alive(pid):
        _reap(pid)
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + timeout
        time.sleep(0.02)
    _reap(pid)
    return True


def _reap(pid: int) -> None:
    """Collect pid if it is our child (a zombie otherwise lingers)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def read_pidfile(path: str) -> int | None:
    """The pid in path if that process is alive, else None."""
    try:
        with open(path) as f:
            pid = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if alive(pid) else None


def write_pidfile(path: str, pid: int) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{pid}\n")
    os.replace(tmp, path)


def remove_file(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    except OSError as e:
        if e.errno != errno.ENOENT:
            raise
        return False
    return True
