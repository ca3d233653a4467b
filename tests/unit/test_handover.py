"""rrqctl run's handover to its engine process: what crosses, and what misuse gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rrqctl.cli import main
from rrqctl.errors import ActionError, ConfigError, error_from
from rrqctl.supervise.spec import CableSpec, Handover
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


def handover_of(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Handover:
    key = tmp_path / "keys" / "k"
    key.parent.mkdir(mode=0o700)
    key.write_bytes(bytes(range(64)))
    key.chmod(0o600)
    (tmp_path / "interfaces").write_text(
        "iface mynet0 inet static\n    address 10.9.0.1/24\n    rrqnet_port 3636\n"
        f"    rrqnet_remote 10.0.0.2:3636={key}\n    rrqnet_bridge br0\n"
        "    rrqnet_log -vv daemon.info\n    rrqnet_dhcp dhclient -4\n"
    )
    with inside(tmp_path):
        assert main(["run", "mynet0", "--print-spec", *ARGS]) == 0
    spec = CableSpec.from_json(json.loads(capsys.readouterr().out))
    return Handover(spec, "/run/x", ("run", "mynet0"), made=True, ready_fd=7, health_every=2.5)


def test_the_handover_round_trips_through_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    h = handover_of(tmp_path, capsys)
    again = Handover.from_json(json.loads(json.dumps(h.to_json())))
    assert again == h and again.spec.data == h.spec.data
    assert (again.spec.name, again.spec.bridge, again.spec.addresses) == (
        "mynet0",
        "br0",
        ("10.9.0.1/24",),
    )
    assert again.spec.engine.remotes[0].keyfile == str(tmp_path / "keys" / "k")
    assert (again.spec.syslog, again.spec.dhcp, again.ready_fd) == (("daemon", "info"), ("-4",), 7)


def test_a_handover_of_another_version_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = handover_of(tmp_path, capsys).to_json()
    with pytest.raises(ValueError, match="handover version 2, not 1"):
        Handover.from_json({**data, "version": 2})
    with pytest.raises(KeyError):
        Handover.from_json({k: v for k, v in data.items() if k != "run_dir"})
