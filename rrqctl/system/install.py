"""`rrqctl install --root DIR`: hooks, units, cron file and /etc/rrqnet in place, for hosts
that installed rrqctl from PyPI (the Debian package ships the same files itself)."""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass

from rrqctl import render
from rrqctl.errors import ActionError

HOOK_DIRS = ("if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d")


@dataclass(frozen=True)
class Item:
    path: str  # relative to the root
    text: str | None  # None: a directory
    mode: int


def items(rrqctl: str, schedule: str) -> list[Item]:
    hook = render.data_file("hooks", "rrqnet").replace(
        "RRQCTL=/usr/bin/rrqctl", f"RRQCTL={shlex.quote(rrqctl)}"
    )
    unit = render.unit_text("rrqnet@.service", rrqctl)
    out = [Item(f"etc/network/{d}/rrqnet", hook, 0o755) for d in HOOK_DIRS]
    out += [
        Item("etc/systemd/system/rrqnet@.service", unit, 0o644),
        Item("etc/systemd/system/rrqnet.target", render.data_file("units", "rrqnet.target"), 0o644),
        Item(
            "etc/systemd/system/rrqnet-check.service",
            render.unit_text("rrqnet-check.service", rrqctl),
            0o644,
        ),
        Item(
            "etc/systemd/system/rrqnet-check.timer",
            render.data_file("units", "rrqnet-check.timer"),
            0o644,
        ),
        Item("etc/cron.d/rrqnet", render.cron_file(schedule, rrqctl), 0o644),
        Item("etc/rrqnet", None, 0o755),
        Item("etc/rrqnet/conf.d", None, 0o755),
        Item("etc/rrqnet/keys", None, 0o700),
    ]
    return out


def install(root: str, rrqctl: str, schedule: str, force: bool, say: Callable[[str], None]) -> int:
    """Write every item; refuse to replace a file that differs (unless force). Returns changes."""
    plan = items(rrqctl, schedule)
    clashes = [i.path for i in plan if i.text is not None and _differs(root, i) and not force]
    if clashes:
        raise ActionError(
            f"{os.path.join(root, clashes[0])} exists and differs: not replacing it "
            "(--force replaces)"
        )
    changed = 0
    for i in plan:
        path = os.path.join(root, i.path)
        if i.text is None:
            if not os.path.isdir(path):
                say(f"[#] install -d -m {i.mode:o} {path}")
                os.makedirs(path, exist_ok=True)
                os.chmod(path, i.mode)
                changed += 1
            continue
        if _differs(root, i) or not os.path.exists(path):
            say(f"[#] install -m {i.mode:o} {path}")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path + ".new", "w") as f:
                f.write(i.text)
            os.chmod(path + ".new", i.mode)
            os.replace(path + ".new", path)
            changed += 1
    return changed


def uninstall(root: str, rrqctl: str, schedule: str, say: Callable[[str], None]) -> int:
    """Remove the files install wrote, if unchanged; directories only if empty."""
    removed = 0
    for i in reversed(items(rrqctl, schedule)):
        path = os.path.join(root, i.path)
        if i.text is None:
            if os.path.isdir(path) and not os.listdir(path):
                say(f"[#] rmdir {path}")
                os.rmdir(path)
                removed += 1
        elif os.path.isfile(path):
            if _differs(root, i):
                say(f"    keeping {path}: it was changed")
                continue
            say(f"[#] rm {path}")
            os.unlink(path)
            removed += 1
    return removed


def _differs(root: str, i: Item) -> bool:
    path = os.path.join(root, i.path)
    if not os.path.isfile(path) or i.text is None:
        return False
    with open(path) as f:
        return f.read() != i.text


def this_rrqctl() -> str:
    """The rrqctl command this process runs as: a virtualenv's, pipx's, /usr/bin's. Hooks,
    units and cron run with their own PATH, so they are given it by its full path."""
    argv0 = sys.argv[0]
    if os.path.basename(argv0) == "rrqctl" and os.access(argv0, os.X_OK):
        return os.path.abspath(argv0)
    beside = os.path.join(os.path.dirname(sys.executable), "rrqctl")  # python -m rrqctl
    if os.access(beside, os.X_OK):
        return beside
    found = shutil.which("rrqctl")
    return os.path.abspath(found) if found else "/usr/bin/rrqctl"
