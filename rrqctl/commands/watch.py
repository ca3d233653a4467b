"""Commands on running cables: status, check."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Any

from rrqctl.commands.common import ifupdown_state_arg, load, need_root, paths
from rrqctl.errors import NotRunningError, RrqError, exit_code
from rrqctl.view import print_json


def status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="one cable (default: all)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--json", action="store_true", help="machine-readable output")
    how.add_argument(
        "--metrics", action="store_true", help="Prometheus text exposition (node_exporter)"
    )


def status(args: argparse.Namespace) -> int:
    from rrqctl.view import status_text

    run = paths(args)
    names = [args.name] if args.name else _known_names(args, run.run_dir)
    what = "counters" if args.metrics else "status"  # metrics need no MAC table, only its size
    result = {n: ask(run.control(n), what) for n in names}
    if args.json:
        print_json(result if not args.name else result[args.name])
    elif args.metrics:
        from rrqctl.supervise.metrics import metrics_text

        print(metrics_text(st for st in result.values() if st), end="")
    else:
        for n in names:
            st = result[n]
            print(status_text(st) if st else f"cable {n}: not running")
        if not names:
            print("no rrqnet cables are declared or running")
    if args.name and result[args.name] is None:
        raise NotRunningError(
            f"{args.name} is not running (no engine answers on {run.control(args.name)})"
        )
    return 0


def ask(path: str, what: str) -> dict[str, Any] | None:
    """The engine's answer (its status, or its counters), or None when no engine answers."""
    from rrqctl.supervise.control import query

    try:
        answer = query(path, what)
    except NotRunningError as e:
        if what != "status" and "unknown request" in str(e):  # started before an upgrade
            return ask(path, "status")
        return None
    return dict(answer)


def _known_names(args: argparse.Namespace, run_dir: str) -> list[str]:
    """Every cable declared or running. A declaration that cannot be read is said, and the
    running cables are shown all the same (metrics go on for the cables that run)."""
    cfg = load(args)
    for issue in cfg.unreadable:
        print(f"rrqctl: {issue} (cables declared there show only if running)", file=sys.stderr)
    try:
        running = {f[:-5] for f in os.listdir(run_dir) if f.endswith(".sock")}
    except FileNotFoundError:
        running = set()
    except OSError as e:
        raise RrqError(f"{run_dir}: {e.strerror}") from None
    return sorted(set(cfg.names) | running)


def check(args: argparse.Namespace) -> int:
    from rrqctl.supervise.check import Checker, check_lock, should_be_up

    if not args.dry_run:
        need_root("check", "it repairs cables (--dry-run only reports)")
    run = paths(args)
    lock = contextlib.nullcontext() if args.dry_run else check_lock(run, args.lock_wait)
    with lock:  # (a dry run writes nothing, not even the lock)
        cfg = load(args)
        state = args.ifupdown_state
        names = [cfg.canonical(n) for n in args.names] or should_be_up(cfg, run, state)
        wanted = None if args.names else (lambda n: n in should_be_up(cfg, run, state))
        checker = Checker(
            cfg, run, dry_run=args.dry_run, now=args.now, ifupdown_state=state, wanted=wanted
        )
        reports = checker.check(names)
    unread = [str(i) for i in cfg.unreadable]  # cables declared there go unchecked: say so
    if args.json:
        ok = all(r.ok for r in reports) and not unread
        print_json({"ok": ok, "cables": [r.as_json() for r in reports], "unreadable": unread})
    else:
        for r in reports:
            for line in r.lines():
                if not (args.quiet and r.ok and not r.repaired and not r.findings):
                    print(line)
    for line in unread:
        print(f"rrqctl: {line} (cables declared there are not checked)", file=sys.stderr)
    return exit_code(all(r.ok for r in reports) and not unread)


def check_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help="cables to check and repair (default: every cable that should be up)",
    )
    p.add_argument("--dry-run", action="store_true", help="report, repair nothing")
    p.add_argument(
        "--now", action="store_true", help="repair now, even a cable whose repairs keep failing"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--quiet", action="store_true", help="say nothing about cables that are fine (for cron)"
    )
    ifupdown_state_arg(p)
    p.add_argument(
        "--lock-wait",
        metavar="SECONDS",
        type=float,
        default=20.0,
        help="how long to wait for another check to finish (default 20)",
    )
