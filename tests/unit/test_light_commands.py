"""Commands that have nothing to validate or observe stay light: cron runs `rrqctl check`
every minute on every host with the package, most of them with no cable at all.

Each command runs in a fresh interpreter, which reports the heavy libraries it loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rrqctl.model import DEFAULT_DHCP_ARGS
from tests.configtree import load_tree, write_tree

HEAVY = ("pydantic", "pyroute2", "jinja2", "cryptography")
REPORT = """
import json, sys
from rrqctl.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
sys.stdout.flush()
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
print(json.dumps({"rc": rc, "heavy": heavy}), file=sys.stderr)
""".replace("HEAVY", repr(HEAVY))

NO_CABLE = "auto lo\niface lo inet loopback\n"
CABLE = "auto mynet0\niface mynet0 inet manual\n    rrqnet_port 3636\n"


def rrqctl(root: Path, *argv: str, where: bool = True) -> tuple[int, list[str]]:
    """Run rrqctl argv on the tree at root; (exit code, heavy libraries it loaded)."""
    places = [
        f"--interfaces={root / 'interfaces'}",
        f"--confd={root / 'conf.d'}",
        f"--networkd-dir={root / 'network'}",
        f"--run-dir={root / 'run'}",
    ]
    r = subprocess.run(
        [sys.executable, "-c", REPORT, *argv, *(places if where else [])],
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(r.stderr.strip().splitlines()[-1])
    return report["rc"], report["heavy"]


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    write_tree(tmp_path, {"interfaces": NO_CABLE, "conf.d/README": "", "state/ifstate": ""})
    (tmp_path / "network").mkdir()
    return tmp_path


@pytest.mark.parametrize("argv", [["check", "--quiet"], ["check", "--json"]])
def test_check_without_cables_loads_no_heavy_library(tree: Path, argv: list[str]) -> None:
    assert rrqctl(tree, *argv, "--ifupdown-state", str(tree / "state")) == (0, [])


@pytest.mark.parametrize("command", ["status", "show"])
def test_status_and_show_without_cables_load_no_heavy_library(tree: Path, command: str) -> None:
    assert rrqctl(tree, command) == (0, [])


def test_help_loads_no_heavy_library(tree: Path) -> None:
    assert rrqctl(tree, "--help", where=False) == (0, [])
    assert rrqctl(tree, "check", "--help", where=False) == (0, [])


def test_a_cable_to_check_loads_the_model_and_not_netlink(tree: Path) -> None:
    """The counterpart: a cable to check is validated (pydantic); looking at the host takes
    no pyroute2, which only a repair needs."""
    (tree / "interfaces").write_text(NO_CABLE + CABLE)
    (tree / "state" / "ifstate").write_text("mynet0=mynet0\n")
    state = ["--ifupdown-state", str(tree / "state")]
    rc, heavy = rrqctl(tree, "check", "--dry-run", "--json", *state)
    assert rc != 0  # mynet0 is not running here
    assert heavy == ["pydantic"]


def test_dhcp_without_arguments_gets_the_default_ones(tmp_path: Path) -> None:
    cfg = load_tree(tmp_path, {"interfaces": CABLE + "    rrqnet_dhcp dhclient\n"})
    cable = cfg.get("mynet0")
    assert cable.dhcp is not None and cable.dhcp.args == DEFAULT_DHCP_ARGS
