"""rrqctl's command line; the one place that turns an RrqError into a message and exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from rrqctl.errors import ConfigError, ExitCode, RrqError


def run_guarded(prog: str, fn: Callable[[], int]) -> int:
    """Run fn; an RrqError becomes 'prog: message' lines on stderr and its exit code."""
    try:
        return fn()
    except ConfigError as e:
        for line in e.lines:
            print(f"{prog}: {line}", file=sys.stderr)
        return int(e.exit_code)
    except RrqError as e:
        first, *rest = str(e).splitlines() or [type(e).__name__]
        print(f"{prog}: {first}", *rest, sep="\n", file=sys.stderr)
        return int(e.exit_code)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["demo"]:
        from rrqctl.demo import run_demo

        return run_guarded("rrqctl", run_demo)
    print("rrqctl: not yet", file=sys.stderr)
    return int(ExitCode.USAGE)


def cron_main(argv: Sequence[str] | None = None) -> int:
    return main(["check", *(sys.argv[1:] if argv is None else argv)])
