"""`rrqctl run NAME`: one cable in the foreground, as rrqnet@NAME.service runs it.

Set up what `up` would (or, for a networkd cable, wait for networkd's tap), run the engine
in this process, supervise dhclient, tell systemd READY / STATUS / WATCHDOG / STOPPING,
reload remotes on SIGHUP, and undo the set-up on SIGTERM.

A tap it made lives in systemd's fd store too, and is not persistent: after a crash the
restarted engine adopts it (same ifindex, addresses, bridge), and a stop that comes before
the restart closes systemd's copy, so the kernel removes the tap with no engine left to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TYPE_CHECKING

from rrqctl import logs
from rrqctl.aspects import BY_CHECK, Finding, dhclient_argv, link_findings
from rrqctl.engine.loop import Engine
from rrqctl.engine.ports import TapPort
from rrqctl.errors import ActionError, EngineError, RrqError
from rrqctl.supervise import links
from rrqctl.supervise.control import TIMEOUT, ControlServer
from rrqctl.supervise.health import Backoff
from rrqctl.supervise.runner import Readiness, open_engine, pidfile, readable_keys
from rrqctl.supervise.spec import RELOAD_TIMEOUT
from rrqctl.system import linkstate, notify, proc, tun
from rrqctl.system.observe import observe

if TYPE_CHECKING:
    from rrqctl.supervise.spec import CableSpec
    from rrqctl.system.paths import Paths

STATUS_EVERY = 5.0
QUIET_AFTER_REPAIR = 2.0  # s: a repair's own link changes do not start another check
HEALTH_EVERY = 10.0
LINK_WAIT = 30.0
TEST_FAULTS = "RRQCTL_TEST_FAULTS"  # set to 1 to allow the 'test-stall' control request
TAP_FD = "tap"  # the tap's name in systemd's fd store


class Supervisor:
    def __init__(
        self,
        cable: CableSpec,
        paths: Paths,
        *,
        attach: bool = False,
        made: bool = False,
        tap_made: bool = False,
        ready_fd: int | None = None,
        reload_source: Callable[[], CableSpec] | None = None,
        health_every: float = HEALTH_EVERY,
    ) -> None:
        self.cable, self.paths, self.attach = cable, paths, attach
        self.health_every = health_every
        self.backoff = Backoff()
        self.local_lost = False
        self.ready = Readiness(ready_fd)
        self.reload_source = reload_source
        self.log = logs.setup(cable.name, cable.verbosity, cable.syslog)
        self.engine: Engine | None = None
        self.server: ControlServer | None = None
        self.dhclient: subprocess.Popen[bytes] | None = None
        self.made = made  # rrqctl run set the tap up before the handover: undo it at the end
        self.tap_made = tap_made  # ... and made it (this run or the one it restarts): it is ours
        # Helpers (a reload's reading, a repair) take a Python start-up each: they run here,
        # one at a time, and hand their outcome to the loop thread, which never waits for them.
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="helpers")
        self.repairing = False
        self.repaired_at = float("-inf")  # when the last helper's repair ended
        self.link_watch: linkstate.LinkWatch | None = None

    # ---- life ---------------------------------------------------------------------------

    def run(self) -> int:
        try:
            with pidfile(self.paths.pidfile(self.cable.name)):
                return self._run()
        except RrqError as e:
            self.ready.fail(str(e))
            raise
        except BaseException as e:
            self.ready.fail(f"{type(e).__name__}: {e}")
            raise

    def _run(self) -> int:
        readable_keys(self.cable.engine_settings())
        try:
            self._setup()
            engine = self._open()
            self._start_dhclient()
            self._schedule(engine)
            self.log.info("%s: ready (%s)", self.cable.name, engine.summary())
            self.ready.ready(engine.summary())
            engine.run()
        finally:
            notify.notify("STOPPING=1")
            self._teardown()
        if engine.failure:
            raise EngineError(engine.failure)
        return 0

    def _owns_link(self) -> bool:
        return not self.attach and self.cable.owner == "rrqctl" and self.cable.local == "tap"

    def _setup(self) -> None:
        """The tap was made before the handover (set_up_and_exec); networkd's is waited for."""
        if self.cable.local == "tap" and not self.attach and self.cable.owner == "networkd":
            self._wait_for_link()

    def _wait_for_link(self, timeout: float = LINK_WAIT) -> None:
        name = self.cable.name
        deadline = time.monotonic() + timeout
        while linkstate.link(name) is None:
            if time.monotonic() > deadline:
                raise ActionError(
                    f"tap {name} did not appear within {timeout:.0f}s: is systemd-networkd "
                    f"running, and does {name}.netdev say Kind=tap?"
                )
            time.sleep(0.2)

    def _open(self) -> Engine:
        settings = self.cable.engine_settings()
        self.engine = engine = Engine(settings, log=self.log, tap_fd=self._kept_tap())
        open_engine(engine)
        self._keep_tap()
        self.server = ControlServer(self.paths.control(self.cable.name), engine)
        self.server.blocking["reload"] = self._reload_and_wait
        if os.environ.get(TEST_FAULTS) == "1":
            self.server.handlers["test-stall"] = _stall
        self.server.start()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: engine.stop())
        signal.signal(signal.SIGHUP, lambda *_: self.worker.submit(self._reload))
        if self.cable.nice is not None and not self.attach:
            self._nice(self.cable.nice)
        return engine

    def _keeps_tap(self) -> bool:
        return self.made and self.tap_made and notify.fd_store_size() > 0

    def _kept_tap(self) -> int | None:
        """The tap's fd, as systemd kept it from the engine before us, if ours to adopt."""
        fds = notify.kept_fds()
        fd = fds.pop(TAP_FD, None)
        for other in fds.values():
            os.close(other)
        if fd is not None and not self._keeps_tap():
            os.close(fd)
            notify.drop_stored_fd(TAP_FD)
            return None
        return fd

    def _keep_tap(self) -> None:
        """Give systemd a copy of the tap's fd, then make the tap not persistent: it lasts
        while the engine or systemd holds it, that is until the unit stops."""
        port = self.engine.local_port if self.engine is not None else None
        if not self._keeps_tap() or not isinstance(port, TapPort):
            return
        notify.store_fd(TAP_FD, port.fileno())
        try:
            tun.set_persist(port.fileno(), False)
        except OSError as e:
            self.log.warning("%s stays persistent: %s", self.cable.name, e)

    def _nice(self, value: int) -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, value)
        except PermissionError:
            self.log.warning(
                "cannot set nice %d here (no CAP_SYS_NICE): put Nice=%d in a unit drop-in "
                "(rrqctl render unit %s prints one)",
                value,
                value,
                self.cable.name,
            )

    def _schedule(self, engine: Engine) -> None:
        engine.every(STATUS_EVERY, lambda: notify.notify(f"STATUS={engine.summary()}"))
        if self.health_every > 0:
            engine.every(self.health_every, self._health)
            self._watch_link(engine)
        engine.on_local_lost = self._lost
        interval = notify.watchdog_interval()
        if interval is not None:
            engine.every(interval, lambda: notify.notify("WATCHDOG=1"))

    def _teardown(self) -> None:
        self._stop_dhclient()
        if self.server is not None:
            self.server.close()
        self.worker.shutdown(cancel_futures=True)  # a helper under way finishes first
        if self.link_watch is not None:
            self.link_watch.close()
        if self.engine is not None:
            self.engine.close()
        if self.made:
            try:
                links.change("down", self.cable, self.paths)
            except RrqError as e:
                self.log.error("tear-down: %s", e)

    # ---- health -------------------------------------------------------------------------

    def _watch_link(self, engine: Engine) -> None:
        """Check again as soon as the kernel says our link or its addresses changed."""
        if self.cable.local != "tap":
            return
        try:
            self.link_watch = linkstate.LinkWatch(self.cable.name)
        except (OSError, RrqError) as e:
            self.log.warning("link changes are seen at the periodic checks only: %s", e)
            return
        engine.watch(self.link_watch.fileno(), self._on_link_change)

    def _on_link_change(self) -> None:
        assert self.link_watch is not None
        if (
            self.link_watch.changed()
            and not self.repairing
            and time.monotonic() - self.repaired_at >= QUIET_AFTER_REPAIR
        ):
            self._health()

    def _lost(self, e: OSError) -> None:
        self.local_lost = True
        self._health()

    def _health(self) -> None:
        """(Loop thread) look at what is local and repair it without restarting the datapath:
        small repairs at once, the links helper in the worker thread."""
        c = self.cable
        findings = []
        if c.local == "tap" and c.owner == "rrqctl":
            findings = link_findings(c, observe(c.name, self.paths, bridge=c.bridge))
        elif c.local == "tap" and self.local_lost:
            findings = [
                Finding("tap", f"{c.name} is gone: waiting for systemd-networkd to make it again")
            ]
        if self.dhclient is not None and self.dhclient.poll() is not None:
            findings.append(Finding("dhclient", f"dhclient exited with {self.dhclient.returncode}"))
        now = time.monotonic()
        for f in findings:
            if not self.backoff.allows(f.check, now):
                continue
            action = self._helper_for(f)
            if action is None:
                try:
                    self._repair_here(f)
                except (RrqError, OSError) as e:
                    self._repaired(f, e)
                else:
                    self._repaired(f, None)
            elif not self.repairing:  # one helper at a time; the next check sees what is left
                self.repairing = True
                self.worker.submit(self._repair_in_helper, f, action, self.cable)

    def _helper_for(self, f: Finding) -> str | None:
        """The links helper action that repairs f, or None if it is repaired in this process
        (dhclient; a tap networkd owns is waited for)."""
        aspect = BY_CHECK.get(f.check)
        if aspect is None or self.cable.owner != "rrqctl":
            return None
        return aspect.repair_by

    def _repair_here(self, f: Finding) -> None:
        if f.check == "dhclient":
            self.dhclient = None
            self._start_dhclient()
        elif linkstate.link(self.cable.name) is None:  # networkd's tap: not ours to make
            raise ActionError(f.reason)
        else:
            self._reattach()

    def _repair_in_helper(self, f: Finding, action: str, cable: CableSpec) -> None:
        """(Worker thread) run the links helper, then report in the loop thread."""
        error: Exception | None = None
        try:
            links.change(action, cable, self.paths)
        except (RrqError, OSError) as e:
            error = e
        assert self.engine is not None
        self.engine.call(partial(self._repaired, f, error, helper=True))

    def _repaired(self, f: Finding, error: Exception | None, helper: bool = False) -> None:
        if helper:
            self.repairing = False
            self.repaired_at = time.monotonic()
            if error is None and (f.check == "tap" or self.local_lost):
                try:
                    if linkstate.link(self.cable.name) is not None:
                        self._reattach()
                except (RrqError, OSError) as e:
                    error = e
        now = time.monotonic()
        if error is not None:
            waiting = self.backoff.waiting(f.check, now)
            self.log.error("health: %s: repair failed: %s (%s)", f, error, waiting)
            self.backoff.tried(f.check, now, False)
        else:
            self.log.warning("health: %s: repaired", f)
            self.backoff.tried(f.check, now, True)

    def _reattach(self) -> None:
        assert self.engine is not None
        self.engine.attach_local(TapPort(self.cable.name))
        self._keep_tap()
        self.local_lost = False
        self.log.warning("re-attached the engine to %s", self.cable.name)

    # ---- dhclient -----------------------------------------------------------------------

    def _dhclient_argv(self, **kw: bool) -> list[str]:
        n, p, args = self.cable.name, self.paths, self.cable.dhcp or ()
        return dhclient_argv(n, args, p.dhclient_pid(n), p.dhclient_leases(n), **kw)

    def _start_dhclient(self) -> None:
        if self.cable.dhcp is None or not self._owns_link():
            return
        self.log.info("starting %s", " ".join(self._dhclient_argv(foreground=True)))
        self.dhclient = proc.spawn(self._dhclient_argv(foreground=True))

    def _stop_dhclient(self) -> None:
        p = self.dhclient
        if p is None:
            return
        if p.poll() is None:
            proc.run(self._dhclient_argv(release=True), check=False, timeout=20)
            proc.terminate(p.pid)
        p.wait()
        for f in (
            self.paths.dhclient_pid(self.cable.name),
            self.paths.dhclient_leases(self.cable.name),
        ):
            proc.remove_file(f)
        self.dhclient = None

    # ---- reload -------------------------------------------------------------------------

    def _read_cable(self) -> CableSpec:
        """(Worker thread) the cable as the configuration says now, read by a helper."""
        assert self.reload_source is not None
        notify.notify("RELOADING=1")
        try:
            return self.reload_source()
        except RrqError as e:
            self.log.error("reload refused, running on: %s", e)
            notify.notify("READY=1", f"STATUS=reload refused: {e}")
            raise

    def _reload(self) -> None:
        """(Worker thread, on SIGHUP) read the cable; the loop thread applies it."""
        if self.reload_source is None or self.engine is None:
            return
        with contextlib.suppress(RrqError):  # logged, and told to systemd
            self.engine.call(partial(self._apply, self._read_cable()))

    def _reload_and_wait(self) -> str:
        """(The control socket's thread) reload, and say how it went or raise what it met."""
        if self.reload_source is None or self.engine is None:
            return "nothing to reload from"
        new = self.worker.submit(self._read_cable).result(RELOAD_TIMEOUT + TIMEOUT)
        said: str = self.engine.call(partial(self._apply, new)).result(TIMEOUT)
        return said

    def _apply(self, new: CableSpec) -> str:
        """(Loop thread) new remotes and keys; the tap, its ifindex and the learned MACs stay."""
        assert self.engine is not None
        changed = self.cable.changed(new)
        self.engine.reload(new.engine_settings())
        self.cable = new
        note = f"; restart to apply {', '.join(changed)}" if changed else ""
        self.log.info("reloaded: %d remotes%s", new.remotes, note)
        notify.notify("READY=1", f"STATUS={self.engine.summary()}")
        return f"reloaded {new.remotes} remotes{note}"


def _stall() -> None:
    """A test-only fault: wedge the datapath loop (the watchdog must notice)."""
    logging.getLogger("rrqctl").error("test fault: stalling the datapath loop")
    while True:
        time.sleep(3600)
