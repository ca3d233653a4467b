"""The links helper: `python -m rrqctl.supervise.links_helper ACTION RUN_DIR`, the cable's
spec on stdin; run by an engine process (links.change) to set its tap up again, make a lost
one, or tear the set-up down, with the model and pyroute2 it does not load itself."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from rrqctl.errors import ActionError, RrqError, error_json
from rrqctl.supervise.links import SETUP_STEPS, say


def main(argv: Sequence[str]) -> int:
    """ACTION (up, tap, down) RUN_DIR; the error, if any, as JSON on stdout."""
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
