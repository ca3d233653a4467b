"""Changing the host for a running engine, in a short-lived helper process.

The engine process stays small (no pyroute2, no pydantic). rrqctl run made its tap and
bridge before it became the engine process; to repair or undo them, the engine runs
`python -m rrqctl.supervise.links_helper ACTION RUN_DIR` with the cable's spec on stdin. The
helper says each change as a "[#]" line on stderr (the journal, or rrqnet_log's file) and,
on failure, the error as JSON on stdout; the engine raises it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from rrqctl.aspects import LINK_STEPS
from rrqctl.errors import ActionError, error_from
from rrqctl.system.proc import python_module

if TYPE_CHECKING:
    from rrqctl.supervise.spec import CableSpec
    from rrqctl.system.paths import Paths

SETUP_STEPS = LINK_STEPS  # what `rrqctl run` itself sets up and tears down around its engine
ACTIONS = ("up", "tap", "down")  # set up again; make a lost tap and set it up; tear down
HELPER_TIMEOUT = 60.0
HELPER = "rrqctl.supervise.links_helper"


def change(action: str, cable: CableSpec, paths: Paths) -> None:
    """Run the helper for action; raise what it raised (an ActionError if it just failed)."""
    argv = [*python_module(HELPER), action, paths.run_dir]
    try:
        done = subprocess.run(
            argv,
            check=False,
            input=json.dumps(cable.to_json()),
            stdout=subprocess.PIPE,
            text=True,
            timeout=HELPER_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise ActionError(f"{action} {cable.name}: no answer in {HELPER_TIMEOUT:.0f}s") from None
    if done.returncode == 0:
        return
    raise error_from(done.stdout, f"{action} {cable.name}: helper exited {done.returncode}")


def say(line: str) -> None:
    """A change, as "[#] command", on stderr: the journal, or rrqnet_log's file."""
    print(line, file=sys.stderr, flush=True)
