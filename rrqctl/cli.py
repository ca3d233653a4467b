"""rrqctl's command line; the one place that turns an RrqError into a message and exit code."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from rrqctl import __version__
from rrqctl.errors import UsageError, run_guarded

PROG = "rrqctl"
CRON_PROG = "rrqnet-cron"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # argparse exits 2 itself; we say it our way
        raise UsageError(f"{message}\n{self.format_usage().rstrip()}")


def _common(p: argparse.ArgumentParser, *, before: bool = False) -> None:
    """Where cables are declared and run: options of each command that reads cables, which
    may also come before the command (before: the main parser's, which set the defaults)."""
    from rrqctl.config.sources import DEFAULT_CONFD, DEFAULT_INTERFACES
    from rrqctl.system.paths import default_run_dir

    def default(value: object) -> object:
        return value if before else argparse.SUPPRESS  # (a command's own: only when given)

    g = p.add_argument_group("where cables are declared and run")
    g.add_argument(
        "--interfaces",
        metavar="FILE",
        default=default(DEFAULT_INTERFACES),
        help=f"the ifupdown interfaces file (default {DEFAULT_INTERFACES})",
    )
    g.add_argument(
        "--networkd-dir",
        metavar="DIR",
        action="append",
        dest="networkd_dirs",
        default=default(None),
        help="a systemd-networkd directory (repeatable; default: systemd's search path)",
    )
    g.add_argument(
        "--confd",
        metavar="DIR",
        default=default(DEFAULT_CONFD),
        help=f"rrqnet-cron's conf.d (default {DEFAULT_CONFD})",
    )
    g.add_argument(
        "--run-dir",
        metavar="DIR",
        default=default(default_run_dir()),
        help=f"pid files and control sockets (default here: {default_run_dir()}; "
        "/run/rrqnet/netns/NAME inside `ip netns exec NAME`)",
    )


def parser(cron: bool = False) -> argparse.ArgumentParser:
    """rrqctl's parser (cron: `rrqctl check` as rrqnet-cron, its usage under that name)."""
    from rrqctl import commands

    p = _Parser(prog=PROG, description="Manage rrqnet virtual cables (layer-2 over UDP).")
    p.add_argument("--version", action="version", version=f"rrqctl {__version__}")
    p.add_argument("-v", "--verbose", action="count", default=0, help="say more (repeatable)")
    _common(p, before=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (fn, help_text, add_args, common) in commands.COMMANDS.items():
        as_cron = cron and name == "check"
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if as_cron:
            sp.prog = CRON_PROG
        sp.add_argument("-v", "--verbose", action="count", default=0, help=argparse.SUPPRESS)
        add_args(sp)
        if common:
            _common(sp)
        sp.set_defaults(func=fn)
        if as_cron:  # (what the main parser says of a wrong argument: rrqnet-cron's usage)
            p.prog, p.usage = CRON_PROG, sp.format_usage().removeprefix("usage: ").strip()
    return p


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "run" in args_list:
        from rrqctl.supervise.spec import ENGINE_FD

        if ENGINE_FD in args_list:  # `rrqctl run` after its handover
            from rrqctl.supervise.handover import run_engine

            return run_guarded(PROG, lambda: run_engine(args_list))

    def go() -> int:
        args = parser(cron=prog == CRON_PROG).parse_args(args_list)
        dirs = _values_of("--networkd-dir", args_list)
        if dirs:  # (before the command and after it: all of them, in order)
            args.networkd_dirs = dirs
        if not getattr(args, "command", None):
            raise UsageError(f"a command is needed\n{parser().format_usage().rstrip()}")
        rc: int = args.func(args)
        return rc

    return run_guarded(prog, go)


def _values_of(option: str, words: Sequence[str]) -> list[str]:
    """Every value of a repeatable option in words, as `--opt V` or `--opt=V`."""
    out = []
    for i, w in enumerate(words):
        if w == option and i + 1 < len(words):
            out.append(words[i + 1])
        elif w.startswith(option + "="):
            out.append(w.partition("=")[2])
    return out


def console() -> NoReturn:
    """The rrqctl command: main(), then out at once. Python would first free every object
    one by one (a big configuration makes millions): the operating system does it better."""
    fast_exit(main())


def fast_exit(rc: int) -> NoReturn:
    import logging

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a reader gone, a stream closed
            stream.flush()
    os._exit(rc)


def cron_main(argv: Sequence[str] | None = None) -> int:
    """rrqnet-cron NAME...: what upstream's cron script does, as `rrqctl check NAME...`."""
    return main(["check", *(sys.argv[1:] if argv is None else argv)], CRON_PROG)
