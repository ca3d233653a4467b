"""What every command shares: where cables are declared and run, read from the options."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

from rrqctl.errors import RrqError

if TYPE_CHECKING:
    from rrqctl.config.sources import Config, Sources
    from rrqctl.system.paths import Paths


def sources(args: argparse.Namespace) -> Sources:
    from rrqctl.config.networkd import SEARCH_PATH
    from rrqctl.config.sources import DEFAULT_CONFD, DEFAULT_INTERFACES, Sources

    dirs = tuple(args.networkd_dirs or SEARCH_PATH)
    return Sources(
        args.interfaces,
        dirs,
        args.confd,
        interfaces_given=args.interfaces != DEFAULT_INTERFACES,
        confd_given=args.confd != DEFAULT_CONFD,
        networkd_given=bool(args.networkd_dirs),
    )


def load(args: argparse.Namespace) -> Config:
    """Every declared cable; each warning said on stderr."""
    from rrqctl.config.sources import load as load_sources

    cfg = load_sources(sources(args))
    for w in cfg.warnings:
        print(f"rrqctl: {w}", file=sys.stderr)
    return cfg


def paths(args: argparse.Namespace) -> Paths:
    from rrqctl.system.paths import Paths

    return Paths(args.run_dir)


def need_root(command: str, why: str) -> None:
    if os.geteuid() != 0:
        raise RrqError(f"{command} needs root: {why}")


def name_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the cable (its interface name)")


def ifupdown_state_arg(p: argparse.ArgumentParser) -> None:
    from rrqctl.supervise.check import DEFAULT_IFUPDOWN_STATE

    p.add_argument(
        "--ifupdown-state",
        metavar="DIR",
        default=DEFAULT_IFUPDOWN_STATE,
        help=f"where ifupdown records what is up (default {DEFAULT_IFUPDOWN_STATE})",
    )


def up_down_args(p: argparse.ArgumentParser) -> None:
    name_arg(p)
    ifupdown_state_arg(p)


def no_args(p: argparse.ArgumentParser) -> None:
    pass
