"""`rrqctl hook`: what each ifupdown phase does to a cable.

    pre-up     tap (unless notap), MAC/MTU, up, bridge, engine (waits until ready)
    post-up    dhclient, when rrqnet_dhcp is set
    pre-down   dhclient released and stopped
    post-down  engine stopped, the tap it made removed

Where systemd is PID 1 the cable runs as rrqnet@IFACE.service instead (systemd supervises
it; the unit does the tap, engine and dhclient): pre-up starts it, post-down stops it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping

from rrqctl.aspects import PHASE_STEPS, Step
from rrqctl.config import hookenv
from rrqctl.config.sources import DEFAULT_INTERFACES, Sources, hook_cable, stray_settings
from rrqctl.errors import ActionError, UsageError
from rrqctl.supervise.check import DEFAULT_IFUPDOWN_STATE
from rrqctl.system import host, notify, proc
from rrqctl.system.names import check_names
from rrqctl.system.paths import Paths
from rrqctl.system.records import recorded_cable

DOWN_STEPS = {"pre-down": PHASE_STEPS["post-up"], "post-down": tuple(Step)}  # undone in reverse


def unit(name: str) -> str:
    return f"rrqnet@{name}.service"


# ---- `rrqctl up` and `down` on a cable that ifupdown keeps ---------------------------------


def keeps(kind: str, src: Sources) -> bool:
    """ifupdown keeps the cable: a stanza of the interfaces file ifup reads, on a host with
    ifup. `rrqctl up` and `down` then go through ifup and ifdown, so that ifupdown's record of
    what is up stays true (ifdown does nothing to an interface it did not bring up)."""
    return (
        kind == "interfaces"
        and os.path.abspath(src.interfaces) == DEFAULT_INTERFACES
        and shutil.which("ifup") is not None
    )


def hand_over(command: str, name: str, state_dir: str) -> None:
    """Run `ifup NAME` or `ifdown NAME`; its hooks do the work, and say what is wrong."""
    argv = [command, name]
    if state_dir != DEFAULT_IFUPDOWN_STATE:
        argv += ["--state-dir", state_dir]
    print(f"[#] {shlex.join(argv)}", flush=True)
    r = proc.run(argv, check=False, timeout=120, capture=False)
    if r.returncode != 0:
        raise ActionError(f"{shlex.join(argv)} failed (exit {r.returncode}; see above)")


def run_hook(env: Mapping[str, str], src: Sources, paths: Paths) -> int:
    call = hookenv.parse(env)
    if call.is_all or not call.settings:
        return 0
    if call.phase not in hookenv.PHASES:
        raise UsageError(
            f"rrqctl hook runs from ifupdown (PHASE is '{call.phase}', not one of "
            f"{', '.join(hookenv.PHASES)})"
        )
    verbose = env.get("VERBOSITY", "0") != "0"

    def say(line: str) -> None:
        if verbose:
            print(line, flush=True)

    if not call.is_cable:  # rrqnet_* options but no rrqnet_port: a typo, or another stanza's
        if call.phase == "pre-up":
            stray_settings(call, src)
        return 0
    if notify.booted():
        return _systemd(call, src, paths, say)
    if call.phase in PHASE_STEPS:
        cable = hook_cable(call, src, warn=call.phase == "pre-up")  # (warnings said once)
        with host.cable_lock(paths, cable.name):
            host.Up(cable, paths, say).run(PHASE_STEPS[call.phase])
        return 0
    recorded = recorded_cable(paths, call.iface)
    if recorded is not None:
        with host.cable_lock(paths, recorded.name):
            host.down(recorded, paths, say, DOWN_STEPS[call.phase])
    return 0


def _systemd(call: hookenv.HookCall, src: Sources, paths: Paths, say: host.Say) -> int:
    owned = paths.ifupdown_owned(call.iface)
    if call.phase == "pre-up":
        cable = hook_cable(call, src)  # the same checks, with FILE:LINE, before anything starts
        check_names(
            cable, paths, strict=True, warn=lambda w: print(f"rrqctl: {w}", file=sys.stderr)
        )
        os.makedirs(paths.run_dir, mode=0o755, exist_ok=True)
        with open(owned, "w"):  # ifup adds the stanza's addresses itself: not the unit
            pass
        try:
            _systemctl("start", call.iface, say)
        except BaseException:
            proc.remove_file(owned)
            raise
    elif call.phase == "post-down":
        _systemctl("stop", call.iface, say)
        proc.remove_file(owned)
        # stopped in the restart delay after a crash, no engine was there to tear down
        pidfile = paths.pidfile(call.iface)
        if host.take_down_left(paths, call.iface, lambda: proc.read_pidfile(pidfile) is None):
            say(f"[#] rrqctl down {call.iface}   (its engine had died: nothing else took it down)")
    return 0


def _warn(line: str) -> None:
    print(f"rrqctl: {line}", file=sys.stderr)


def _systemctl(verb: str, name: str, say: host.Say) -> None:
    say(f"[#] systemctl {verb} {unit(name)}")
    r = proc.run(["systemctl", verb, unit(name)], check=False, timeout=90)
    if r.returncode != 0:
        raise ActionError(
            f"systemctl {verb} {unit(name)} failed; see: journalctl -u {unit(name)}",
            stderr=r.stderr,
        )
