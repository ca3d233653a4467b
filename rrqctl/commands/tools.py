"""Commands for the host itself: install, genkey, demo."""

from __future__ import annotations

import argparse

from rrqctl.errors import RrqError, UsageError

MAX_KEYFILE = 65536  # bytes: a hash of them is the key; more buys nothing


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


def install_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--root", default="/", help="install under this directory (default /)")
    p.add_argument("--rrqctl", help="the rrqctl the units and cron call (default: this one)")
    p.add_argument("--schedule", default="* * * * *", help="when cron runs `rrqctl check`")
    p.add_argument("--force", action="store_true", help="replace files that differ")
    p.add_argument("--uninstall", action="store_true", help="remove what install wrote")


def genkey(args: argparse.Namespace) -> int:
    from rrqctl.engine.crypto import generate_keyfile

    if args.size > MAX_KEYFILE:
        raise UsageError(f"--size {args.size}: a key file of {MAX_KEYFILE} bytes at most will do")
    try:
        generate_keyfile(args.path, args.size)
    except ValueError as e:  # (too short: every cable would refuse it)
        raise UsageError(f"--size {args.size}: {e}") from None
    except FileExistsError:
        raise RrqError(f"{args.path} exists: refusing to overwrite a key file") from None
    except OSError as e:
        raise RrqError(f"{args.path}: {e.strerror}") from None
    print(f"wrote {args.size} random bytes to {args.path} (mode 0600)")
    print("copy it to every end of the cable")
    return 0


def genkey_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="the key file to write (must not exist)")
    p.add_argument(
        "--size", type=int, default=64, help="bytes of key material (default 64, at least 32)"
    )


def demo(args: argparse.Namespace) -> int:
    from rrqctl.demo import run_demo

    return run_demo()
