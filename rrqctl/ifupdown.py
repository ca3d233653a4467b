"""`rrqctl hook`: what each ifupdown phase does to a cable.

    pre-up     tap (unless notap), MAC/MTU, up, bridge, engine (waits until ready)
    post-up    dhclient, when rrqnet_dhcp is set
    pre-down   dhclient released and stopped
    post-down  engine stopped, the tap it made removed

Where systemd is PID 1 the cable runs as rrqnet@IFACE.service instead (systemd supervises
it; the unit does the tap, engine and dhclient): pre-up starts it, post-down stops it.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping

from rrqctl.config import hookenv
from rrqctl.config.sources import Sources, hook_cable
from rrqctl.errors import ActionError, UsageError
from rrqctl.plan import PHASE_STEPS, Step
from rrqctl.system import host, notify, proc
from rrqctl.system.names import check_names
from rrqctl.system.paths import Paths
from rrqctl.system.records import recorded_cable

DOWN_STEPS = {
    "pre-down": (Step.DHCP,),
    "post-down": (Step.DHCP, Step.ENGINE, Step.BRIDGE, Step.ADDRESS, Step.TAP),
}


def unit(name: str) -> str:
    return f"rrqnet@{name}.service"


def run_hook(env: Mapping[str, str], src: Sources, paths: Paths) -> int:
    call = hookenv.parse(env)
    if call.is_all or not call.is_cable:
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

    if notify.booted():
        return _systemd(call, src, paths, say)
    if call.phase in PHASE_STEPS:
        cable = hook_cable(call, src)
        with host.cable_lock(paths, cable.name):
            host.Up(cable, paths, say).run(PHASE_STEPS[call.phase])
        return 0
    recorded = recorded_cable(paths, call.iface)
    if recorded is not None:
        with host.cable_lock(paths, recorded.name):
            host.down(recorded, paths, say, DOWN_STEPS[call.phase])
    return 0


def _systemd(call: hookenv.HookCall, src: Sources, paths: Paths, say: host.Say) -> int:
    if call.phase == "pre-up":
        cable = hook_cable(call, src)  # the same checks, with FILE:LINE, before anything starts
        check_names(
            cable, paths, strict=True, warn=lambda w: print(f"rrqctl: {w}", file=sys.stderr)
        )
        _systemctl("start", call.iface, say)
    elif call.phase == "post-down":
        _systemctl("stop", call.iface, say)
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
