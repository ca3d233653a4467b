"""A Debian 13 (trixie) root to build and try the package in: `python -m tests.packaging.trixie build`.

The base root is made once with debootstrap (build/trixie/base, reused while its package list
is unchanged). Everything else happens in overlays of it, each in a private mount namespace:
the machine's own filesystem, package database and services are never touched.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).parents[2]
BUILD = REPO / "build" / "trixie"
MIRROR = os.environ.get("RRQCTL_MIRROR", "http://deb.debian.org/debian")
# In the base: what the install tests use (the package itself brings its own dependencies)
BASE_PACKAGES = [
    "systemd",
    "dbus",
    "ifupdown",
    "iproute2",
    "iputils-ping",
    "man-db",
    "procps",
    "cron",
]
BUILD_PACKAGES = [
    "build-essential",
    "debhelper",
    "dh-python",
    "pybuild-plugin-pyproject",
    "python3-all-dev",
    "libssl-dev",
    "python3-setuptools",
    "python3-cryptography",
    "python3-hypothesis",
    "python3-jinja2",
    "python3-pydantic",
    "python3-pyroute2",
    "python3-pytest",
    "python3-systemd",
    "lintian",
]
ARCH = subprocess.run(
    ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
).stdout.strip()  # (the package is Architecture: any: it carries the C datapath)
ENV = {
    "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    "DEBIAN_FRONTEND": "noninteractive",
    "LC_ALL": "C.UTF-8",
    "HOME": "/root",
}


def say(line: str) -> None:
    print(f"trixie: {line}", flush=True)


def _stamp() -> str:
    return hashlib.sha256(" ".join([MIRROR, *BASE_PACKAGES]).encode()).hexdigest()[:16]


def base() -> Path:
    """The debootstrapped trixie root (made if missing or out of date)."""
    root = BUILD / "base"
    stamp = BUILD / "base.stamp"
    if stamp.exists() and stamp.read_text() == _stamp() and (root / "usr/bin/apt-get").exists():
        return root
    if root.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)
    root.mkdir(parents=True)
    say(f"debootstrap trixie into {root} (about a minute)")
    subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "debootstrap",
            "--variant=minbase",
            "trixie",
            str(root),
            MIRROR,
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    (root / "usr/sbin/policy-rc.d").write_text(
        "#!/bin/sh\n# no services start in this root\nexit 101\n"
    )
    (root / "usr/sbin/policy-rc.d").chmod(0o755)
    chroot(root, ["apt-get", "update", "-qq"])
    say("installing " + " ".join(BASE_PACKAGES))
    chroot(
        root,
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *BASE_PACKAGES],
        quiet=True,
    )
    chroot(root, ["apt-get", "clean"])
    stamp.write_text(_stamp())
    return root


def _script(
    root: Path, upper: Path | None, lower: Sequence[Path] = (), run: Path | None = None
) -> str:
    """Shell that makes the chroot's filesystem in a private mount namespace."""
    lines = ["set -e"]
    target = root
    if upper is not None:
        merged, work = upper.parent / "merged", upper.parent / "work"
        lowers = ":".join(str(p) for p in [*lower, root])
        lines.append(f"mkdir -p {upper} {work} {merged}")
        lines.append(
            f"mount -t overlay ovl -o lowerdir={lowers},upperdir={upper},workdir={work} {merged}"
        )
        target = merged
    lines += [
        f"mount -t proc proc {target}/proc",
        f"mount --rbind /sys {target}/sys",
        f"mount --rbind /dev {target}/dev",
        f"mount --bind {run} {target}/run"
        if run
        else f"mount -t tmpfs -o mode=755 run {target}/run",
        f"mount -t tmpfs -o mode=1777 tmp {target}/tmp",
        f'exec chroot {target} "$@"',
    ]
    return "; ".join(lines)


def chroot(
    root: Path,
    argv: Sequence[str],
    *,
    upper: Path | None = None,
    lower: Sequence[Path] = (),
    quiet: bool = False,
    check: bool = True,
    netns: str | None = None,
    pid: bool = True,
    run: Path | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv in root (or an overlay of it: writes go to upper) with its own /proc, /tmp and
    /run (a tmpfs, or the directory run, kept from one call to the next)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    ns = ["unshare", "--mount", "--propagation", "private"] + (["--pid", "--fork"] if pid else [])
    r = subprocess.run(
        [
            *prefix,
            *ns,
            "sh",
            "-c",
            _script(root, upper, lower, run),
            "sh",
            "env",
            "-i",
            *(f"{k}={v}" for k, v in ENV.items()),
            *argv,
        ],
        capture_output=True,
        text=True,
        input=stdin,
    )
    if check and r.returncode != 0:
        raise RuntimeError(
            f"in the trixie root: {' '.join(argv)} exited {r.returncode}\n{r.stdout[-3000:]}"
            f"{r.stderr[-3000:]}"
        )
    if not quiet and r.stdout.strip():
        for line in r.stdout.strip().splitlines()[-5:]:
            say(f"  {line}")
    return r


def source_tree(dest: Path) -> None:
    """The repository's committed files (what a clean checkout has)."""
    dest.mkdir(parents=True, exist_ok=True)
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True
    ).stdout
    tar = subprocess.run(
        ["tar", "-C", str(REPO), "--null", "-T", "-", "-cf", "-"],
        input=files,
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-C", str(dest), "-xf", "-"], input=tar, check=True)


def build() -> tuple[Path, str]:
    """Build the package in an overlay of the base; returns (the .deb, lintian's report)."""
    root = base()
    work = BUILD / "build-overlay"
    if work.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=True)
    upper = work / "upper"
    src = upper / "build" / "rrqctl"
    source_tree(src)
    say("installing build dependencies and lintian")
    chroot(
        root,
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *BUILD_PACKAGES],
        upper=upper,
        quiet=True,
    )
    say("dpkg-buildpackage -us -uc -b (runs the unit tests)")
    chroot(
        root,
        ["sh", "-c", "cd /build/rrqctl && dpkg-buildpackage -us -uc -b"],
        upper=upper,
        quiet=True,
    )
    debs = sorted((upper / "build").glob(f"rrqctl_*_{ARCH}.deb"))
    if not debs:
        raise RuntimeError("dpkg-buildpackage made no .deb")
    say("lintian --pedantic --info")
    report = chroot(
        root,
        [
            "lintian",
            "--pedantic",
            "--info",
            "--display-info",
            "--color=never",
            f"/build/{debs[-1].name}",
            f"/build/{debs[-1].name.replace('.deb', '.changes')}",
        ],
        upper=upper,
        quiet=True,
        check=False,
    ).stdout
    out = REPO / "build" / debs[-1].name
    shutil.copy2(debs[-1], out)
    (REPO / "build" / "lintian.txt").write_text(report)
    subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=True)
    return out, report


def lintian_problems(report: str) -> list[str]:
    return [line for line in report.splitlines() if re.match(r"^[EW]: ", line)]


def main(argv: list[str]) -> int:
    if argv[:1] != ["build"]:
        print("usage: python -m tests.packaging.trixie build", file=sys.stderr)
        return 2
    deb, report = build()
    print(report, end="")
    problems = lintian_problems(report)
    print(f"\n{deb}: lintian: {len(problems)} errors or warnings")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
