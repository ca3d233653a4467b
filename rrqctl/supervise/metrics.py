"""Cable status as Prometheus text exposition (for node_exporter's textfile collector).

One family block per metric, with the samples of every cable given: `rrqctl status
--metrics` writes all running cables in one valid file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

FAMILIES = (
    ("rrqnet_channel_frames_total", "counter", "Frames through a channel."),
    ("rrqnet_channel_bytes_total", "counter", "Frame bytes through a channel."),
    ("rrqnet_channel_up", "gauge", "Whether a channel has been heard from recently."),
    ("rrqnet_dropped_total", "counter", "Datagrams and frames dropped, by reason."),
    ("rrqnet_macs", "gauge", "Learned MAC addresses."),
    ("rrqnet_resident_memory_bytes", "gauge", "The engine process's resident memory."),
    ("rrqnet_cpu_seconds_total", "counter", "The engine process's user and system CPU time."),
)


def metrics_text(statuses: Iterable[dict[str, Any]]) -> str:
    samples: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
    for status in statuses:
        for name, labels, value in _samples(status):
            samples[name].append(f"{name}{{{labels}}} {value}")
    out = []
    for name, kind, text in FAMILIES:
        out += [f"# HELP {name} {text}", f"# TYPE {name} {kind}", *samples[name]]
    return "\n".join(out) + "\n"


def _samples(status: dict[str, Any]) -> Iterator[tuple[str, str, float]]:
    cable = f'cable="{status["name"]}"'
    channels = [*status["remotes"], *([status["local"]] if status.get("local") else [])]
    for ch in channels:
        labels = f'{cable},channel="{ch["name"]}",kind="{ch["kind"]}"'
        for d in ("rx", "tx"):
            way = f'{labels},direction="{d}"'
            yield "rrqnet_channel_frames_total", way, ch[f"{d}_frames"]
            yield "rrqnet_channel_bytes_total", way, ch[f"{d}_bytes"]
        yield "rrqnet_channel_up", labels, int(ch["state"] == "up")
    for reason, n in status["drops"].items():
        yield "rrqnet_dropped_total", f'{cable},reason="{reason}"', n
    yield "rrqnet_macs", cable, status.get("mac_count", len(status.get("macs", ())))
    if "rss_bytes" in status:  # an engine started before an upgrade may not say
        yield "rrqnet_resident_memory_bytes", cable, status["rss_bytes"]
        yield "rrqnet_cpu_seconds_total", cable, status["cpu_seconds"]
