"""Real ifup/ifdown for a lab host, never touching the machine's /etc/network or /run.

Each call runs in the host's network namespace and a private mount namespace where
/etc/network is the host's own directory (the repo's hook bind-mounted as each
if-*.d/rrqnet), /run is private (so RUN = /run/rrqnet is too), and rrqctl is on
ifupdown's fixed PATH through /usr/local/sbin.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.netlab import BIN, Lab, in_private_mounts

HOOK = Path(__file__).parents[1] / "hooks" / "rrqnet"
PHASE_DIRS = ("if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d")


class IfupdownHost:
    """installed: the hooks as `rrqctl install --root` writes them for the venv's rrqctl, and
    no rrqctl on ifupdown's PATH (an installation from PyPI); else the repo's hook, and rrqctl
    on the PATH (as the Debian package has it)."""

    def __init__(self, lab: Lab, ns: str, interfaces: str, *, installed: bool = False) -> None:
        self.lab, self.ns, self.installed = lab, ns, installed
        self.dir = lab.dir / f"ifupdown-{ns.rsplit('-', 1)[1]}"
        (self.dir / "state").mkdir(parents=True)
        (self.dir / "runroot" / "rrqnet").mkdir(parents=True)
        (self.dir / "bin").mkdir()
        (self.dir / "no-confd").mkdir()  # (empty: no cables there)
        (self.dir / "no-networkd").mkdir()
        if installed:
            root = self.dir / "root"
            subprocess.run(
                [f"{BIN}/rrqctl", "install", "--root", str(root)], check=True, capture_output=True
            )
            (self.dir / "etc-network").symlink_to(root / "etc" / "network")
        else:
            etc = self.dir / "etc-network"
            for d in PHASE_DIRS:
                (etc / d).mkdir(parents=True, exist_ok=True)
                (etc / d / "rrqnet").touch()  # mount points for the repo's hook
            wrapper = self.dir / "bin" / "rrqctl"
            wrapper.write_text(f'#!/bin/sh\nexec {BIN}/rrqctl "$@"\n')
            wrapper.chmod(0o755)
        self.write(interfaces)

    @property
    def interfaces(self) -> Path:
        return self.dir / "etc-network" / "interfaces"

    @property
    def run(self) -> Path:
        """The host's /run/rrqnet, seen from outside."""
        return self.dir / "runroot" / "rrqnet"

    def write(self, text: str) -> None:
        self.interfaces.write_text(text)

    def _call(self, cmd: str, *args: str) -> subprocess.CompletedProcess[str]:
        """cmd "$@" as this host sees things: its /etc/network, its /run, rrqctl on PATH."""
        d = self.dir
        binds = "".join(f"mount --bind {HOOK} /etc/network/{h}/rrqnet; " for h in PHASE_DIRS)
        if self.installed:
            binds = ""
        script = (
            f"set -e; mount --bind {d}/etc-network/ /etc/network; {binds}"
            f"mount --bind {d}/bin /usr/local/sbin; mount --bind {d}/runroot /run; "
            f'exec {cmd} "$@"'
        )
        return in_private_mounts(self.ns, script, cmd.partition(" ")[0], *args, timeout=90)

    def _ifupdown(self, cmd: str, *args: str) -> subprocess.CompletedProcess[str]:
        return self._call(f"{cmd} --state-dir {self.dir}/state", *args)

    def ifup(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._ifupdown("ifup", *args)

    def ifdown(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._ifupdown("ifdown", *args)

    def ifquery(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self._ifupdown("ifquery", *args)

    def rrqctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`rrqctl ARGS` as the admin of this host runs it (its interfaces file, its /run)."""
        return self._call(f"{BIN}/rrqctl", *args, f"--ifupdown-state={self.dir}/state")

    def check(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`rrqctl check` (cron's command) on this host: its ifupdown state, no conf.d."""
        d = self.dir
        return self._call(
            f"{BIN}/rrqctl check --ifupdown-state {d}/state --confd {d}/no-confd "
            f"--networkd-dir {d}/no-networkd",
            *args,
        )

    def state(self) -> str:
        f = self.dir / "state" / "ifstate"
        return f.read_text() if f.exists() else ""

    def leftovers(self, name: str = "mynet0") -> dict[str, object]:
        files = sorted(p.name for p in self.run.iterdir() if p.name != ".lock")
        return {
            "link": name in self.lab.links(self.ns),
            "pids": self.lab.pids(self.ns),
            "files": files,
        }
