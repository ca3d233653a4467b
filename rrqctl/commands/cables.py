"""Commands that change the host for a cable: plan, up, down, run, hook."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import TYPE_CHECKING

from rrqctl.commands.common import load, name_arg, need_root, paths, sources
from rrqctl.errors import ConfigError, RrqError, error_json
from rrqctl.view import print_json

if TYPE_CHECKING:
    from rrqctl.model import Cable


def plan(args: argparse.Namespace) -> int:
    from rrqctl import ifupdown
    from rrqctl.plan import plan_up
    from rrqctl.supervise.check import ifupdown_up
    from rrqctl.system.host import engine_command
    from rrqctl.system.observe import observe_cable

    cable = load(args).get(args.name)
    run = paths(args)
    if ifupdown.keeps(cable.kind, sources(args)) and cable.name not in ifupdown_up(
        args.ifupdown_state
    ):
        print(f"[#] ifup {cable.name}   (as `rrqctl up` would; then its hook and ifup do:)")
    seen = observe_cable(cable, run)
    if cable.owner == "networkd" and not seen.tap_exists:
        print(f"# {cable.name} does not exist yet: systemd-networkd makes it, then:")
        seen = dataclasses.replace(seen, tap_exists=True, tap_up=True)
    actions = plan_up(cable, seen, engine_command(cable, run))
    for a in actions:
        print(f"[#] {a.text}")
    if not actions:
        print(f"{cable.name} is up: nothing to do")
    return 0


def up(args: argparse.Namespace) -> int:
    from rrqctl import ifupdown
    from rrqctl.supervise.check import ifupdown_up
    from rrqctl.system.host import Up, cable_lock
    from rrqctl.system.proc import remove_file

    need_root("up", "it makes taps and starts engines")
    cfg = load(args)
    cable = cfg.get(args.name)
    run = paths(args)
    remove_file(run.taken_down(cable.name))
    kept = ifupdown.keeps(cable.kind, sources(args))
    if kept and cable.name not in ifupdown_up(args.ifupdown_state):
        ifupdown.hand_over("ifup", cable.name, args.ifupdown_state)
        print(f"{cable.name} is up")
        return 0
    if cable.kind == "interfaces" and cfg.interfaces is not None:
        for w in cfg.interfaces.ifup_only(cable.name):
            print(f"rrqctl: {w}", file=sys.stderr)
    with cable_lock(run, cable.name):
        actions = Up(cable, run).run()
    print(f"{cable.name} is up" if actions else f"{cable.name} is up: nothing to do")
    return 0


def down(args: argparse.Namespace) -> int:
    from rrqctl import ifupdown
    from rrqctl.supervise.check import ifupdown_up
    from rrqctl.system import host
    from rrqctl.system.records import recorded_cable

    need_root("down", "it removes taps and stops engines")
    run = paths(args)
    cable = recorded_cable(run, args.name)  # as up saw it (the declaration may differ)
    if cable is None:
        cable = load(args).get(args.name)
    if args.name in ifupdown_up(args.ifupdown_state):  # (ifdown would say "not configured")
        ifupdown.hand_over("ifdown", cable.name, args.ifupdown_state)
        print(f"{cable.name} is down")
        return 0
    with host.cable_lock(run, cable.name):
        if cable.kind == "confd":  # (which check keeps up, as rrqnet-cron does): left down
            with open(run.taken_down(cable.name), "w"):
                pass
        actions = host.down(cable, run)
    print(f"{cable.name} is down" if actions else f"{cable.name} is down: nothing to do")
    return 0


def run(args: argparse.Namespace) -> int:
    """Validate the cable here, then exec the small engine process (supervise/handover.py)."""
    from rrqctl.supervise import handover
    from rrqctl.supervise.spec import CableSpec, Handover, spec_json

    try:
        cable = cable_from_file(args.cable_file) if args.cable_file else load(args).get(args.name)
    except RrqError as e:
        if not args.print_spec:
            raise
        print(error_json(e))
        return int(e.exit_code)
    if cable.addresses and os.path.exists(paths(args).ifupdown_owned(cable.name)):
        cable = cable.model_copy(update={"addresses": ()})  # ifup's static method adds them
    if args.print_spec:
        print_json(spec_json(cable))
        return 0
    need_root("run", "it makes a tap and runs the engine")
    if not args.attach:  # (started by hand or by its unit: no longer taken down)
        from rrqctl.system.proc import remove_file

        remove_file(paths(args).taken_down(cable.name))
    if not args.attach:  # (with --attach, `up` has made the log file its stderr already)
        _log_to_file(cable)
    reload = ["run", args.name, "--interfaces", args.interfaces, "--confd", args.confd]
    reload += ["--run-dir", args.run_dir]
    for d in args.networkd_dirs or ():
        reload += ["--networkd-dir", d]
    if args.cable_file:
        reload += ["--cable-file", args.cable_file]
    made_here = not args.attach and cable.local == "tap" and cable.owner == "rrqctl"
    given = Handover(
        spec=CableSpec.from_cable(cable),
        run_dir=args.run_dir,
        reload=tuple(reload),
        attach=args.attach,
        made=made_here,
        ready_fd=args.ready_fd,
        health_every=args.health_every,
    )
    if made_here:
        handover.set_up_and_exec(cable, paths(args), given, sys.argv[1:])
    else:
        handover.exec_engine(given, sys.argv[1:])
    return 0  # not reached: the engine process replaces this one


def _log_to_file(cable: Cable) -> None:
    """rrqnet_log PATH: this process's stdout and stderr (so the engine's, and its helpers')
    are appended to it, as for engines that ifup starts. Said before anything is made."""
    from rrqctl.system.host import open_log_file

    fd = open_log_file(cable)
    if fd is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        os.close(fd)


def cable_from_file(path: str) -> Cable:
    import json

    from pydantic import ValidationError

    from rrqctl.model import Cable

    try:
        with open(path) as f:
            data = json.load(f)
        return Cable.model_validate(data.get("cable", data))
    except (OSError, ValueError, ValidationError) as e:
        raise ConfigError(f"{path}: not a cable record: {e}") from None


def run_args(p: argparse.ArgumentParser) -> None:
    name_arg(p)
    p.add_argument(
        "--attach",
        action="store_true",
        help="only run the engine on a tap that `rrqctl up` made (no set-up, no tear-down)",
    )
    p.add_argument("--cable-file", metavar="FILE", help="the cable as recorded by `rrqctl up`")
    p.add_argument(
        "--ready-fd", metavar="FD", type=int, help="say READY (or FAIL reason) on this fd"
    )
    p.add_argument(
        "--health-every",
        metavar="SECONDS",
        type=float,
        default=float(os.environ.get("RRQCTL_HEALTH_EVERY", "10")),
        help="in-process health checks and repairs (default 10, 0 = off; env RRQCTL_HEALTH_EVERY)",
    )
    p.add_argument("--print-spec", action="store_true", help=argparse.SUPPRESS)


def hook(args: argparse.Namespace) -> int:
    from rrqctl.ifupdown import run_hook

    return run_hook(os.environ, sources(args), paths(args))
