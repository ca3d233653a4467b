"""What is measured across a tunnel: iperf3 TCP and small-UDP rates, ping RTT, the tunnel
processes' CPU and memory."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.lab import OVERLAY, Lab


@dataclass
class Result:
    tcp1: list[float] = field(default_factory=list)  # Mb/s
    tcp4: list[float] = field(default_factory=list)
    udp64: list[float] = field(default_factory=list)  # packets/s received
    rtt: list[float] = field(default_factory=list)  # ms
    cpu: list[float] = field(default_factory=list)  # % of one core, tunnel processes, during tcp1
    rss: float = 0.0  # MB, the largest tunnel process's peak

    def median(self, name: str) -> float | None:
        values: list[float] = getattr(self, name)
        return statistics.median(values) if values else None


def _iperf(lab: Lab, seconds: float, *args: str) -> dict:  # type: ignore[type-arg]
    server = lab.spawn(1, ["iperf3", "-s", "-1"], "iperf3-server.log")
    time.sleep(0.3)
    try:
        out = lab.run(
            0, "iperf3", "-c", OVERLAY[1], "-t", str(seconds), "-J", *args, check=False
        ).stdout
    finally:
        server.wait(10)
        lab.procs.remove(server)
    data: dict = json.loads(out)  # type: ignore[type-arg]
    if "error" in data:
        raise RuntimeError(f"iperf3: {data['error']}")
    return data


def tcp(lab: Lab, seconds: float, streams: int = 1) -> float:
    d = _iperf(lab, seconds, "-P", str(streams))
    return float(d["end"]["sum_received"]["bits_per_second"]) / 1e6


def udp_pps(lab: Lab, seconds: float, size: int = 64) -> float:
    d = _iperf(lab, seconds, "-u", "-b", "0", "-l", str(size))
    s = d["end"]["sum"]
    return float(s["packets"] - s["lost_packets"]) / float(s["seconds"])


def rtt(lab: Lab, count: int = 200) -> float:
    out = lab.run(0, "ping", "-c", str(count), "-i", "0.01", "-q", OVERLAY[1]).stdout
    m = re.search(r"= [\d.]+/([\d.]+)/", out)
    if not m:
        raise RuntimeError(f"ping: {out}")
    return float(m.group(1))


def cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / 100.0  # utime + stime, in ticks of 10 ms
    return total


def peak_rss_mb(pids: list[int]) -> float:
    peak = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
    return peak / 1024


def measure(
    lab: Lab, pids: list[int], seconds: float, r: Result, say: Callable[[str], None]
) -> None:
    """One round of every measurement, added to r."""
    c0, t0 = cpu_seconds(pids), time.monotonic()
    r.tcp1.append(tcp(lab, seconds))
    if pids:
        r.cpu.append(100 * (cpu_seconds(pids) - c0) / (time.monotonic() - t0) / len(pids))
    r.tcp4.append(tcp(lab, seconds, 4))
    r.udp64.append(udp_pps(lab, seconds))
    r.rtt.append(rtt(lab))
    if pids:
        r.rss = max(r.rss, peak_rss_mb(pids))
    tcp_text = f"TCP {r.tcp1[-1]:.0f} / {r.tcp4[-1]:.0f} Mb/s"
    say(f"{tcp_text}, 64 B {r.udp64[-1]:.0f} pps, RTT {r.rtt[-1]:.3f} ms")
