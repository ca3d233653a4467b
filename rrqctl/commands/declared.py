"""Commands on declarations: show, render."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import TYPE_CHECKING, Any

from rrqctl.commands.common import load
from rrqctl.errors import ConfigError, ExitCode, UsageError
from rrqctl.view import print_json

if TYPE_CHECKING:
    from rrqctl.model import Cable


def cable_json(cable: Cable) -> dict[str, Any]:
    return {**cable.model_dump(mode="json"), "command": shlex.join(cable.rrqnet_argv())}


def show(args: argparse.Namespace) -> int:
    cfg = load(args)
    name = cfg.canonical(args.name) if args.name else None
    names = [name] if name else cfg.names
    if name and name not in cfg.cables and name not in cfg.broken:
        cfg.get(name)  # raises: not a cable
    issues = {n: cfg.issues_of(n) for n in names} if cfg.broken or cfg.file_issues else {}
    errors = list(dict.fromkeys(i for found in issues.values() for i in found))
    if not name:
        errors = list(dict.fromkeys(errors + cfg.file_issues + cfg.unreadable))
    cables = [cfg.cables[n] for n in names if n in cfg.cables and not issues.get(n)]
    if args.json:
        print_json(
            {
                "cables": [cable_json(c) for c in cables],
                "errors": [str(i) for i in errors],
                "warnings": [str(w) for w in cfg.warnings],
            }
        )
    else:
        from rrqctl.view import write_show

        if cables:
            write_show(cables, sys.stdout)
        elif not errors:
            print("no rrqnet cables are declared")
    for i in errors:
        print(f"rrqctl: {i}", file=sys.stderr)
    return int(ExitCode.CONFIG if errors else ExitCode.OK)


def show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="one cable (default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def render_cmd(args: argparse.Namespace) -> int:
    from rrqctl import render
    from rrqctl.system.install import this_rrqctl

    if args.what == "cron":
        print(render.cron_file(args.schedule, this_rrqctl()), end="")
        return 0
    if not args.name:
        raise UsageError(f"render {args.what} needs the name of a cable")
    cfg = load(args)
    cable = cfg.get(args.name)
    if args.what == "unit":
        rrqctl = this_rrqctl()  # (`rrqctl install` puts the unit of an rrqctl from PyPI in /etc)
        unit_dir = "/lib/systemd/system" if rrqctl == "/usr/bin/rrqctl" else "/etc/systemd/system"
        print(render.unit_with_overrides(cable, unit_dir, rrqctl), end="")
    elif args.what == "interfaces":
        print(render.interfaces_stanza(cable), end="")
    else:
        _emit(render.networkd_files(cable), args.dir)
    return 0


def _emit(files: dict[str, str], directory: str | None) -> None:
    for name, text in files.items():
        if directory is None:
            print(f"# {name}\n{text}")
            continue
        path = os.path.join(directory, name)
        if os.path.exists(path):
            raise ConfigError(f"{path} exists: not overwriting it")
        with open(path, "w") as f:
            f.write(text)
        print(f"wrote {path}")


def render_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "what",
        choices=("networkd", "unit", "interfaces", "cron"),
        help="networkd: .netdev/.network for a cable; unit: rrqnet@.service with this "
        "cable's drop-in; interfaces: a stanza; cron: /etc/cron.d/rrqnet",
    )
    p.add_argument("name", nargs="?", help="the cable")
    p.add_argument("--dir", help="write the networkd files into this directory")
    p.add_argument("--schedule", default="* * * * *", help="cron schedule (default: every minute)")
