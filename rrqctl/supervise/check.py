"""`rrqctl check`: find what died and bring it back (from cron, or by hand).

Cables that should be up: those `rrqctl up` or the ifupdown hook brought up (a record in
RUN), interfaces stanzas marked auto or allow-hotplug that ifupdown records as up, and
every conf.d cable (as rrqnet-cron does). A cable systemd supervises is only reported:
systemd restarts it, and a second supervisor would race it; once its unit is stopped, what
it left (a unit stopped while its engine was dead tears nothing down) is taken away. Repairs
go through the same idempotent `up`; a cable whose repair fails waits, longer each time,
before the next try.

A cable that ifup or ifdown is changing is left to them (ifupdown holds its lock on the
interface from start to end), and whether a cable should still be up is asked again under
the cable lock, just before a repair: a cable taken down meanwhile stays down.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import logging.handlers
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rrqctl.aspects import Finding, findings
from rrqctl.errors import NotRunningError, RrqError
from rrqctl.supervise.control import query
from rrqctl.supervise.health import Backoff, uplink_findings
from rrqctl.system import notify, proc
from rrqctl.system.locks import exclusive
from rrqctl.system.observe import observe_cable
from rrqctl.system.paths import Paths
from rrqctl.system.records import load_record

if TYPE_CHECKING:
    from rrqctl.config.sources import Config
    from rrqctl.model import Cable

DEFAULT_IFUPDOWN_STATE = "/run/network"
log = logging.getLogger("rrqctl.check")


@dataclass
class Report:
    name: str
    managed_by: str = "rrqctl"  # or "systemd"
    findings: list[Finding] = field(default_factory=list)
    repaired: bool = False
    failed: str | None = None  # why a repair did not work (or could not be tried)
    gone: bool = False  # taken down while we looked: nothing to say, nothing done

    @property
    def ok(self) -> bool:
        if self.gone:
            return True
        return self.failed is None and (self.repaired or not any(f.repair for f in self.findings))

    def lines(self) -> list[str]:
        if self.gone:
            return []
        if not self.findings and self.ok:
            return [
                f"{self.name}: ok"
                + (" (systemd supervises it)" if self.managed_by == "systemd" else "")
            ]
        out = [f"{self.name}: {f}" for f in self.findings]
        if self.repaired:
            out.append(f"{self.name}: repaired")
        if self.failed:
            out.append(f"{self.name}: not repaired: {self.failed}")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "managed_by": self.managed_by,
            "ok": self.ok,
            "findings": [
                {"check": f.check, "reason": f.reason, "repair": f.repair} for f in self.findings
            ],
            "repaired": self.repaired,
            "failed": self.failed,
            "gone": self.gone,
        }


def ifupdown_up(state_dir: str) -> set[str]:
    """Interfaces ifupdown records as up (its ifstate file: IFACE=LOGICAL lines)."""
    try:
        with open(os.path.join(state_dir, "ifstate")) as f:
            return {line.split("=", 1)[0] for line in f if "=" in line}
    except OSError:
        return set()


@contextlib.contextmanager
def ifupdown_lock(state_dir: str, name: str) -> Iterator[bool]:
    """Hold ifupdown's own lock on interface name: a POSIX lock on STATE/ifstate.NAME, which
    ifup and ifdown hold from start to end. Yields False when one of them holds it now; no
    such file means ifupdown has not touched the interface since boot."""
    try:
        fd = os.open(os.path.join(state_dir, f"ifstate.{name}"), os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        yield True
        return
    try:  # closing the file (any descriptor of it, in this process) releases the lock
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                raise
            yield False
            return
        yield True
    finally:
        os.close(fd)


def recorded(paths: Paths) -> set[str]:
    if not os.path.isdir(paths.run_dir):
        return set()
    return {
        f[:-5]
        for f in os.listdir(paths.run_dir)
        if f.endswith(".json") and not f.startswith("check")
    }


def should_be_up(cfg: Config, paths: Paths, ifupdown_state: str) -> list[str]:
    up_by_ifupdown = ifupdown_up(ifupdown_state)
    names = set(recorded(paths))
    for name in cfg.names:
        kind = cfg.kinds.get(name)
        cable = cfg.cables.get(name)
        auto = cable is not None and bool({"auto", "hotplug"} & set(cable.start))
        if kind == "confd" or (kind == "interfaces" and auto and name in up_by_ifupdown):
            names.add(name)
        if kind == "networkd" and notify.booted():
            names.add(name)
    return sorted(n for n in names if not os.path.exists(paths.taken_down(n)))


@contextlib.contextmanager
def check_lock(paths: Paths, wait: float = 20.0) -> Iterator[None]:
    """One check at a time; a second one waits, then gives up (it never half-repairs)."""
    os.makedirs(paths.run_dir, mode=0o755, exist_ok=True)
    busy = "another rrqctl check is still running; not checking twice"
    with exclusive(paths.check_lock(), wait, busy, poll=0.1):
        yield


class Checker:
    """Checks and repairs cables by name. With `wanted` (the names were not given by hand),
    a cable is repaired only while wanted(name) still says it should be up."""

    def __init__(
        self,
        cfg: Config,
        paths: Paths,
        *,
        dry_run: bool = False,
        now: bool = False,
        clock: Callable[[], float] = time.time,
        ifupdown_state: str = DEFAULT_IFUPDOWN_STATE,
        wanted: Callable[[str], bool] | None = None,
    ) -> None:
        self.cfg, self.paths, self.dry_run, self.clock = cfg, paths, dry_run, clock
        self.now = now  # repair now, whatever the back-off says
        self.ifupdown_state = ifupdown_state
        self.wanted = wanted
        self.backoff_file = os.path.join(paths.run_dir, "check.json")
        self.backoff = Backoff.load(self.backoff_file)
        self.syslog = _syslog()

    def check(self, names: list[str]) -> list[Report]:
        reports = [self._one(n) for n in names]
        if not self.dry_run:
            self.backoff.save(self.backoff_file)
        return reports

    def _one(self, name: str) -> Report:
        with ifupdown_lock(self.ifupdown_state, name) as free:
            if not free:
                busy = "ifup or ifdown is changing it; left to them"
                return Report(name, findings=[Finding("ifupdown", busy, repair=False)])
            if self._gone(name):
                return Report(name, gone=True)
            return self._checked(name)

    def _gone(self, name: str) -> bool:
        return self.wanted is not None and not self.wanted(name)

    def _checked(self, name: str) -> Report:
        if os.path.exists(self.paths.taken_down(name)):
            down = f"taken down by `rrqctl down {name}`: left down until `rrqctl up {name}`"
            return Report(name, findings=[Finding("down", down, repair=False)])
        data, record = load_record(self.paths, name)
        if "engine" not in record.made and notify.booted():
            return self._unit(name)
        try:
            cable = self.cfg.get(name)
        except RrqError as e:
            return self._undeclared(name, data, e)
        findings = self._findings(cable)
        report = Report(name, findings=findings)
        if not self.dry_run:
            self._log_uplink_changes(name, findings)
        if any(f.repair for f in findings) and not self.dry_run:
            self._repair(cable, report)
        return report

    def _log_uplink_changes(self, name: str, findings: list[Finding]) -> None:
        """An uplink that went stale, or came back, is logged once (not every minute)."""
        stale = {f.reason.partition(" is ")[0]: f.reason for f in findings if f.check == "uplink"}
        before = set(self.backoff.reported.get(name, ()))
        for uplink in sorted(stale.keys() - before):
            self.syslog.warning("%s: %s", name, stale[uplink])
        for uplink in sorted(before - stale.keys()):
            self.syslog.info("%s: %s is heard from again", name, uplink)
        if stale:
            self.backoff.reported[name] = sorted(stale)
        else:
            self.backoff.reported.pop(name, None)

    def _findings(self, cable: Cable) -> list[Finding]:
        seen = observe_cable(cable, self.paths)
        status = None
        unasked: list[Finding] = []
        if seen.engine_pid is not None:
            try:
                status = query(self.paths.control(cable.name), timeout=3.0)
            except NotRunningError:
                pass
            except RrqError as e:  # (not root: the socket is root's)
                unasked = [Finding("engine", f"not asked: {e}", repair=False)]
        answers = status is not None or bool(unasked)
        out = unasked + findings(cable, replace(seen, engine_answers=answers))
        return out + (uplink_findings(status) if status else [])

    def _repair(self, cable: Cable, report: Report) -> None:
        from rrqctl.system import host  # netlink (pyroute2): loaded only to repair

        now = self.clock()
        if not self.now and not self.backoff.allows(cable.name, now):
            report.failed = f"waiting: {self.backoff.waiting(cable.name, now)}"
            return
        try:
            with host.cable_lock(self.paths, cable.name):
                if self._gone(cable.name):  # a down got the lock first
                    report.gone = True
                    return
                for f in report.findings:
                    if f.check == "engine" and "does not answer" in f.reason:
                        host.stop_engine(self.paths, cable.name, None)
                host.Up(cable, self.paths, say=lambda line: None, strict_names=False).run()
            report.repaired = True
        except RrqError as e:
            report.failed = str(e).splitlines()[0]
        self.backoff.tried(cable.name, now, report.repaired)
        for f in report.findings:
            if f.repair:
                outcome = "repaired" if report.repaired else f"not repaired: {report.failed}"
                self.syslog.warning("%s: %s -> %s", cable.name, f, outcome)

    def _undeclared(self, name: str, data: dict[str, Any] | None, e: RrqError) -> Report:
        """A cable that is running (or should be) but whose declaration is gone or broken."""
        report = Report(name, findings=[Finding("config", str(e).splitlines()[0])])
        now = self.clock()
        if data is None or self.dry_run:
            report.failed = "its declaration is broken: fix it, or `rrqctl down` it"
            return report
        seen_dead = proc.read_pidfile(self.paths.pidfile(name)) is None
        if not seen_dead:
            report.findings = [Finding("config", f"{e}; still running as it was", repair=False)]
            return report
        if not self.now and not self.backoff.allows(name, now):
            report.failed = f"waiting: {self.backoff.waiting(name, now)}"
            return report
        report.failed = str(e).splitlines()[0]
        self.backoff.tried(name, now, False)
        self.syslog.warning("%s: cannot repair: %s", name, report.failed)
        return report

    def _unit(self, name: str) -> Report:
        unit = f"rrqnet@{name}.service"
        state = _unit_state(unit)
        report = Report(name, managed_by="systemd")
        running = proc.read_pidfile(self.paths.pidfile(name)) is not None
        if state in ("active", "reloading") or (state == "inactive" and running):
            return report  # (inactive but running: `rrqctl run` by hand)
        if state == "inactive":
            return self._stopped(unit, report)
        then = UNIT_STATES.get(state, "see")
        report.findings.append(
            Finding("unit", f"{unit} is {state}: {then} journalctl -u {unit}", repair=False)
        )
        return report

    def _stopped(self, unit: str, report: Report) -> Report:
        """The unit is stopped, yet its cable's record is here: it was stopped while its engine
        was dead (in the restart delay after a crash), so nothing tore the cable down."""
        from rrqctl.system import host  # netlink (pyroute2): loaded only to repair

        left = Finding("unit", f"{unit} is stopped but left its cable set up")
        if self.dry_run:
            report.findings.append(left)
            return report
        name = report.name
        if host.take_down_left(self.paths, name, lambda: not self._started(unit, name)):
            report.findings.append(left)
            report.repaired = True
            self.syslog.warning("%s: %s -> taken down", name, left)
        return report

    def _started(self, unit: str, name: str) -> bool:
        """Started again (by systemd, or by hand) since we looked."""
        running = proc.read_pidfile(self.paths.pidfile(name)) is not None
        return running or _unit_state(unit) != "inactive"


UNIT_STATES = {
    "activating": "systemd is starting it, or restarting it after a crash; see",
    "failed": "it stays down until it is started again; see",
}


def _unit_state(unit: str) -> str:
    return proc.run(["systemctl", "is-active", unit], check=False).stdout.strip()


def _syslog() -> logging.Logger:
    """Each repair, and why, goes to syslog as well (when there is one)."""
    lg = logging.getLogger("rrqctl.check.syslog")
    if not lg.handlers:
        lg.propagate = False
        lg.setLevel(logging.INFO)
        if os.path.exists("/dev/log"):
            h = logging.handlers.SysLogHandler(
                "/dev/log", logging.handlers.SysLogHandler.LOG_DAEMON
            )
            h.setFormatter(logging.Formatter(f"rrqctl-check[{os.getpid()}]: %(message)s"))
            lg.addHandler(h)
        else:
            lg.addHandler(logging.NullHandler())
    return lg
