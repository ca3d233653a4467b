"""Mistakes a new admin makes, as the rrqctl command answers them: a FILE:LINE (or PATH:
reason) error with the exit code rrqctl(8) documents, never a traceback or a silent success.
Each runs the real command in a fresh interpreter on a configuration tree of its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.configtree import write_tree
from tests.netlab import NOT_FOR_NOBODY, nobody_can_run_rrqctl

CABLE = "iface mynet0 inet manual\n    rrqnet_port 3636\n"


def rrqctl(
    root: Path, *argv: str, interfaces: str = "interfaces"
) -> subprocess.CompletedProcess[str]:
    for d in ("conf.d", "network"):
        (root / d).mkdir(exist_ok=True)
    where = [
        f"--interfaces={root / interfaces}",
        f"--confd={root / 'conf.d'}",
        f"--networkd-dir={root / 'network'}",
        f"--run-dir={root / 'run'}",
    ]
    return subprocess.run(
        [sys.executable, "-m", "rrqctl", *argv, *where],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
    )


def said(r: subprocess.CompletedProcess[str]) -> tuple[int, str]:
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stderr


# ---- 3: read errors are not "no cables" -------------------------------------------------


def test_an_interfaces_path_that_is_a_directory_is_an_error_not_no_cables(tmp_path: Path) -> None:
    (tmp_path / "interfaces").mkdir()
    for argv in (
        ["plan", "mynet0"],
        ["up", "mynet0"],
        ["show", "mynet0"],
        ["render", "unit", "mynet0"],
    ):
        rc, err = said(rrqctl(tmp_path, *argv))
        assert (rc, err) == (
            3,
            f"rrqctl: {tmp_path}/interfaces: cannot read: Is a directory\n"
            "rrqctl: mynet0: not declared in what could be read\n",
        ), argv


def test_a_mistyped_interfaces_path_is_named(tmp_path: Path) -> None:
    rc, err = said(rrqctl(tmp_path, "show", "mynet0", interfaces="interfacse"))
    assert rc == 3
    assert err.startswith(
        f"rrqctl: {tmp_path}/interfacse: cannot read: No such file or directory\n"
    )
    rc, err = said(rrqctl(tmp_path, "show", interfaces="interfacse"))
    assert (rc, err) == (
        3,
        f"rrqctl: {tmp_path}/interfacse: cannot read: No such file or directory\n",
    )


def test_check_says_what_it_could_not_read_and_fails(tmp_path: Path) -> None:
    """cron must not go quiet: a file it cannot read leaves cables unchecked."""
    (tmp_path / "interfaces").mkdir()
    write_tree(tmp_path, {"state/ifstate": ""})
    r = rrqctl(tmp_path, "check", "--quiet", f"--ifupdown-state={tmp_path}/state")
    rc, err = said(r)
    assert rc == 1
    assert err == (
        f"rrqctl: {tmp_path}/interfaces: cannot read: Is a directory "
        "(cables declared there are not checked)\n"
    )


def test_an_unreadable_netdev_is_named_when_its_cable_is_asked_for(tmp_path: Path) -> None:
    write_tree(tmp_path, {"interfaces": "", "network/mynet0.netdev": "->/nonexistent/mynet0"})
    rc, err = said(rrqctl(tmp_path, "plan", "mynet0"))
    assert (rc, err) == (
        3,
        f"rrqctl: {tmp_path}/network/mynet0.netdev: cannot read: No such file or directory\n"
        "rrqctl: mynet0: not declared in what could be read\n",
    )


def test_a_source_that_reads_nothing_is_a_warning(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "interfaces": "source interfaces.d\nsource extra\nsource-directory x/*\n" + CABLE,
            "interfaces.d/a": "",
        },
    )
    rc, err = said(rrqctl(tmp_path, "show", "mynet0"))
    assert rc == 0
    assert err == (
        "rrqctl: interfaces:1: warning: source interfaces.d is a directory: "
        "'source-directory interfaces.d' reads its files\n"
        "rrqctl: interfaces:2: warning: source extra: no such file or directory "
        "(skipped, as ifupdown does)\n"
    ).replace("interfaces:", f"{tmp_path}/interfaces:")


# ---- 6: an unbracketed IPv6 remote with a port-like last group ---------------------------


def test_an_ipv6_remote_without_brackets_that_ends_in_a_port_is_a_warning(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "interfaces": CABLE
            + "    rrqnet_remote fd00::2:3636\n    rrqnet_remote [fd00::3]:3636\n"
            "    rrqnet_remote fd00::/64\n",
            "network/nd0.netdev": "[NetDev]\nName=nd0\nKind=tap\n[X-RRQNet]\nPort=3637\n"
            "Remote=fd00::3636\n",
        },
    )
    rc, err = said(rrqctl(tmp_path, "show"))
    assert rc == 0
    assert err == (
        "rrqctl: interfaces:3: warning: rrqnet_remote fd00::2:3636: an IPv6 address without "
        "brackets has no port, so this admits fd00::2:3636 from any port and sends nothing; "
        "for an uplink to port 3636 write [fd00::2]:3636\n"
        "rrqctl: network/nd0.netdev:6: warning: Remote= fd00::3636: an IPv6 address without "
        "brackets has no port, so this admits fd00::3636 from any port and sends nothing; "
        "for an uplink to port 3636 write [fd00::]:3636\n"
    ).replace("rrqctl: ", f"rrqctl: {tmp_path}/")


# ---- 7: not root ------------------------------------------------------------------------


@pytest.fixture
def open_tree() -> Iterator[Path]:
    """A tree every user may read (pytest's tmp_path is root's alone)."""
    with tempfile.TemporaryDirectory(prefix="rrqctl-nobody-") as d:
        os.chmod(d, 0o755)
        yield Path(d)


def as_nobody(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", sys.executable, "-m", "rrqctl", *argv,
         f"--interfaces={root / 'interfaces'}", f"--run-dir={root / 'run'}"],
        capture_output=True, text=True, check=False, cwd="/",
    )  # fmt: skip


@pytest.mark.skipif(not nobody_can_run_rrqctl(), reason=NOT_FOR_NOBODY)
def test_commands_that_change_the_host_say_they_need_root_and_change_nothing(
    open_tree: Path,
) -> None:
    tmp_path = open_tree
    write_tree(tmp_path, {"interfaces": CABLE})
    for argv, why in (
        (["up", "mynet0"], "up needs root: it makes taps and starts engines"),
        (["down", "mynet0"], "down needs root: it removes taps and stops engines"),
        (["run", "mynet0"], "run needs root: it makes a tap and runs the engine"),
        (["check"], "check needs root: it repairs cables (--dry-run only reports)"),
    ):
        assert said(as_nobody(tmp_path, *argv)) == (1, f"rrqctl: {why}\n"), argv
    r = as_nobody(tmp_path, "check", "--dry-run")
    assert said(r) == (0, "")
    assert not (tmp_path / "run").exists()  # a dry run writes nothing, not even a lock


def test_check_dry_run_creates_nothing(tmp_path: Path) -> None:
    write_tree(tmp_path, {"interfaces": CABLE, "conf.d/x.conf": "TAP=x0\nPORT=4000\n"})
    r = rrqctl(tmp_path, "check", "--dry-run")
    assert r.returncode == 1 and "x0: engine: the engine is not running" in r.stdout
    assert not (tmp_path / "run").exists()


# ---- conf.d -------------------------------------------------------------------------------


def test_confd_address_errors_have_their_line_and_every_value_its_origin(tmp_path: Path) -> None:
    write_tree(tmp_path, {"interfaces": "", "conf.d/x.conf": "TAP=x0\nPORT=4000\nIP=10.0.0.1/33\n"})
    rc, err = said(rrqctl(tmp_path, "show", "x0"))
    assert (rc, err) == (
        3,
        f"rrqctl: {tmp_path}/conf.d/x.conf:3: address 10.0.0.1/33 is not an IP address with a "
        "prefix length (like 10.0.0.1/24)\n",
    )
    mac = "02:00:00:00:00:01"
    write_tree(
        tmp_path,
        {
            "conf.d/x.conf": f"TAP=x0\nPORT=4000\nIP=10.0.0.1/24\nVERBOSE=-vv\n"
            f"VPN=( 10.0.0.2:4000 -i {mac}\n  10.1.0.0/16:4000 )\nLOG=/var/log/rrqnet/x0.log\n"
        },
    )
    r = rrqctl(tmp_path, "show", "x0")
    assert said(r) == (0, "")
    conf = f"{tmp_path}/conf.d/x.conf"
    rows = [line.split() for line in r.stdout.splitlines()[3:]]
    assert rows == [
        ["port", "4000", f"{conf}:2"],
        ["remote", "10.0.0.2:4000", "(uplink,", "ignores", "1", "MACs)", f"{conf}:5"],
        ["remote", "10.1.0.0/16:4000", "(downlink)", f"{conf}:6"],
        ["log", "-vv", "/var/log/rrqnet/x0.log", f"{conf}:7"],
        ["address", "10.0.0.1/24", f"{conf}:3"],
    ]


def test_render_interfaces_writes_the_addresses_it_was_given(tmp_path: Path) -> None:
    write_tree(tmp_path, {"interfaces": "", "conf.d/x.conf": "TAP=x0\nPORT=4000\nIP=fd00::1/64\n"})
    r = rrqctl(tmp_path, "render", "interfaces", "x0")
    assert said(r) == (0, "")
    assert r.stdout == (
        "iface x0 inet manual\n    rrqnet_port 4000\n\niface x0 inet6 static\n"
        "    address fd00::1/64\n"
    )


# ---- smaller ones -------------------------------------------------------------------------


def test_options_of_where_cables_are_may_come_before_the_command(tmp_path: Path) -> None:
    write_tree(tmp_path, {"interfaces": CABLE})
    r = subprocess.run(
        [sys.executable, "-m", "rrqctl", "--interfaces", str(tmp_path / "interfaces"), "show"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert said(r) == (0, "") and "mynet0: interfaces cable declared at" in r.stdout


def test_plan_of_a_networkd_cable_says_networkd_makes_the_tap(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "interfaces": "",
            "network/nd0.netdev": "[NetDev]\nName=nd0\nKind=tap\n[X-RRQNet]\nPort=3637\n",
        },
    )
    r = rrqctl(tmp_path, "plan", "nd0")
    assert said(r) == (0, "")
    lines = r.stdout.splitlines()
    assert lines[0] == "# nd0 does not exist yet: systemd-networkd makes it, then:"
    assert lines[1].startswith("[#] rrqctl run nd0 --attach") and len(lines) == 2


def test_a_section_name_in_the_wrong_case_is_a_warning(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "interfaces": "",
            "network/nd0.netdev": "[NetDev]\nName=nd0\nKind=tap\n[X-RRQNET]\nPort=3637\n",
        },
    )
    rc, err = said(rrqctl(tmp_path, "show"))
    assert (rc, err) == (
        0,
        f"rrqctl: {tmp_path}/network/nd0.netdev:4: warning: [X-RRQNET] is not [X-RRQNet] "
        "(section names are case-sensitive): no cable is declared\n",
    )
    write_tree(
        tmp_path,
        {
            "network/nd0.netdev": "[NetDev]\nName=nd0\nKind=tap\n[X-RRQNet]\nPort=3637\n",
            "network/nd0.netdev.d/r.conf": "[X-RRQNET]\nRemote=10.0.0.3:3637\n",
        },
    )
    rc, err = said(rrqctl(tmp_path, "show"))
    assert (rc, err) == (
        0,
        f"rrqctl: {tmp_path}/network/nd0.netdev.d/r.conf:1: warning: [X-RRQNET] is not "
        "[X-RRQNet] (section names are case-sensitive): its keys are ignored\n",
    )


def test_genkey_refuses_a_size_every_cable_would_refuse(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "rrqctl", "genkey", str(tmp_path / "k"), "--size", "16"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert said(r) == (2, "rrqctl: --size 16: a key file needs at least 32 bytes, not 16\n")
    assert not (tmp_path / "k").exists()


def test_rrqnet_cron_says_its_own_name() -> None:
    r = subprocess.run(
        [sys.executable, "-c", "import sys; from rrqctl.cli import cron_main; "
         "sys.exit(cron_main(sys.argv[1:]))", "--help"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert r.returncode == 0 and r.stdout.startswith("usage: rrqnet-cron [-h]")


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["show"], 0),
        (["frobnicate"], 2),
        (["show", "nosuch0"], 6),
        (["status", "mynet0"], 6),
        (["render", "networkd", "mynet0", "--dir", "."], 3),  # mynet0.netdev exists
    ],
)
def test_exit_codes_are_the_documented_ones(tmp_path: Path, argv: list[str], code: int) -> None:
    """(1: not root, or unreadable files, above; 4, 5 and 7 need a host: tests/netns,
    tests/integration/test_watchdog.py)"""
    write_tree(tmp_path, {"interfaces": CABLE, "mynet0.netdev": ""})
    assert said(rrqctl(tmp_path, *argv))[0] == code


# ---- follow-ups: what a second look at the same mistakes found -------------------------


def test_a_stanza_gets_the_addresses_ifup_gives_it(tmp_path: Path) -> None:
    """ifup 0.8: the first address of each static stanza; its netmask over a /prefix; a
    class's prefix (IPv4) or /128 when none is written; further address lines ignored."""
    write_tree(
        tmp_path,
        {
            "interfaces": "iface mynet0 inet static\n    address 10.1.0.1/16\n"
            "    netmask 255.255.255.0\n    address 10.1.0.2/24\n    rrqnet_port 3636\n"
            "iface mynet0 inet6 static\n    address fd00::1\n"
            "iface b0 inet static\n    address 172.16.5.1\n    rrqnet_port 3637\n",
        },
    )
    r = rrqctl(tmp_path, "show", "mynet0")
    assert said(r) == (
        0,
        f"rrqctl: {tmp_path}/interfaces:4: warning: ifup gives a stanza its first address only: "
        "10.1.0.2/24 is not given (an address of its own needs an 'iface ... static' stanza "
        "of its own)\n",
    )
    rows = [line.split() for line in r.stdout.splitlines()[3:]]
    assert rows == [
        ["port", "3636", f"{tmp_path}/interfaces:5"],
        ["address", "10.1.0.1/24", f"{tmp_path}/interfaces:2"],
        ["address", "fd00::1/128", f"{tmp_path}/interfaces:7"],
    ]
    r = rrqctl(tmp_path, "plan", "b0")
    assert "[#] ip addr add 172.16.5.1/16 dev b0" in r.stdout.splitlines()  # class B
    r = rrqctl(tmp_path, "render", "interfaces", "mynet0")
    assert r.returncode == 0 and r.stdout == (
        "iface mynet0 inet static\n    address 10.1.0.1/24\n    rrqnet_port 3636\n\n"
        "iface mynet0 inet6 static\n    address fd00::1/128\n"
    )


def test_a_confd_cable_may_be_named_by_its_file_as_rrqnet_cron_names_it(tmp_path: Path) -> None:
    write_tree(tmp_path, {"interfaces": "", "conf.d/office.conf": "TAP=o0\nPORT=4000\n"})
    r = rrqctl(tmp_path, "show", "office")
    assert said(r) == (0, "")
    assert r.stdout.startswith(f"o0: confd cable declared at {tmp_path}/conf.d/office.conf\n")
    r = rrqctl(tmp_path, "check", "--dry-run", "office")
    assert (r.returncode, r.stdout) == (
        1,
        "o0: engine: the engine is not running\no0: tap: o0 does not exist\n",
    )


def test_a_mistyped_confd_or_networkd_dir_is_named(tmp_path: Path) -> None:
    write_tree(tmp_path, {"interfaces": CABLE})
    for option in ("--confd", "--networkd-dir"):
        r = subprocess.run(
            [sys.executable, "-m", "rrqctl", "show", f"--interfaces={tmp_path}/interfaces",
             f"{option}={tmp_path}/nosuch", f"--run-dir={tmp_path}/run"],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        rc, err = said(r)
        assert rc == 3 and f"rrqctl: {tmp_path}/nosuch: cannot read: no such directory\n" in err
        assert "mynet0: interfaces cable" in r.stdout  # what could be read is still shown


def test_networkd_dirs_before_and_after_the_command_are_all_read(tmp_path: Path) -> None:
    netdev = "[NetDev]\nName={0}\nKind=tap\n[X-RRQNet]\nPort={1}\n"
    write_tree(
        tmp_path,
        {
            "interfaces": "",
            "conf.d/.keep": "",
            "a/nd0.netdev": netdev.format("nd0", 3637),
            "b/nd1.netdev": netdev.format("nd1", 3638),
        },
    )
    r = subprocess.run(
        [sys.executable, "-m", "rrqctl", f"--networkd-dir={tmp_path}/a", "show", "--json",
         f"--interfaces={tmp_path}/interfaces", f"--confd={tmp_path}/conf.d",
         "--networkd-dir", f"{tmp_path}/b"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert said(r) == (0, "")
    assert [c["name"] for c in json.loads(r.stdout)["cables"]] == ["nd0", "nd1"]


def test_an_unreadable_dropin_breaks_its_cable(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "interfaces": "",
            "network/nd0.netdev": "[NetDev]\nName=nd0\nKind=tap\n[X-RRQNet]\nPort=3637\n",
        },
    )
    (tmp_path / "network/nd0.netdev.d/r.conf").mkdir(parents=True)
    rc, err = said(rrqctl(tmp_path, "show", "nd0"))
    assert (rc, err) == (
        3,
        f"rrqctl: {tmp_path}/network/nd0.netdev.d/r.conf: cannot read: Is a directory\n",
    )


def test_genkey_refuses_too_much_and_never_overwrites(tmp_path: Path) -> None:
    def genkey(*argv: str) -> tuple[int, str]:
        r = subprocess.run(
            [sys.executable, "-m", "rrqctl", "genkey", *argv],
            capture_output=True, text=True, check=False, cwd=tmp_path,
        )  # fmt: skip
        return said(r)

    assert genkey("k", "--size", "70000") == (
        2,
        "rrqctl: --size 70000: a key file of 65536 bytes at most will do\n",
    )
    assert not (tmp_path / "k").exists()
    assert genkey("k")[0] == 0
    key = (tmp_path / "k").read_bytes()
    assert genkey("k") == (1, "rrqctl: k exists: refusing to overwrite a key file\n")
    assert (tmp_path / "k").read_bytes() == key
    assert genkey("nosuch/k") == (1, "rrqctl: nosuch/k: No such file or directory\n")


def test_metrics_still_answer_when_declarations_cannot_be_read(tmp_path: Path) -> None:
    """A scraper must not lose the running cables' samples to one unreadable file."""
    (tmp_path / "interfaces").mkdir()
    r = rrqctl(tmp_path, "status", "--metrics")
    rc, err = said(r)
    assert rc == 0
    assert err == (
        f"rrqctl: {tmp_path}/interfaces: cannot read: Is a directory "
        "(cables declared there show only if running)\n"
    )
    assert "# TYPE rrqnet_channel_frames_total counter" in r.stdout


def test_rrqnet_refuses_a_stdin_it_cannot_wait_on(tmp_path: Path) -> None:
    """-t - with stdin from /dev/null or a file: epoll cannot wait on it (exit 5, said)."""
    (tmp_path / "f").write_text("not a stream\n")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    for stdin in ("/dev/null", str(tmp_path / "f")):
        with open(stdin, "rb") as f:
            r = subprocess.run(
                [sys.executable, "-m", "rrqctl.rrqnet", "-t", "-", port],
                stdin=f, capture_output=True, text=True, check=False, timeout=30,
            )  # fmt: skip
        assert (r.returncode, r.stderr) == (
            5,
            "rrqnet: stdio: standard input is a file (or /dev/null), which cannot be waited "
            "on: give -t - a pipe or a socket (dpipe, vde_plug)\n",
        ), stdin
