"""`rrqctl install --root DIR`: the files a PyPI install needs, in place, and back out again."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from rrqctl.cli import main
from tests.netlab import BIN

REPO = Path(__file__).parents[2]
pytestmark = pytest.mark.system


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_install_writes_hooks_units_cron_and_etc_rrqnet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rrqctl = str(BIN / "rrqctl")
    assert main(["install", "--root", str(tmp_path), "--rrqctl", rrqctl]) == 0
    for d in ("if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"):
        hook = tmp_path / "etc/network" / d / "rrqnet"
        shipped = (REPO / "hooks/rrqnet").read_text()
        assert "RRQCTL=/usr/bin/rrqctl\n" in shipped  # the Debian package's
        assert hook.read_text() == shipped.replace("/usr/bin/rrqctl", rrqctl)
        assert mode(hook) == 0o755
    unit = tmp_path / "etc/systemd/system/rrqnet@.service"
    assert f"ExecStart={rrqctl} run %i" in unit.read_text()
    cron = tmp_path / "etc/cron.d/rrqnet"
    assert (
        f"* * * * * root [ -d /run/systemd/system ] || {rrqctl} check --quiet" in cron.read_text()
    )
    assert mode(cron) == 0o644
    assert mode(tmp_path / "etc/rrqnet/keys") == 0o700
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit.parent / "rrqnet@x.service")],
        capture_output=True,
        text=True,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit.parent}:"},
    )
    assert (r.returncode, r.stderr) == (0, "")
    capsys.readouterr()
    assert main(["install", "--root", str(tmp_path), "--rrqctl", rrqctl]) == 0
    assert capsys.readouterr().out == "already installed: nothing to do\n"


def test_install_refuses_to_replace_a_changed_file_and_uninstall_keeps_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["install", "--root", str(tmp_path), "--rrqctl", "/x/rrqctl"])
    cron = tmp_path / "etc/cron.d/rrqnet"
    cron.write_text("# mine\n")
    capsys.readouterr()
    assert main(["install", "--root", str(tmp_path), "--rrqctl", "/x/rrqctl"]) == 4
    assert (
        capsys.readouterr().err
        == f"rrqctl: {cron} exists and differs: not replacing it (--force replaces)\n"
    )
    assert main(["install", "--root", str(tmp_path), "--rrqctl", "/x/rrqctl", "--uninstall"]) == 0
    assert cron.read_text() == "# mine\n"
    assert not (tmp_path / "etc/network/if-up.d/rrqnet").exists()
    assert not (tmp_path / "etc/rrqnet").exists()


def test_an_rrqctl_at_a_path_with_a_space_and_a_percent_is_called_as_it_is(
    tmp_path: Path,
) -> None:
    """A venv in "/opt/my tools/50%": the hook (sh), the unit (systemd's quoting and its %
    specifiers) and the cron line (sh, where cron reads % as a newline) each run it."""
    where = tmp_path / "my tools" / "50%"
    where.mkdir(parents=True)
    rrqctl = where / "rrqctl"
    calls = tmp_path / "calls"
    rrqctl.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {BIN}/rrqctl "$@"\n')
    rrqctl.chmod(0o755)
    root = tmp_path / "root"
    assert main(["install", "--root", str(root), "--rrqctl", str(rrqctl)]) == 0

    hook = root / "etc/network/if-pre-up.d/rrqnet"
    r = subprocess.run(  # (no rrqnet_port: no cable, the hook's rrqctl has nothing to do)
        ["sh", str(hook)], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "MODE": "start", "PHASE": "post-up", "IFACE": "lo",
             "IF_RRQNET_NICE": "5"},
    )  # fmt: skip
    assert (r.returncode, r.stderr, calls.read_text()) == (0, "", "hook\n")

    unit = root / "etc/systemd/system/rrqnet@.service"
    r = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(unit.parent / "rrqnet@x.service")],
        capture_output=True, text=True,
        env={**os.environ, "SYSTEMD_UNIT_PATH": f"{unit.parent}:"},
    )  # fmt: skip
    assert (r.returncode, r.stderr) == (0, "")
    assert f'ExecStart="{str(rrqctl).replace("%", "%%")}" run %i' in unit.read_text()

    line = next(
        x
        for x in (root / "etc/cron.d/rrqnet").read_text().splitlines()
        if "check" in x and not x.startswith("#")
    )
    command = line.split(None, 6)[6].replace("\\%", "%")  # as cron hands it to sh
    command = command.replace("check --quiet", "--version")
    r = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("rrqctl "), (command, r.stderr)
    assert calls.read_text() == "hook\n--version\n"
