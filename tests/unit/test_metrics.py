"""Prometheus text for several cables: one family block each, every cable's samples in it."""

from __future__ import annotations

from typing import Any

from rrqctl.supervise.metrics import FAMILIES, metrics_text


def status(name: str, rx: int, drops: dict[str, int], usage: bool = True) -> dict[str, Any]:
    remote = {"name": "10.0.0.2:3636", "kind": "uplink", "state": "up"}
    remote |= {"rx_frames": rx, "tx_frames": 2, "rx_bytes": 60 * rx, "tx_bytes": 120}
    st: dict[str, Any] = {"name": name, "remotes": [remote], "local": None, "drops": drops}
    st["macs"] = [{"mac": "02:00:00:00:00:01"}]
    if usage:
        st |= {"rss_bytes": 21 << 20, "cpu_seconds": 1.5}
    return st


def test_two_cables_share_each_family_block() -> None:
    text = metrics_text([status("a0", 7, {"runt": 3}), status("b0", 9, {}, usage=False)])
    lines = text.splitlines()
    for name, kind, _ in FAMILIES:
        assert lines.count(f"# TYPE {name} {kind}") == 1
        assert sum(line.startswith(f"# HELP {name} ") for line in lines) == 1
    assert (
        'rrqnet_channel_frames_total{cable="a0",channel="10.0.0.2:3636",kind="uplink",direction="rx"} 7'
        in lines
    )
    assert (
        'rrqnet_channel_frames_total{cable="b0",channel="10.0.0.2:3636",kind="uplink",direction="rx"} 9'
        in lines
    )
    assert 'rrqnet_dropped_total{cable="a0",reason="runt"} 3' in lines
    assert f'rrqnet_resident_memory_bytes{{cable="a0"}} {21 << 20}' in lines
    assert not any(line.startswith('rrqnet_cpu_seconds_total{cable="b0"') for line in lines)
    # samples of a family follow its TYPE line, before the next family's HELP
    first = lines.index("# TYPE rrqnet_macs gauge")
    assert lines[first + 1 : first + 3] == [
        'rrqnet_macs{cable="a0"} 1',
        'rrqnet_macs{cable="b0"} 1',
    ]
    assert text.endswith("\n")


def test_the_mac_count_of_a_status_without_its_table() -> None:
    st = status("a0", 1, {})
    del st["macs"]
    st["mac_count"] = 16384
    assert 'rrqnet_macs{cable="a0"} 16384' in metrics_text([st]).splitlines()
