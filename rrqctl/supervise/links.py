"""Changing the host for a running engine, in a short-lived helper process.

The engine process stays small (no pyroute2, no pydantic). rrqctl run made its tap and
bridge before it became the engine process; to repair or undo them, the engine runs
`python -m rrqctl.supervise.links ACTION RUN_DIR` with the cable's spec on stdin. The
helper says each change as a "[#]" line on stderr (the journal, or rrqnet_log's file) and,
on failure, the error as JSON on stdout; the engine raises it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rrqctl.errors import ActionError, ConfigError, EngineError, RrqError
from rrqctl.plan import PHASE_STEPS, Step

if TYPE_CHECKING:
    from rrqctl.supervise.spec import CableSpec
    from rrqctl.system.paths import Paths

# What `rrqctl run` itself sets up and tears down around its engine.
SETUP_STEPS = tuple(s for s in PHASE_STEPS["pre-up"] if s not in (Step.ENGINE, Step.NICE))
ACTIONS = ("up", "tap", "down")  # set up again; make a lost tap and set it up; tear down
HELPER_TIMEOUT = 60.0
ERRORS: dict[str, type[RrqError]] = {
    c.__name__: c for c in (RrqError, ActionError, ConfigError, EngineError)
}


def change(action: str, cable: CableSpec, paths: Paths) -> None:
    """Run the helper for action; raise what it raised (an ActionError if it just failed)."""
    argv = [sys.executable, "-m", __name__, action, paths.run_dir]
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


def error_from(text: str, fallback: str) -> RrqError:
    """The error a helper wrote as JSON ({"kind", "message"}), else fallback as ActionError."""
    try:
        said = json.loads(text)
        kind, message = ERRORS.get(said["kind"], RrqError), str(said["message"])
    except (ValueError, KeyError, TypeError):
        return ActionError(fallback)
    return kind(message)


def error_json(e: RrqError) -> str:
    kind = type(e).__name__ if type(e).__name__ in ERRORS else "RrqError"
    return json.dumps({"kind": kind, "message": str(e)})


def main(argv: Sequence[str]) -> int:
    """The helper: ACTION RUN_DIR, the spec on stdin."""
    from rrqctl.model import Cable
    from rrqctl.system import host, netlink
    from rrqctl.system.paths import Paths

    action, run_dir = argv
    cable = Cable.model_validate(json.load(sys.stdin)["cable"])
    paths = Paths(run_dir)
    try:
        if action == "tap":
            netlink.create_tap(cable.name)
        if action in ("up", "tap"):
            host.Up(cable, paths, say=say).run(SETUP_STEPS)
        elif action == "down":
            host.down(cable, paths, say=say, steps=SETUP_STEPS)
    except RrqError as e:
        print(error_json(e))
        return int(e.exit_code)
    except OSError as e:
        print(error_json(ActionError(f"{action} {cable.name}: {e}")))
        return int(ActionError.exit_code)
    return 0


def say(line: str) -> None:
    """A change, as "[#] command", on stderr: the journal, or rrqnet_log's file."""
    print(line, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
