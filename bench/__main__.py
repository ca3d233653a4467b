"""python -m bench: rrqctl against kernel VXLAN, OpenVPN and tinc, in one run, on this machine.

Two network namespaces on a veth underlay; every overlay at MTU 1400; iperf3 TCP (1 and 4
streams), UDP 64-byte packets per second and ping RTT; medians of --repeat runs; ratios
against the targets; then each target again, ours and the peer side by side and measured in
turn (bench/paired.py). Needs root and iperf3, openvpn, tinc (`make bench` installs them).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from bench import paired, parsing
from bench.lab import lab
from bench.measure import Result, measure
from bench.tunnels import VARIANTS

TARGETS = (
    # (what, ours, metric, peer, factor, higher is better)
    ("plain TCP 1-stream >= 1.5x tinc (no cipher)", "rrqctl-plain", "tcp1", "tinc-none", 1.5, True),
    (
        "sealed TCP 1-stream >= 1.3x OpenVPN AES-256-GCM",
        "rrqctl-sealed",
        "tcp1",
        "openvpn-gcm",
        1.3,
        True,
    ),
    ("64-byte pps >= 1.3x tinc (no cipher)", "rrqctl-plain", "udp64", "tinc-none", 1.3, True),
    ("ping RTT <= tinc's", "rrqctl-plain", "rtt", "tinc-none", 1.0, False),
    # the native fast path (issue 26): against the kernel's own tunnel
    ("plain TCP 1-stream >= 35 % of kernel VXLAN", "rrqctl-plain", "tcp1", "vxlan", 0.35, True),
    ("sealed TCP 1-stream >= 20 % of kernel VXLAN", "rrqctl-sealed", "tcp1", "vxlan", 0.20, True),
    ("64-byte pps >= 0.9x kernel VXLAN", "rrqctl-plain", "udp64", "vxlan", 0.9, True),
    (
        "sealed ping RTT <= tinc's (default cipher)",
        "rrqctl-sealed",
        "rtt",
        "tinc-default",
        1.0,
        False,
    ),
)
# Measured beside the targets, no verdict: how close to tinc's RTT any CPython loop can get
REFERENCES = (
    ("ping RTT, a bare Python forwarder vs tinc (the floor)", "pyfwd", "rtt", "tinc-none"),
    (
        "plain TCP 1-stream, the C datapath vs the Python one",
        "rrqctl-plain",
        "tcp1",
        "rrqctl-plain-python",
    ),
    ("ping RTT, the C datapath vs the Python one", "rrqctl-plain", "rtt", "rrqctl-plain-python"),
)
RSS_LIMIT_MB = 40.0


def say(line: str) -> None:
    print(line, flush=True)


def fmt(v: float | None, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(results: dict[str, Result]) -> list[str]:
    base = results.get("tinc-none")
    rows = [
        [
            "variant",
            "TCP 1 Mb/s",
            "TCP 4 Mb/s",
            "UDP 64 B pps",
            "RTT ms",
            "CPU %/proc",
            "RSS MB",
            "TCP1 vs tinc",
        ]
    ]
    for name, r in results.items():
        ratio = None
        if base and base.median("tcp1") and r.median("tcp1"):
            ratio = r.median("tcp1") / base.median("tcp1")  # type: ignore[operator]
        rows.append(
            [
                VARIANTS[name][0],
                fmt(r.median("tcp1"), ".0f"),
                fmt(r.median("tcp4"), ".0f"),
                fmt(r.median("udp64"), ".0f"),
                fmt(r.median("rtt"), ".3f"),
                fmt(r.median("cpu"), ".0f"),
                fmt(r.rss or None, ".1f"),
                fmt(ratio, ".2f") + ("x" if ratio else ""),
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return (
        [
            "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
            for row in rows[:1]
        ]
        + ["|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        + [
            "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
            for row in rows[1:]
        ]
    )


def verdicts(results: dict[str, Result]) -> list[str]:
    out = []
    for what, ours, metric, peer, factor, higher in TARGETS:
        if ours not in results or peer not in results:
            continue
        a, b = results[ours].median(metric), results[peer].median(metric)
        if a is None or b is None:
            continue
        ok = a >= factor * b if higher else a <= factor * b
        out.append(f"{'PASS' if ok else 'MISS'}  {what}: {a:.3f} vs {b:.3f} ({a / b:.2f}x)")
    for name in ("rrqctl-plain", "rrqctl-sealed"):
        defaults = results.get(f"{name}-defaults")
        if name in results and defaults is not None:
            a, b = defaults.median("tcp1"), results[name].median("tcp1")
            if a and b:
                verdict = "PASS" if abs(a / b - 1) <= 0.10 else "MISS"
                out.append(
                    f"{verdict}  {name}, no MTU declared, TCP 1-stream within 10 % of MTU 1400: "
                    f"{a:.0f} vs {b:.0f} ({a / b:.2f}x)"
                )
        if name in results:
            rss = results[name].rss
            verdict = "PASS" if rss <= RSS_LIMIT_MB else "MISS"
            out.append(f"{verdict}  {name} engine RSS <= 40 MB: {rss:.1f} MB")
    return out


def cpu_model() -> str:
    """The CPU's name: runs on hosts of one kind but other CPUs differ a lot (see README)."""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return os.uname().machine


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--seconds", type=float, default=5.0, help="length of each iperf3 run (default 5)"
    )
    p.add_argument(
        "--repeat", type=int, default=3, help="runs per measurement; medians are shown (default 3)"
    )
    p.add_argument("--only", help="comma separated variants: " + ",".join(VARIANTS))
    p.add_argument(
        "--pairs",
        type=int,
        default=9,
        help="paired measurements per target after the table (see bench/paired.py; 0: none)",
    )
    p.add_argument(
        "--pair-seconds", type=float, default=3.0, help="length of each paired measurement"
    )
    args = p.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (network namespaces, taps)", file=sys.stderr)
        return 2
    if not args.only:
        parsing.main()  # reading configurations: linear, and how fast
        say("")
    names = args.only.split(",") if args.only else list(VARIANTS)
    results: dict[str, Result] = {name: Result() for name in names}
    t0 = time.monotonic()
    # Rounds go through every variant in turn, so a slow spell of this shared machine
    # falls on all of them alike; the table shows medians over rounds.
    for rnd in range(args.repeat):
        for name in names:
            title, setup = VARIANTS[name]
            print(f"round {rnd + 1}/{args.repeat}, {title}: ", end="", flush=True)
            with lab() as lb:
                pids = setup(lb)
                lb.wait_overlay()
                measure(lb, pids, args.seconds, results[name], say)
    took = time.monotonic() - t0
    say(
        f"\n{len(names)} variants in {took:.0f} s; "
        f"medians of {args.repeat} rounds of {args.seconds:g} s;"
    )
    say(
        f"overlay MTU 1400, two namespaces on a veth underlay, {os.cpu_count()} cores "
        f"({cpu_model()}), Linux {os.uname().release}\n"
    )
    for line in table(results):
        say(line)
    say("")
    for line in verdicts(results):
        say(line)
    if args.pairs > 0:  # (each target's pair is set up anew, whatever --only says)
        say(f"\nTargets again, ours and the peer side by side, {args.pairs} pairs each:")
        lines = paired.run(TARGETS, args.pairs, args.pair_seconds, say, REFERENCES)
        say("")
        for line in lines:
            say(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
