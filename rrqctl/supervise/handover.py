"""Handing a validated cable to a fresh, small engine process.

`rrqctl run NAME` reads and validates the cable with the model (pydantic), makes its tap,
then execs itself with `--engine-fd FD`: the same pid and command line, but a process that
imports only the engine, the supervisor and the control socket. pydantic and pyroute2 stay
out of it (about 26 MB of a 46 MB engine); repairs and tear-down run in a helper
(links.py), and a reload asks `rrqctl run ... --print-spec` for the cable again.

FD is a memfd holding the handover as JSON: the cable's spec and how to run it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

from rrqctl.engine import cpucaps
from rrqctl.errors import UsageError
from rrqctl.supervise.spec import ENGINE_FD, PRINT_SPEC, CableSpec, Handover, fetch_spec
from rrqctl.system.proc import python_module

if TYPE_CHECKING:
    from rrqctl.model import Cable
    from rrqctl.system.paths import Paths


def exec_engine(handover: Handover, argv: Sequence[str]) -> NoReturn:
    """Become the engine process for handover; argv: this command's words (for `ps`)."""
    fd = os.memfd_create("rrqctl-handover", 0)  # no MFD_CLOEXEC: the new image reads it
    data = json.dumps(handover.to_json()).encode()
    if os.write(fd, data) != len(data):
        raise OSError(f"handover: short write to memfd {fd}")
    os.lseek(fd, 0, os.SEEK_SET)
    if handover.ready_fd is not None:
        os.set_inheritable(handover.ready_fd, True)
    sys.stdout.flush()
    sys.stderr.flush()
    me = _self()
    env = cpucaps.for_datagrams(os.environ, os.uname().machine)
    os.execve(me[0], [*me, *argv, ENGINE_FD, str(fd)], env)


def set_up_and_exec(
    cable: Cable, paths: Paths, handover: Handover, argv: Sequence[str]
) -> NoReturn:
    """Make the tap (and its MAC, MTU, address, bridge) here, where the model and pyroute2
    are loaded already, then become the engine process; undo the set-up if that fails."""
    from rrqctl.aspects import Step
    from rrqctl.supervise.links import SETUP_STEPS, say
    from rrqctl.supervise.runner import pidfile, readable_keys
    from rrqctl.system import host

    readable_keys(cable.engine_settings())
    with pidfile(paths.pidfile(cable.name)):  # the engine process takes it over
        with host.cable_lock(paths, cable.name):  # (not `rrqctl check` tidying it meanwhile)
            up = host.Up(cable, paths, say=say)
            up.run(SETUP_STEPS)
        made = up.record.has(Step.TAP)  # (by this run, or the one it restarts)
        try:
            exec_engine(handover.with_tap_made(made), argv)
        except BaseException:
            host.down(cable, paths, say=say, steps=SETUP_STEPS)
            raise


def _self() -> list[str]:
    """How to run rrqctl again: its own script when that is what runs (ps shows 'rrqctl')."""
    script = sys.argv[0]
    if os.path.basename(script) == "rrqctl" and os.access(script, os.X_OK):
        return [script]
    return python_module("rrqctl")


def run_engine(argv: Sequence[str]) -> int:
    """The engine process: read the handover, then supervise the cable until stopped."""
    from rrqctl.supervise.supervisor import Supervisor
    from rrqctl.system.paths import Paths

    try:
        at = list(argv).index(ENGINE_FD) + 1
        with os.fdopen(int(argv[at]), "rb") as f:
            h = Handover.from_json(json.load(f))
    except (IndexError, OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"{ENGINE_FD} is rrqctl run's own: not a handover") from None
    reload_argv = [*python_module("rrqctl"), *h.reload, PRINT_SPEC]

    def reload() -> CableSpec:
        return fetch_spec(reload_argv)

    return Supervisor(
        h.spec,
        Paths(h.run_dir),
        attach=h.attach,
        made=h.made,
        tap_made=h.tap_made,
        ready_fd=h.ready_fd,
        reload_source=reload,
        health_every=h.health_every,
    ).run()
