"""Paired target checks: ours and the peer running side by side, measured in turn.

The table's verdicts compare two medians taken minutes apart, and this shared host's speed
drifts by 30 % and more within minutes. Here both tunnels of a target run at once, each in
its own pair of namespaces; short measurements alternate between them (who goes first
alternates too), and each neighbouring pair gives one ratio. A slow spell then falls on
both sides of a ratio alike. A target's verdict is the median ratio over the pairs, shown
with their range and how many pairs met it.
"""

from __future__ import annotations

import contextlib
import statistics
from collections.abc import Callable, Sequence

from bench.lab import Lab, lab
from bench.measure import rtt, tcp, udp_pps
from bench.tunnels import VARIANTS

Target = tuple[str, str, str, str, float, bool]  # what, ours, metric, peer, factor, higher
Reference = tuple[str, str, str, str]  # what, ours, metric, peer: measured, no verdict

METRICS: dict[str, Callable[[Lab, float], float]] = {
    "tcp1": tcp,
    "udp64": udp_pps,
    "rtt": lambda lb, seconds: rtt(lb, count=max(50, int(seconds * 100))),
}


def ratios(
    labs: dict[str, Lab], target: Target | Reference, pairs: int, seconds: float
) -> list[float]:
    _, ours, metric, peer = target[:4]
    measure = METRICS[metric]
    out = []
    for i in range(pairs):
        order = (ours, peer) if i % 2 == 0 else (peer, ours)
        got = {name: measure(labs[name], seconds) for name in order}
        out.append(got[ours] / got[peer])
    return out


def verdict(target: Target, rs: Sequence[float]) -> str:
    what, _, _, _, factor, higher = target
    met = [r >= factor if higher else r <= factor for r in rs]
    median = statistics.median(rs)
    ok = median >= factor if higher else median <= factor
    return (
        f"{'PASS' if ok else 'MISS'}  {what}: median {median:.2f}x over {len(rs)} pairs "
        f"(range {min(rs):.2f}-{max(rs):.2f}x; met in {sum(met)} of {len(rs)})"
    )


def reference(ref: Reference, rs: Sequence[float]) -> str:
    return (
        f"REF   {ref[0]}: median {statistics.median(rs):.2f}x over {len(rs)} pairs "
        f"(range {min(rs):.2f}-{max(rs):.2f}x)"
    )


def run(
    targets: Sequence[Target],
    pairs: int,
    seconds: float,
    say: Callable[[str], None],
    references: Sequence[Reference] = (),
) -> list[str]:
    """Set up every tunnel the targets and references name, then measure each in pairs."""
    pairings = [(t[1], t[3]) for t in targets] + [(r[1], r[3]) for r in references]
    names = sorted({name for pairing in pairings for name in pairing})
    with contextlib.ExitStack() as stack:
        labs: dict[str, Lab] = {}
        for name in names:
            labs[name] = lb = stack.enter_context(lab())
            VARIANTS[name][1](lb)
            lb.wait_overlay()
        lines = []
        for target in targets:
            rs = ratios(labs, target, pairs, seconds)
            say(f"pairs, {target[0]}: " + " ".join(f"{r:.2f}" for r in rs))
            lines.append(verdict(target, rs))
        for ref in references:
            rs = ratios(labs, ref, pairs, seconds)
            say(f"pairs, {ref[0]}: " + " ".join(f"{r:.2f}" for r in rs))
            lines.append(reference(ref, rs))
        return lines
