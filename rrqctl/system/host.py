"""Carrying out a plan on this host: observe, act, record what was made, roll back on failure.

Every change is said as "[#] command" as it happens. The record (RUN/NAME.json) is written
after each step, so `down` (or `check`) knows what `up` made even after a crash.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from rrqctl.aspects import BY_STEP, Action, Step, dhclient_argv
from rrqctl.errors import ActionError, EngineError
from rrqctl.plan import plan_down, plan_up
from rrqctl.system import netlink, proc
from rrqctl.system.locks import exclusive
from rrqctl.system.names import check_names
from rrqctl.system.observe import observe_cable
from rrqctl.system.paths import UNIT_LOG_DIR, Paths
from rrqctl.system.records import load_record, recorded_cable, save_record

if TYPE_CHECKING:
    from rrqctl.model import Cable

READY_TIMEOUT = 15.0
Say = Callable[[str], None]


@contextlib.contextmanager
def cable_lock(paths: Paths, name: str, wait: float = 30.0) -> Iterator[None]:
    """One rrqctl at a time changes cables (up, down, hooks); RUN/.lock stays, like ifupdown's."""
    os.makedirs(paths.run_dir, mode=0o755, exist_ok=True)
    with exclusive(paths.changes_lock(), wait, f"{name}: another rrqctl is changing this cable"):
        yield


# ---- up ---------------------------------------------------------------------------------


def engine_command(cable: Cable, paths: Paths, ready_fd: int | str = "FD") -> list[str]:
    """The detached engine as a person would type it (argv[0] 'rrqctl')."""
    return [
        "rrqctl",
        "run",
        cable.name,
        "--attach",
        "--cable-file",
        paths.state(cable.name),
        "--run-dir",
        paths.run_dir,
        "--ready-fd",
        str(ready_fd),
    ]


class Up:
    """Bring one cable up, saying each step; on failure undo the steps done, in reverse.

    strict_names: a host name in a remote that does not resolve (and has no known address)
    stops it before anything is made; else it is a warning (cron's repairs)."""

    def __init__(
        self, cable: Cable, paths: Paths, say: Say = print, *, strict_names: bool = True
    ) -> None:
        self.cable, self.paths, self.say = cable, paths, say
        self.strict_names = strict_names
        self.ops = HostOps(paths)
        _, self.record = load_record(paths, cable.name)

    def run(self, steps: Sequence[Step] = tuple(Step)) -> list[Action]:
        if Step.ENGINE in steps and any(r.host for r in self.cable.remotes):
            check_names(self.cable, self.paths, strict=self.strict_names, warn=_warn)
        seen = observe_cable(self.cable, self.paths)
        actions = plan_up(self.cable, seen, engine_command(self.cable, self.paths), steps)
        done: list[Action] = []
        save_record(self.paths, self.cable, self.record)
        try:
            for a in actions:
                self.say(f"[#] {self._text(a)}")
                self._do(a)
                done.append(a)
                if a.step.value not in self.record.made:
                    self.record.made.append(a.step.value)
                if a.keep:
                    self.record.keep(a.step, a.keep)
                save_record(self.paths, self.cable, self.record)
        except BaseException:
            self._rollback(done)
            raise
        return actions

    def _text(self, a: Action) -> str:
        return BY_STEP[a.step].said(self.ops, self.cable, a, self.record)

    def _do(self, a: Action) -> None:
        BY_STEP[a.step].do(self.ops, self.cable, a, self.record)

    def _rollback(self, done: list[Action]) -> None:
        for a in reversed(done):
            if a.undo:
                self.say(f"[#] {a.undo}   (undoing)")
                with contextlib.suppress(ActionError, OSError):
                    BY_STEP[a.step].undo(self.ops, self.cable, self.record, a.keep)
            with contextlib.suppress(ValueError):
                self.record.made.remove(a.step.value)
        if self.record.made:
            save_record(self.paths, self.cable, self.record)
        else:
            clear(self.paths, self.cable.name)


def _warn(line: str) -> None:
    print(f"rrqctl: {line}", file=sys.stderr)


def start_engine(cable: Cable, paths: Paths) -> int:
    """Start `rrqctl run NAME --attach` detached; return its pid once it says it is ready."""
    r, w = os.pipe()
    os.set_inheritable(w, True)
    out = _log_fd(cable)
    try:
        pid = os.posix_spawn(
            sys.executable,
            [*proc.python_module("rrqctl"), *engine_command(cable, paths, w)[1:]],
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, out, 1),
                (os.POSIX_SPAWN_DUP2, out, 2),
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            ],
            setsid=True,
        )
    finally:
        os.close(w)
        os.close(out)
    try:
        wait_ready(r, pid, cable.name)
    finally:
        os.close(r)
    return pid


def _log_fd(cable: Cable) -> int:
    """The engine's stdout/stderr: the rrqnet_log file (appended), else /dev/null."""
    fd = open_log_file(cable)
    return fd if fd is not None else os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)


def open_log_file(cable: Cable) -> int | None:
    """rrqnet_log's PATH, opened to append (None when the log goes to syslog or stderr)."""
    if cable.log is None or cable.log.syslog is not None:
        return None
    path = cable.log.target
    try:
        return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    except OSError as e:
        hint = ""
        if e.errno == errno.EROFS:
            hint = (
                f" (rrqnet@.service may write only under {UNIT_LOG_DIR}: "
                f"`rrqctl render unit {cable.name}` prints a drop-in that allows {path})"
            )
        where = cable.where("log")
        said = f"{where}: " if where else ""
        raise ActionError(f"{said}cannot open log file {path}: {e.strerror}{hint}") from None


def wait_ready(fd: int, pid: int, name: str, timeout: float = READY_TIMEOUT) -> None:
    """Read the engine's readiness pipe: 'READY', or 'FAIL reason', or it died."""
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            proc.terminate(pid)
            raise EngineError(f"the engine for {name} did not become ready in {timeout:.0f}s")
        if select.select([fd], [], [], left)[0]:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
    line = buf.decode(errors="replace").strip()
    if line == "READY":
        return
    proc.terminate(pid, timeout=2)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    reason = line.removeprefix("FAIL ") if line else "it exited without a word"
    raise EngineError(f"the engine for {name} did not start: {reason}")


# ---- down -------------------------------------------------------------------------------


class HostOps:
    """What the host aspects (aspects.py) do, done on this host: netlink, processes."""

    def __init__(self, paths: Paths) -> None:
        self.paths = paths

    create_tap = staticmethod(netlink.create_tap)
    delete_link = staticmethod(netlink.delete_link)
    set_mac = staticmethod(netlink.set_mac)
    set_mtu = staticmethod(netlink.set_mtu)
    set_up = staticmethod(netlink.set_up)
    set_down = staticmethod(netlink.set_down)
    set_master = staticmethod(netlink.set_master)
    set_nomaster = staticmethod(netlink.set_nomaster)

    def add_address(self, name: str, cidr: str) -> None:
        netlink.add_address(name, cidr)

    def del_address(self, name: str, cidr: str) -> None:
        netlink.del_address(name, cidr)

    def start_engine(self, cable: Cable) -> int:
        return start_engine(cable, self.paths)

    def stop_engine(self, name: str, pid: int | None) -> None:
        stop_engine(self.paths, name, pid)

    def renice(self, pid: int, nice: int) -> None:
        os.setpriority(os.PRIO_PROCESS, pid, nice)

    def dhclient(self, cable: Cable, **mode: bool) -> list[str]:
        p, name = self.paths, cable.name
        assert cable.dhcp is not None
        pidfile, leases = p.dhclient_pid(name), p.dhclient_leases(name)
        return dhclient_argv(name, cable.dhcp.args, pidfile, leases, **mode)

    def start_dhclient(self, cable: Cable) -> int | None:
        proc.run(self.dhclient(cable))
        return proc.read_pidfile(self.paths.dhclient_pid(cable.name))

    def stop_dhclient(self, cable: Cable) -> None:
        stop_dhclient(cable, self.paths)


def stop_engine(paths: Paths, name: str, pid: int | None) -> None:
    pid = proc.read_pidfile(paths.pidfile(name)) or pid
    if pid is not None and proc.alive(pid):
        proc.terminate(pid, timeout=10)
    for f in (paths.pidfile(name), paths.control(name)):
        proc.remove_file(f)


def stop_dhclient(cable: Cable, paths: Paths) -> None:
    """Release the lease and stop dhclient (dhclient -r), then make sure it is gone."""
    name = cable.name
    pid = proc.read_pidfile(paths.dhclient_pid(name))
    if cable.dhcp is not None and pid is not None:
        pidfile, leases = paths.dhclient_pid(name), paths.dhclient_leases(name)
        argv = dhclient_argv(name, cable.dhcp.args, pidfile, leases, release=True)
        proc.run(argv, check=False, timeout=20)
    if pid is not None and proc.alive(pid):
        proc.terminate(pid)
    for f in (paths.dhclient_pid(name), paths.dhclient_leases(name)):
        proc.remove_file(f)


def down(
    cable: Cable, paths: Paths, say: Say = print, steps: Sequence[Step] = tuple(Step)
) -> list[Action]:
    """Undo what up made for cable (by its record); a tap that existed before stays."""
    _, record = load_record(paths, cable.name)
    seen = observe_cable(cable, paths)
    actions = plan_down(cable, record, seen, steps)
    for a in actions:
        say(f"[#] {a.text}")
        BY_STEP[a.step].undo(HostOps(paths), cable, record, a.keep)
        with contextlib.suppress(ValueError):
            record.made.remove(a.step.value)
        record.kept.pop(a.step.value, None)
    for s in steps:
        with contextlib.suppress(ValueError):
            record.made.remove(s.value)
    if set(steps) >= {Step.ENGINE, Step.TAP} or not record.made:
        clear(paths, cable.name)
    else:
        save_record(paths, cable, record)
    return actions


def take_down_left(paths: Paths, name: str, still_dead: Callable[[], bool]) -> bool:
    """What a cable left when its engine died and nothing tore it down (its unit stopped in
    the restart delay): undo what its record says was made, and remove its files. Under the
    cable lock, and only if still_dead() says so there. True if there was anything left."""
    with cable_lock(paths, name):
        if not os.path.exists(paths.state(name)) or not still_dead():
            return False
        cable = recorded_cable(paths, name)
        if cable is None:
            clear(paths, name)
        else:
            down(cable, paths, say=lambda line: None)
    return True


def clear(paths: Paths, name: str) -> None:
    for f in (
        paths.state(name),
        paths.pidfile(name),
        paths.control(name),
        paths.dhclient_pid(name),
        paths.dhclient_leases(name),
    ):
        proc.remove_file(f)
