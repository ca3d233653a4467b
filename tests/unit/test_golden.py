"""Golden files: each tests/golden/CASE is a configuration tree; `rrqctl show --json` on it
must print CASE/expected.json exactly. REGEN_GOLDEN=1 rewrites the expectations (review them!)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from rrqctl.cli import main
from tests.configtree import KEY, inside

GOLDEN = Path(__file__).parents[1] / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if p.is_dir())
ARGS = [
    "--interfaces",
    "interfaces",
    "--networkd-dir",
    "network",
    "--networkd-dir",
    "run-network",
    "--networkd-dir",
    "lib-network",
    "--confd",
    "conf.d",
    "--run-dir",
    "run",
]


def materialize(case: str, root: Path) -> None:
    shutil.copytree(GOLDEN / case, root, symlinks=True, dirs_exist_ok=True)
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink() and path.name != "expected.json":
            path.write_text(path.read_text().replace("@ROOT@", str(root)))
    (root / "keys").mkdir(exist_ok=True)
    for name in ("k", "mynet.key"):
        (root / "keys" / name).write_bytes(KEY)
        (root / "keys" / name).chmod(0o600)


@pytest.mark.parametrize("case", CASES)
def test_show_json_matches_golden(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    materialize(case, tmp_path)
    with inside(tmp_path):
        rc = main(["show", "--json", *ARGS])
    out = capsys.readouterr().out.replace(str(tmp_path), "@ROOT@")
    got = json.loads(out)
    expected_file = GOLDEN / case / "expected.json"
    if os.environ.get("REGEN_GOLDEN"):
        expected_file.write_text(json.dumps(got, indent=2) + "\n")
    assert got == json.loads(expected_file.read_text())
    assert rc == (3 if got["errors"] else 0)
