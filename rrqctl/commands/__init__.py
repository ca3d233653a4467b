"""The rrqctl subcommands: each parses nothing itself, reads the config, and calls a layer.

COMMANDS is the table the parser (cli.py) and the man page read."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import NamedTuple

from rrqctl.commands.cables import down, hook, plan, run, run_args, up
from rrqctl.commands.common import no_args, up_down_args
from rrqctl.commands.declared import render_args, render_cmd, show, show_args
from rrqctl.commands.tools import demo, genkey, genkey_args, install_args, install_cmd
from rrqctl.commands.watch import check, check_args, status, status_args


class Command(NamedTuple):
    run: Callable[[argparse.Namespace], int]
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    reads_cables: bool  # takes the options of where cables are declared and run


COMMANDS: dict[str, Command] = {
    "plan": Command(
        plan, "print what `up` would do on this host now (a dry run)", up_down_args, True
    ),
    "up": Command(
        up,
        "bring a cable up: tap, addresses, bridge, engine, DHCP; undone on failure",
        up_down_args,
        True,
    ),
    "down": Command(
        down,
        "undo what `up` made for a cable; `check` leaves it down until `up`",
        up_down_args,
        True,
    ),
    "run": Command(
        run, "run a cable's engine in the foreground (what rrqnet@.service runs)", run_args, True
    ),
    "show": Command(
        show, "show the declared cables and where each value came from", show_args, True
    ),
    "status": Command(
        status, "show running cables: remotes, counters, MACs, drops", status_args, True
    ),
    "hook": Command(
        hook,
        "the ifupdown hook (reads IFACE, PHASE and IF_RRQNET_* from the environment)",
        no_args,
        True,
    ),
    "check": Command(
        check,
        "find what died (engine, tap, bridge, dhclient) and repair it; for cron",
        check_args,
        True,
    ),
    "render": Command(
        render_cmd,
        "print networkd files, a unit with overrides, a stanza or the cron file",
        render_args,
        True,
    ),
    "install": Command(
        install_cmd,
        "put the ifupdown hooks, systemd units, cron file and /etc/rrqnet in place",
        install_args,
        False,
    ),
    "genkey": Command(
        genkey, "write a new random key file for sealed channels", genkey_args, False
    ),
    "demo": Command(
        demo,
        "bring up a sealed cable between two network namespaces, ping, show, clean up",
        no_args,
        False,
    ),
}
