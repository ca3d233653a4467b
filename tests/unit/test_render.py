"""Rendered files say the same cable: render, read back, compare (over every golden case)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rrqctl import render
from rrqctl.config.sources import Config
from rrqctl.model import Cable, LogSpec
from tests.configtree import inside, load_tree, sources
from tests.unit.test_golden import CASES, materialize

ENGINE_FIELDS = (
    "port",
    "local",
    "remotes",
    "multicast",
    "ipv4_only",
    "buffers",
    "threads",
    "tpg",
    "source",
    "verbosity",
    "freshness",
    "log",
    "nice",
)


def golden_cables(case: str, root: Path) -> list[Cable]:
    materialize(case, root)
    with inside(root):
        from rrqctl.config.sources import load

        cfg: Config = load(sources())
    return list(cfg.cables.values())


def same(a: Cable, b: Cable, fields: tuple[str, ...]) -> None:
    for f in fields:
        assert getattr(a, f) == getattr(b, f), f


@pytest.mark.parametrize("case", CASES)
def test_interfaces_stanza_round_trips(case: str, tmp_path: Path) -> None:
    for cable in golden_cables(case, tmp_path / "golden"):
        text = render.interfaces_stanza(cable)
        back = load_tree(tmp_path / cable.name, {"interfaces": text})
        assert back.errors == [], text
        again = back.cables[cable.name]
        same(cable, again, (*ENGINE_FIELDS, "bridge", "dhcp", "mac", "mtu", "addresses"))
        assert ("auto" in again.start) == ("auto" in cable.start)


@pytest.mark.parametrize("case", CASES)
def test_networkd_files_round_trip(case: str, tmp_path: Path) -> None:
    for cable in golden_cables(case, tmp_path / "golden"):
        if cable.local != "tap":
            continue
        with_address = cable.model_copy(update={"addresses": ("10.1.2.3/24",)})
        files = render.networkd_files(with_address)
        back = load_tree(tmp_path / cable.name, {f"network/{n}": t for n, t in files.items()})
        assert back.errors == [], files
        again = back.cables[cable.name]
        same(cable, again, ENGINE_FIELDS)
        assert again.owner == "networkd" and again.bridge == cable.bridge and again.mac == cable.mac
        assert "Address=10.1.2.3/24" in files[f"{cable.name}.network"]


def test_notap_has_no_networkd_form(tmp_path: Path) -> None:
    from rrqctl.errors import ConfigError

    (cable,) = golden_cables("notap", tmp_path)
    with pytest.raises(ConfigError, match="notap"):
        render.networkd_files(cable)


def test_unit_dropin_sets_nice_and_networkd_ordering(tmp_path: Path) -> None:
    cables = {
        c.name: c
        for case in ("host-options", "networkd")
        for c in golden_cables(case, tmp_path / case)
    }
    assert "Nice=-5" in render.unit_dropin(cables["mynet0"])
    assert "ReadWritePaths" not in render.unit_dropin(cables["mynet0"])  # it logs to syslog
    assert "After=systemd-networkd.service" in render.unit_dropin(cables["cab0"])
    text = render.unit_with_overrides(cables["mynet0"])
    assert text.startswith("# /lib/systemd/system/rrqnet@.service\n")
    assert "ExecStart=/usr/bin/rrqctl run %i" in text


def test_unit_dropin_lets_the_unit_write_a_log_file_outside_its_logs_directory(
    tmp_path: Path,
) -> None:
    (seed,) = golden_cables("seed", tmp_path)  # rrqnet_log -v /var/log/mynet0.log
    assert "\nReadWritePaths=/var/log\n" in render.unit_dropin(seed)
    in_logs_dir = seed.model_copy(update={"log": LogSpec(target="/var/log/rrqnet/mynet0.log")})
    assert "ReadWritePaths" not in render.unit_dropin(in_logs_dir)


def test_cron_schedule_is_checked() -> None:
    from rrqctl.errors import ConfigError

    line = "*/5 * * * * root [ -d /run/systemd/system ] || /usr/bin/rrqctl check --quiet\n"
    assert line in render.cron_file("*/5 * * * *")
    with pytest.raises(ConfigError, match="five fields"):
        render.cron_file("* * *")
