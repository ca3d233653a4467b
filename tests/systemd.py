"""A real systemd (PID 1) in private namespaces on a throw-away root, for tests.

    with booted(etc_files, lab) as sd:
        sd.systemctl("start", "rrqnet@mynet0")
        sd.run("ip", "link")          # inside its mount, pid and network namespaces

The repo is bound read-only at its own path, so units can run the venv's rrqctl.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from tests.netlab import BIN, Lab, sh

REPO = Path(__file__).parents[1]
BOOT = REPO / "tests" / "data" / "sdboot.sh"
IDLE = "[Unit]\nDescription=nothing (test boot)\nDefaultDependencies=no\n"


def _child(pid: int) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        for t in os.listdir(f"/proc/{pid}/task"):
            kids = Path(f"/proc/{pid}/task/{t}/children").read_text().split()
            if kids:
                return int(kids[0])
    return None


class Systemd:
    def __init__(self, pid: int, root: Path) -> None:
        self.pid = pid
        self.root = root  # scratch dir (console.log)

    def run(
        self, *argv: str, check: bool = False, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        ns = [
            "nsenter",
            f"--target={self.pid}",
            "--mount",
            "--pid",
            "--net",
            "--cgroup",
            "--uts",
            "--ipc",
        ]
        r = subprocess.run([*ns, *argv], capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{' '.join(argv)}: rc={r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def systemctl(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return self.run("systemctl", "--no-pager", *args, check=check)

    def show(self, unit: str, *props: str) -> dict[str, str]:
        out = self.systemctl("show", "-p", ",".join(props), unit).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def journal(self, unit: str) -> str:
        return self.run("journalctl", "--no-pager", "-o", "cat", "-u", unit).stdout

    def rrqctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "rrqctl"), *args)

    def write(self, path: str, text: str) -> None:
        r = subprocess.run(
            [
                "nsenter",
                f"--target={self.pid}",
                "--mount",
                "sh",
                "-c",
                f'mkdir -p "$(dirname {path})" && cat > {path}',
            ],
            input=text,
            text=True,
            capture_output=True,
        )
        assert r.returncode == 0, r.stderr

    def link_to(self, lab: Lab, ns: str, addr_here: str, addr_there: str) -> None:
        """A veth from lab host ns into systemd's network namespace ('up0' inside), addressed."""
        sh(["ip", "-n", ns, "link", "add", "tosd", "type", "veth", "peer", "name", "up0"])
        sh(["ip", "-n", ns, "link", "set", "up0", "netns", str(self.pid)])
        lab.ip(ns, "addr", "add", addr_there, "dev", "tosd")
        lab.ip(ns, "link", "set", "tosd", "up")
        self.run("ip", "addr", "add", addr_here, "dev", "up0", check=True)
        self.run("ip", "link", "set", "up0", "up", check=True)
        self.run("ip", "link", "set", "lo", "up", check=True)


def units_dir() -> dict[str, str]:
    return {f"etc/systemd/system/{p.name}": p.read_text() for p in (REPO / "units").iterdir()}


def unit_override(extra: str = "") -> dict[str, str]:
    """The shipped unit, made to run this checkout's rrqctl (and any extra settings)."""
    # The checkout may live where the unit's PrivateTmp= or ProtectHome= hide it: bind it in.
    # Under a home directory that takes ProtectHome=tmpfs (an empty tmpfs the bind can go
    # into) instead of the shipped =yes (inaccessible, the path cannot be reached).
    home = any(REPO.is_relative_to(h) for h in ("/home", "/root", "/run/user"))
    return {
        "etc/systemd/system/rrqnet@.service.d/test.conf": (
            f"[Service]\nExecStart=\nExecStart={BIN}/rrqctl run %i\n"
            f"BindReadOnlyPaths={REPO}\n" + ("ProtectHome=tmpfs\n" if home else "") + extra
        )
    }


@contextlib.contextmanager
def booted(
    files: Mapping[str, str], timeout: float = 30.0, lower: str | None = None, unified: bool = False
) -> Iterator[Systemd]:
    """Boot with files (relative paths under the root, e.g. 'etc/network/interfaces'); those
    that start with #! are made executable."""
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="rqsd-", dir="/tmp"))
    share = scratch / "share"
    _write_tree(share, {**units_dir(), "etc/systemd/system/sd-idle.target": IDLE, **files})
    cgroup = f"rqsd-{secrets.token_hex(3)}"
    env = {
        **os.environ,
        "SDROOT": str(scratch),
        "SDSHARE": str(share),
        "SDCGROUP": cgroup,
        "SDBIND": str(REPO),
    }
    if lower is not None:  # an overlay of another root (a Debian 13 one, for the package tests)
        env |= {"SDOVERLAY": "1", "SDLOWER": lower}
    if unified:
        env["SDUNIFIED"] = "1"
    launcher = subprocess.Popen(
        [str(BOOT)],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sd: Systemd | None = None
    try:
        t0 = time.monotonic()
        pid = None
        while pid is None and time.monotonic() - t0 < timeout:
            time.sleep(0.05)
            pid = _child(launcher.pid)
        assert pid is not None, "systemd did not start"
        sd = Systemd(pid, scratch)
        while time.monotonic() - t0 < timeout:
            state = sd.systemctl("is-system-running").stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"systemd not running after {timeout}s: {state}")
        yield sd
    finally:
        if sd is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(sd.pid, signal.SIGRTMIN + 4)  # poweroff
        try:
            launcher.wait(timeout=20)
        except subprocess.TimeoutExpired:
            if sd is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(sd.pid, signal.SIGKILL)
            launcher.wait()
        _remove_cgroups(cgroup)
        shutil.rmtree(scratch, ignore_errors=True)


def _write_tree(top: Path, files: Mapping[str, str]) -> None:
    for rel, text in files.items():
        p = top / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        if "/keys/" in rel:
            p.chmod(0o600)
        elif text.startswith("#!"):
            p.chmod(0o755)


def _remove_cgroups(name: str) -> None:
    for h in ("systemd", "unified"):
        base = Path(f"/sys/fs/cgroup/{h}/{name}")
        if not base.exists():
            continue
        for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            with contextlib.suppress(OSError):
                d.rmdir()
        for _ in range(50):
            try:
                base.rmdir()
                break
            except OSError:
                time.sleep(0.1)
