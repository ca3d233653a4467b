"""The Debian package, built and used in a Debian 13 root (tests run in file order:
build, install, use, purge, then dpkg -i under a live systemd)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.netlab import lab, wait_for
from tests.packaging import trixie
from tests.systemd import booted

KEY = bytes(range(64))
STANZA = """auto mynet0
iface mynet0 inet static
    address 10.88.0.1/24
    rrqnet_port 3636
    rrqnet_remote 10.77.0.2:3636=/etc/rrqnet/keys/mynet0.key
    rrqnet_log -v /var/log/mynet0.log
"""


@pytest.fixture(scope="module")
def package() -> tuple[Path, str]:
    t0 = time.monotonic()
    deb, report = trixie.build()
    print(f"\nbuilt {deb.name} in {time.monotonic() - t0:.0f} s")
    return deb, report


@pytest.fixture(scope="module")
def installed(package: tuple[Path, str]) -> Iterator[tuple[Path, Path, str]]:
    """An overlay of the base root (upper on disk) with `apt install ./rrqctl_*.deb` done."""
    deb, _ = package
    work = trixie.BUILD / "install-overlay"
    if work.exists():
        subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=True)
    upper = work / "upper"
    (upper / "root").mkdir(parents=True)
    shutil.copy2(deb, upper / "root" / deb.name)
    (work / "run").mkdir()
    base = trixie.base()
    trixie.chroot(base, ["apt-get", "update", "-qq"], upper=upper)
    out = trixie.chroot(
        base, ["apt-get", "install", "-y", f"./root/{deb.name}"], upper=upper, quiet=True
    ).stdout
    yield base, upper, out
    subprocess.run(["rm", "-rf", "--one-file-system", str(work)], check=False)


def test_lintian_finds_no_errors_or_warnings(package: tuple[Path, str]) -> None:
    _, report = package
    assert trixie.lintian_problems(report) == [], report
    tags = sorted(set(re.findall(r"^[IPX]: \S+ (\S+)", report, re.M)))
    print(f"lintian informational and pedantic tags: {tags or 'none'}")


def test_apt_install_pulls_only_debian_packages(installed: tuple[Path, Path, str]) -> None:
    _, _, out = installed
    gets = [g for g in re.findall(r"^Get:\d+ (\S+)", out, re.M) if not g.startswith("/root/")]
    assert gets and all(g.startswith(trixie.MIRROR) for g in gets), gets
    assert "python3-pydantic" in out and "python3-pyroute2" in out
    assert re.search(r"Setting up rrqctl \(0\.1\.0\)", out)


def test_files_commands_and_man_pages_are_in_place(installed: tuple[Path, Path, str]) -> None:
    base, upper, _ = installed

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return trixie.chroot(base, list(argv), upper=upper, quiet=True)

    listing = run(
        "sh",
        "-c",
        "ls -l /etc/cron.d/rrqnet /etc/network/if-*.d/rrqnet; stat -c %a /etc/rrqnet/keys",
    ).stdout
    assert (
        listing.count("-rwxr-xr-x") == 4
        and "-rw-r--r--" in listing
        and listing.strip().endswith("700")
    )
    assert "usage: rrqnet" in run("rrqnet", "--help").stdout
    assert run("rrqctl", "--version").stdout.startswith("rrqctl ")
    page = run("sh", "-c", "MANWIDTH=80 man rrqnet 2>&1").stdout
    assert "rrqnet - packet tunnelling over UDP" in page
    # the templates and units shipped in the Python package (rrqctl/_shipped) are found
    cron = run("cat", "/etc/cron.d/rrqnet").stdout
    assert run("rrqctl", "render", "cron").stdout == cron
    make = "mkdir -p /tmp/cd && printf 'TAP=x0\\nPORT=4000\\n' > /tmp/cd/x0.conf"
    unit = run("sh", "-c", f"{make} && rrqctl render unit x0 --confd /tmp/cd").stdout
    assert "ExecStart=/usr/bin/rrqctl run %i" in unit
    verify = run(
        "systemd-analyze", "verify", "--man=no", "rrqnet@mynet0.service", "rrqnet-check.timer"
    )
    assert verify.stderr == ""


def test_ifup_brings_a_cable_up_to_a_peer_and_ifdown_takes_it_down(
    installed: tuple[Path, Path, str],
) -> None:
    base, upper, _ = installed
    run_dir = upper.parent / "run"
    with lab() as lb:
        a, b = lb.host("a"), lb.host("b")
        lb.link(a, b, ["10.77.0.1/24"], ["10.77.0.2/24"])
        lb.tap(b, "tap0", ["10.88.0.2/24"])
        key = Path(lb.keyfile("k"))
        key.write_bytes(KEY)
        lb.rrqnet(b, f"-t tap0 3636 10.77.0.1:3636={key}", "peer")
        trixie.chroot(
            base,
            [
                "sh",
                "-c",
                "cat > /etc/rrqnet/keys/mynet0.key; chmod 600 /etc/rrqnet/keys/mynet0.key",
            ],
            upper=upper,
            stdin=KEY.decode("latin-1"),
        )
        trixie.chroot(
            base, ["sh", "-c", "cat >> /etc/network/interfaces"], upper=upper, stdin=STANZA
        )

        def ifupdown(cmd: str, name: str = "mynet0") -> subprocess.CompletedProcess[str]:
            return trixie.chroot(
                base,
                [cmd, "--state-dir", "/var/lib/ifupdown-test", name],
                upper=upper,
                netns=a,
                pid=False,
                run=run_dir,
                check=False,
            )

        r = ifupdown("ifup")
        assert r.returncode == 0, r.stdout + r.stderr
        assert lb.ping(a, "10.88.0.2")
        status = trixie.chroot(
            base, ["rrqctl", "status", "mynet0"], upper=upper, netns=a, pid=False, run=run_dir
        ).stdout
        assert "  datapath: C (rrqctl/engine/fastpath.c)" in status, status  # the package's
        assert (upper / "var/log/mynet0.log").exists()
        r = ifupdown("ifdown")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "mynet0" not in lb.links(a) and lb.pids(a) == []
        assert sorted(p.name for p in (run_dir / "rrqnet").iterdir() if p.name != ".lock") == []
        # a typo in rrqnet_port itself: the hook still calls rrqctl, which names the line
        typo = "iface typo0 inet manual\n    rrqnet_prot 3637\n"
        trixie.chroot(base, ["sh", "-c", "cat >> /etc/network/interfaces"], upper=upper, stdin=typo)
        r = ifupdown("ifup", "typo0")
        assert r.returncode != 0
        said = r"rrqctl: /etc/network/interfaces:\d+: unknown option rrqnet_prot; did you mean"
        assert re.search(said, r.stderr), r.stderr
        assert "typo0" not in lb.links(a)


def test_purge_leaves_nothing_but_what_the_admin_made(installed: tuple[Path, Path, str]) -> None:
    base, upper, _ = installed
    trixie.chroot(base, ["dpkg", "--purge", "rrqctl"], upper=upper, quiet=True)
    ours = re.compile(r"rrq|/etc/rrqnet|/etc/cron\.d/rrqnet|if-[a-z-]+\.d/rrqnet")
    # man-db's cat page cache (from `man rrqnet` above) is man-db's to expire, not the package's
    paths = ("/" + str(p.relative_to(upper)) for p in upper.rglob("*"))
    left = sorted(p for p in paths if ours.search(p) and not p.startswith("/var/cache/man/"))
    # the admin's key (and the directory it is in) and the log the admin asked for stay
    assert left == [
        "/etc/rrqnet",
        "/etc/rrqnet/keys",
        "/etc/rrqnet/keys/mynet0.key",
        f"/root/rrqctl_0.1.0_{trixie.ARCH}.deb",
    ], left


def test_systemd_starts_the_cable_after_dpkg_i(
    package: tuple[Path, str], installed: tuple[Path, Path, str]
) -> None:
    """On an overlay of the root above (dependencies installed, rrqctl purged) with a live
    systemd 257: dpkg -i, then systemctl start rrqnet@mynet0 goes active."""
    deb, _ = package
    base, upper, _ = installed
    with booted(files={}, lower=f"{upper}:{base}", unified=True, timeout=60) as sd, lab() as lb:
        peer = lb.host("peer")
        sd.link_to(lb, peer, "10.77.0.2/24", "10.77.0.1/24")
        sd.write("/etc/network/interfaces", STANZA)
        sd.run(
            "chmod", "600", "/etc/rrqnet/keys/mynet0.key", check=True
        )  # the admin's, kept by the purge
        r = subprocess.run(
            ["nsenter", f"--target={sd.pid}", "--mount", "sh", "-c", f"cat > /root/{deb.name}"],
            input=deb.read_bytes(),
            capture_output=True,
            check=False,
        )
        assert r.returncode == 0, r.stderr
        r = sd.run("dpkg", "-i", f"/root/{deb.name}")
        assert r.returncode == 0, r.stdout + r.stderr
        # the stanza logs to /var/log/mynet0.log: the hardened unit may not write there...
        assert sd.systemctl("start", "rrqnet@mynet0.service").returncode != 0
        said = sd.journal("rrqnet@mynet0.service")
        assert "interfaces:6: cannot open log file /var/log/mynet0.log: Read-only" in said
        assert "mynet0" not in sd.run("ip", "-br", "link").stdout  # nothing was made
        # ...until the drop-in `rrqctl render unit` prints is in place
        shown = sd.run("rrqctl", "render", "unit", "mynet0", check=True).stdout
        dropin = "/etc/systemd/system/rrqnet@mynet0.service.d/rrqctl.conf"
        sd.run("mkdir", "-p", os.path.dirname(dropin), check=True)
        sd.write(dropin, shown.split(f"# {dropin}\n", 1)[1])
        sd.systemctl("daemon-reload", check=True)
        r = sd.systemctl("start", "rrqnet@mynet0.service")
        assert r.returncode == 0, r.stderr + sd.journal("rrqnet@mynet0.service")
        props = sd.show("rrqnet@mynet0.service", "ActiveState", "StatusText")
        assert props["ActiveState"] == "active" and props["StatusText"].startswith("remotes ")
        assert sd.run("ip", "link", "show", "mynet0").returncode == 0
        log = sd.run("cat", "/var/log/mynet0.log", check=True).stdout
        assert "[#] ip tuntap add dev mynet0 mode tap" in log and "mynet0: ready" in log
        # enabled by the package (this test boot masks timers.target, so it does not run here)
        assert sd.systemctl("is-enabled", "rrqnet-check.timer").stdout.strip() == "enabled"
        # systemd 257's fd store: the tap outlives a crash, and goes with a stop in the delay
        unit = "rrqnet@mynet0.service"
        assert sd.show(unit, "NFileDescriptorStore")["NFileDescriptorStore"] == "1"
        sd.write(os.path.dirname(dropin) + "/delay.conf", "[Service]\nRestartSec=30\n")
        sd.systemctl("daemon-reload", check=True)
        sd.systemctl("kill", "-s", "KILL", unit, check=True)
        wait_for(lambda: sd.show(unit, "SubState")["SubState"] == "auto-restart", 10, "the delay")
        assert sd.run("ip", "link", "show", "mynet0").returncode == 0
        assert sd.systemctl("stop", unit).returncode == 0
        wait_for(lambda: "mynet0" not in sd.run("ip", "-br", "link").stdout, 10, "the tap to go")
