"""rrqctl run's handover to its engine process: what crosses, and what misuse gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rrqctl.cli import main
from rrqctl.errors import ActionError, ConfigError
from rrqctl.supervise.links import error_from
from tests.configtree import inside
from tests.unit.test_golden import ARGS


def test_a_cable_that_cannot_be_read_is_said_as_json_for_a_reload(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "interfaces").write_text("iface mynet0 inet manual\n    rrqnet_port 0\n")
    with inside(tmp_path):
        rc = main(["run", "mynet0", "--print-spec", *ARGS])
    said = json.loads(capsys.readouterr().out)
    assert rc == 3
    assert said["kind"] == "ConfigError"
    assert said["message"] == "interfaces:2: rrqnet_port: port 0 is out of range 1-65535"
    err = error_from(json.dumps(said), "fallback")
    assert isinstance(err, ConfigError) and str(err) == said["message"]
    assert isinstance(error_from("not json", "fallback"), ActionError)


def test_engine_fd_is_not_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "mynet0", "--engine-fd", "99"]) == 2
    assert capsys.readouterr().err == "rrqctl: --engine-fd is rrqctl run's own: not a handover\n"
