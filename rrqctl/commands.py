"""The rrqctl subcommands: each parses nothing itself, reads the config, and calls a layer."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import sys
from collections.abc import Callable
from typing import Any

from rrqctl.cli import exit_code, print_json
from rrqctl.errors import ConfigError, ExitCode, NotRunningError, RrqError, UsageError

Command = tuple[
    Callable[[argparse.Namespace], int], str, Callable[[argparse.ArgumentParser], None], bool
]


def sources(args: argparse.Namespace) -> Any:
    from rrqctl.config.networkd import SEARCH_PATH
    from rrqctl.config.sources import DEFAULT_INTERFACES, Sources

    dirs = tuple(args.networkd_dirs or SEARCH_PATH)
    given = args.interfaces != DEFAULT_INTERFACES
    return Sources(args.interfaces, dirs, args.confd, interfaces_given=given)


def load(args: argparse.Namespace) -> Any:
    from rrqctl.config.sources import load as load_sources

    cfg = load_sources(sources(args))
    for w in cfg.warnings:
        print(f"rrqctl: {w}", file=sys.stderr)
    return cfg


def paths(args: argparse.Namespace) -> Any:
    from rrqctl.system.paths import Paths

    return Paths(args.run_dir)


# ---- show ------------------------------------------------------------------------------


def cable_json(cable: Any) -> dict[str, Any]:
    return {**cable.model_dump(mode="json"), "command": shlex.join(cable.rrqnet_argv())}


def show(args: argparse.Namespace) -> int:
    cfg = load(args)
    names = [args.name] if args.name else cfg.names
    if args.name and args.name not in cfg.cables and args.name not in cfg.broken:
        cfg.get(args.name)  # raises: not a cable
    issues = {n: cfg.issues_of(n) for n in names} if cfg.broken or cfg.file_issues else {}
    errors = list(dict.fromkeys(i for found in issues.values() for i in found))
    if not args.name:
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
        from rrqctl.view import show_text

        if cables:
            print(show_text(cables))
        elif not errors:
            print("no rrqnet cables are declared")
    for i in errors:
        print(f"rrqctl: {i}", file=sys.stderr)
    return int(ExitCode.CONFIG if errors else ExitCode.OK)


def _show_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", nargs="?", help="one cable (default: all)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


# ---- status ----------------------------------------------------------------------------


def _status_args(p: argparse.ArgumentParser) -> None:
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
    ask = "counters" if args.metrics else "status"  # metrics need no MAC table, only its size
    result = {n: _ask(run.control(n), ask) for n in names}
    if args.json:
        print_json(result if not args.name else result[args.name])
    elif args.metrics:
        from rrqctl.supervise.metrics import metrics_text

        print(metrics_text(st for st in result.values() if st), end="")
    else:
        for n in names:
            print(status_text(result[n]) if result[n] else f"cable {n}: not running")
        if not names:
            print("no rrqnet cables are declared or running")
    if args.name and result[args.name] is None:
        raise NotRunningError(
            f"{args.name} is not running (no engine answers on {run.control(args.name)})"
        )
    return 0


def _ask(path: str, what: str) -> Any:
    """The engine's answer, or None when no engine answers."""
    from rrqctl.supervise.control import query

    try:
        return query(path, what)
    except NotRunningError as e:
        if what != "status" and "unknown request" in str(e):  # started before an upgrade
            return _ask(path, "status")
        return None


def _known_names(args: argparse.Namespace, run_dir: str) -> list[str]:
    """Every cable declared or running; an error when some could not be looked at."""
    cfg = load(args)
    if cfg.unreadable:
        raise ConfigError(cfg.unreadable)
    try:
        running = {f[:-5] for f in os.listdir(run_dir) if f.endswith(".sock")}
    except FileNotFoundError:
        running = set()
    except OSError as e:
        raise RrqError(f"{run_dir}: {e.strerror}") from None
    return sorted(set(cfg.names) | running)


# ---- plan, up, down, run ---------------------------------------------------------------


def plan(args: argparse.Namespace) -> int:
    from rrqctl.plan import plan_up
    from rrqctl.system.host import engine_command
    from rrqctl.system.observe import observe_cable

    cable = load(args).get(args.name)
    run = paths(args)
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


def need_root(command: str, why: str) -> None:
    if os.geteuid() != 0:
        raise RrqError(f"{command} needs root: {why}")


def up(args: argparse.Namespace) -> int:
    from rrqctl import ifupdown
    from rrqctl.supervise.check import ifupdown_up
    from rrqctl.system.host import Up, cable_lock
    from rrqctl.system.proc import remove_file

    need_root("up", "it makes taps and starts engines")
    cable = load(args).get(args.name)
    run = paths(args)
    remove_file(run.taken_down(cable.name))
    kept = ifupdown.keeps(cable.kind, sources(args))
    if kept and cable.name not in ifupdown_up(args.ifupdown_state):
        ifupdown.hand_over("ifup", cable.name, args.ifupdown_state)
        print(f"{cable.name} is up")
        return 0
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
    if cable.kind == "confd":  # (which check keeps up, as rrqnet-cron does): left down
        os.makedirs(run.run_dir, mode=0o755, exist_ok=True)
        with open(run.taken_down(cable.name), "w"):
            pass
    if args.name in ifupdown_up(args.ifupdown_state):  # (ifdown would say "not configured")
        ifupdown.hand_over("ifdown", cable.name, args.ifupdown_state)
        print(f"{cable.name} is down")
        return 0
    with host.cable_lock(run, cable.name):
        actions = host.down(cable, run)
    print(f"{cable.name} is down" if actions else f"{cable.name} is down: nothing to do")
    return 0


def run(args: argparse.Namespace) -> int:
    """Validate the cable here, then exec the small engine process (supervise/handover.py)."""
    from rrqctl.supervise import handover
    from rrqctl.supervise.links import error_json
    from rrqctl.supervise.spec import spec_json

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
    given = {
        "spec": spec_json(cable),
        "run_dir": args.run_dir,
        "attach": args.attach,
        "made": made_here,
        "tap_made": False,  # (set_up_and_exec says)
        "ready_fd": args.ready_fd,
        "health_every": args.health_every,
        "reload": reload,
    }
    if made_here:
        handover.set_up_and_exec(cable, paths(args), given, sys.argv[1:])
    else:
        handover.exec_engine(given, sys.argv[1:])
    return 0  # not reached: the engine process replaces this one


def _log_to_file(cable: Any) -> None:
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


def cable_from_file(path: str) -> Any:
    import json

    from pydantic import ValidationError

    from rrqctl.model import Cable

    try:
        with open(path) as f:
            data = json.load(f)
        return Cable.model_validate(data.get("cable", data))
    except (OSError, ValueError, ValidationError) as e:
        raise ConfigError(f"{path}: not a cable record: {e}") from None


def _name_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="the cable (its interface name)")


def _ifupdown_state_arg(p: argparse.ArgumentParser) -> None:
    from rrqctl.supervise.check import DEFAULT_IFUPDOWN_STATE

    p.add_argument(
        "--ifupdown-state",
        metavar="DIR",
        default=DEFAULT_IFUPDOWN_STATE,
        help=f"where ifupdown records what is up (default {DEFAULT_IFUPDOWN_STATE})",
    )


def _up_down_args(p: argparse.ArgumentParser) -> None:
    _name_arg(p)
    _ifupdown_state_arg(p)


def _run_args(p: argparse.ArgumentParser) -> None:
    _name_arg(p)
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


# ---- check -----------------------------------------------------------------------------


def check(args: argparse.Namespace) -> int:
    from rrqctl.supervise.check import Checker, check_lock, should_be_up

    if not args.dry_run:
        need_root("check", "it repairs cables (--dry-run only reports)")
    run = paths(args)
    lock = contextlib.nullcontext() if args.dry_run else check_lock(run, args.lock_wait)
    with lock:  # (a dry run writes nothing, not even the lock)
        cfg = load(args)
        state = args.ifupdown_state
        names = args.names or should_be_up(cfg, run, state)
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


def _check_args(p: argparse.ArgumentParser) -> None:
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
    _ifupdown_state_arg(p)
    p.add_argument(
        "--lock-wait",
        metavar="SECONDS",
        type=float,
        default=20.0,
        help="how long to wait for another check to finish (default 20)",
    )


# ---- install ---------------------------------------------------------------------------


def install_cmd(args: argparse.Namespace) -> int:
    from rrqctl.system import install

    rrqctl = args.rrqctl or install.this_rrqctl()
    if args.uninstall:
        n = install.uninstall(args.root, rrqctl, args.schedule, print)
        print(f"removed {n} files and directories" if n else "nothing to remove")
        return 0
    n = install.install(args.root, rrqctl, args.schedule, args.force, print)
    print(f"installed ({n} changes)" if n else "already installed: nothing to do")
    return 0


def _install_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", help="install under this directory (default /)")
    p.add_argument("--rrqctl", help="the rrqctl the units and cron call (default: this one)")
    p.add_argument("--schedule", default="* * * * *", help="when cron runs `rrqctl check`")
    p.add_argument("--force", action="store_true", help="replace files that differ")
    p.add_argument("--uninstall", action="store_true", help="remove what install wrote")


# ---- render -------------------------------------------------------------------------


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


def _render_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "what",
        choices=("networkd", "unit", "interfaces", "cron"),
        help="networkd: .netdev/.network for a cable; unit: rrqnet@.service with this "
        "cable's drop-in; interfaces: a stanza; cron: /etc/cron.d/rrqnet",
    )
    p.add_argument("name", nargs="?", help="the cable")
    p.add_argument("--dir", help="write the networkd files into this directory")
    p.add_argument("--schedule", default="* * * * *", help="cron schedule (default: every minute)")


# ---- genkey, demo ----------------------------------------------------------------------


def genkey(args: argparse.Namespace) -> int:
    from rrqctl.engine.crypto import generate_keyfile

    try:
        generate_keyfile(args.path, args.size)
    except ValueError as e:  # (too short: every cable would refuse it)
        raise UsageError(f"--size {args.size}: {e}") from None
    except FileExistsError:
        raise ConfigError(f"{args.path} exists: refusing to overwrite a key file") from None
    except OSError as e:
        raise ConfigError(f"{args.path}: {e.strerror}") from None
    print(f"wrote {args.size} random bytes to {args.path} (mode 0600)")
    print("copy it to every end of the cable")
    return 0


def _genkey_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the key file to write (must not exist)")
    p.add_argument(
        "--size", type=int, default=64, help="bytes of key material (default 64, at least 32)"
    )


def demo(args: argparse.Namespace) -> int:
    from rrqctl.demo import run_demo

    return run_demo()


def _no_args(p: argparse.ArgumentParser) -> None:
    pass


COMMANDS: dict[str, Command] = {
    "plan": (plan, "print what `up` would do on this host now (a dry run)", _name_arg, True),
    "up": (
        up,
        "bring a cable up: tap, addresses, bridge, engine, DHCP; undone on failure",
        _up_down_args,
        True,
    ),
    "down": (
        down,
        "undo what `up` made for a cable; `check` leaves it down until `up`",
        _up_down_args,
        True,
    ),
    "run": (
        run,
        "run a cable's engine in the foreground (what rrqnet@.service runs)",
        _run_args,
        True,
    ),
    "show": (show, "show the declared cables and where each value came from", _show_args, True),
    "status": (status, "show running cables: remotes, counters, MACs, drops", _status_args, True),
    "hook": (
        hook,
        "the ifupdown hook (reads IFACE, PHASE and IF_RRQNET_* from the environment)",
        _no_args,
        True,
    ),
    "check": (
        check,
        "find what died (engine, tap, bridge, dhclient) and repair it; for cron",
        _check_args,
        True,
    ),
    "render": (
        render_cmd,
        "print networkd files, a unit with overrides, a stanza or the cron file",
        _render_args,
        True,
    ),
    "install": (
        install_cmd,
        "put the ifupdown hooks, systemd units, cron file and /etc/rrqnet in place",
        _install_args,
        False,
    ),
    "genkey": (genkey, "write a new random key file for sealed channels", _genkey_args, False),
    "demo": (
        demo,
        "bring up a sealed cable between two network namespaces, ping, show, clean up",
        _no_args,
        False,
    ),
}

__all__ = ["COMMANDS", "exit_code"]
