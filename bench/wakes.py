"""python -m bench.wakes: where one ping's round trip goes, process by process.

Ping RTT on a shared VM is too noisy to explain (see the README), but each of its parts
is not. A ping wakes the tunnel processes three times: the near end reads the request from
its tap and sends a datagram; the far end reads it, writes the frame to its tap, where the
kernel answers at once, reads the reply and sends it back; the near end writes that to its
tap, where ping gets it. This traces the whole machine's system calls with perf
(tracepoints raw_syscalls and sched_switch, nothing sampled) while ping runs, and prints:

- the round trip cut into those stretches, and the waits for a process to wake between
  them (medians over the pings);
- the far end's wake step by step: the time in each system call, and in the process's own
  code (user) between two calls.

Tracing costs time too: the round trip under it (ping's own average) is printed beside the
one measured just before without it. Needs root, perf (Debian: linux-perf) and what
`make bench` installs; knows x86_64's system-call numbers.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import contextlib
import itertools
import os
import re
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.lab import Lab, lab, sh
from bench.measure import rtt
from bench.tunnels import VARIANTS

DEFAULT = ("tinc-none", "rrqctl-plain", "rrqctl-sealed")
EVENTS = "raw_syscalls:sys_enter,raw_syscalls:sys_exit,sched:sched_switch"
WAITS = frozenset({"epoll_wait", "pselect6", "poll", "select", "ppoll", "epoll_pwait"})
# x86_64 numbers of the calls a tunnel makes per frame
SYSCALLS = {
    0: "read",
    1: "write",
    7: "poll",
    20: "writev",
    23: "select",
    44: "sendto",
    45: "recvfrom",
    46: "sendmsg",
    47: "recvmsg",
    232: "epoll_wait",
    270: "pselect6",
    271: "ppoll",
    281: "epoll_pwait",
}
SENDS = frozenset({"sendto", "sendmsg"})
PING_RECEIVES = frozenset({"recvmsg"})
TAP_WRITES = frozenset({"write", "writev"})
# perf script's default line: comm, pid, [cpu], seconds, event, then "NR n" for a syscall
LINE = re.compile(
    r"^\s*(.+?)\s+(\d+)\s+\[\d+\]\s+(\d+\.\d+):\s+"
    r"(?:raw_syscalls:sys_(enter|exit)|sched:(sched_switch))\S*\s*(?:NR (\d+))?"
)
STRETCHES = (
    "ping sends -> near end wakes",
    "near end: tap -> datagram",
    "-> far end wakes",
    "far end: datagram -> tap -> datagram",
    "-> near end wakes",
    "near end: datagram -> tap",
    "-> ping wakes with the reply",
    "= round trip",
)

Step = tuple[str, float]  # ("user -> read" or "read", microseconds)


@dataclass(frozen=True)
class Event:
    t: float  # microseconds
    comm: str
    pid: int
    what: str  # "enter", "exit" or "switch" (the process stops running)
    call: str  # the system call's name; "" for a switch

    def is_exit(self, calls: frozenset[str]) -> bool:
        return self.what == "exit" and self.call in calls


@dataclass
class Summary:
    shape: tuple[str, ...]
    medians: list[float]
    wakes: int
    of: int

    def total(self, user: bool) -> float:
        """Time per wake in the process's own code (user) or in its system calls."""
        steps = zip(self.shape, self.medians, strict=True)
        return sum(m for s, m in steps if s.startswith("user") == user)


@dataclass
class Result:
    name: str
    rtt_untraced: float  # ping's average, ms
    rtt_traced: float
    stretches: dict[str, float]  # medians, microseconds
    pings: int
    far: Summary | None


def events(script: str) -> list[Event]:
    """perf script's text as events, in time order."""
    out = []
    for line in script.splitlines():
        m = LINE.match(line)
        if m is None:
            continue
        comm, pid, t, direction, switch, nr = m.groups()
        call = "" if switch else SYSCALLS.get(int(nr or -1), f"syscall {nr}")
        out.append(Event(float(t) * 1e6, comm, int(pid), direction or "switch", call))
    return out


def wakes(trace: Iterable[Event]) -> list[list[Step]]:
    """One process's events as wakes: from a wait that slept to the next one that does."""
    out: list[list[Step]] = []
    cur: list[Step] | None = None
    slept = False
    entered = left = 0.0
    for e in trace:
        if e.what == "switch":
            slept = True
            continue
        if e.what == "enter":
            if cur is not None:
                cur.append((f"user -> {e.call}", e.t - left))
            entered = e.t
            continue
        if e.call in WAITS and slept:
            cur = []
            out.append(cur)
        elif cur is not None:
            cur.append((e.call, e.t - entered))
        slept = False
        left = e.t
    return out


def summarize(found: Sequence[list[Step]]) -> Summary | None:
    """The most common shape of wake (its steps in order), with each step's median."""
    steady = found[3:-1]  # the first wakes may still be setting up; the last is cut short
    shapes = collections.Counter(tuple(s for s, _ in w) for w in steady)
    if not shapes:
        return None
    shape, n = shapes.most_common(1)[0]
    same = [w for w in steady if tuple(s for s, _ in w) == shape]
    columns = zip(*([v for _, v in w] for w in same), strict=True)
    medians = [statistics.median(col) for col in columns]
    return Summary(shape, medians, n, len(steady))


def round_trip(ping: Sequence[Event], near: Sequence[Event], far: Sequence[Event]) -> list[float]:
    """One ping's stretches (see STRETCHES), or [] if its trace is not the usual one.

    `ping` starts at the request's sendto; the near end's events up to the far end's
    first are its first stretch, those after the far end's last datagram out its second.
    """
    t0 = ping[0].t
    replies = [e.t for e in ping if e.is_exit(PING_RECEIVES)]
    if not replies:
        return []
    t_end = replies[0]
    far = [e for e in far if e.t <= t_end]
    far_sends = [e.t for e in far if e.is_exit(SENDS)]
    if not far or not far_sends:
        return []
    f0, f1 = far[0].t, far_sends[-1]
    before = [e for e in near if t0 <= e.t < f0]
    after = [e for e in near if f1 < e.t <= t_end]
    sent = [e.t for e in before if e.is_exit(SENDS)]
    written = [e.t for e in after if e.is_exit(TAP_WRITES)]
    if not sent or not written:
        return []
    n0, n2 = before[0].t, after[0].t
    marks = (t0, n0, sent[-1], f0, f1, n2, written[-1], t_end)
    return [b - a for a, b in itertools.pairwise(marks)] + [t_end - t0]


def timeline(trace: Sequence[Event], near: int, far: int) -> list[list[float]]:
    """Every ping's stretches, from a machine-wide trace; the first and last are left out."""
    ping = [e for e in trace if e.comm == "ping"]
    starts = [i for i, e in enumerate(ping) if e.what == "enter" and e.call == "sendto"]
    times = [e.t for e in trace]
    out = []
    for i, j in itertools.pairwise(starts):
        window = trace[bisect.bisect_left(times, ping[i].t) : bisect.bisect_left(times, ping[j].t)]
        row = round_trip(
            ping[i:j], [e for e in window if e.pid == near], [e for e in window if e.pid == far]
        )
        if row:
            out.append(row)
    return out[3:-1]


def record(lb: Lab, pings: int, data: Path) -> tuple[float, str]:
    """ping's average while `pings` cross the cable, and perf script of the whole machine's
    system calls meanwhile."""
    rec = subprocess.Popen(
        ["perf", "record", "-q", "-a", "-o", str(data), "-e", EVENTS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        if rec.poll() is not None:
            raise RuntimeError(f"perf record: {rec.communicate()[1].decode().strip()}")
        out = rtt(lb, pings)
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=60)
    return out, sh("perf", "script", "-i", str(data)).stdout


def measure(name: str, lb: Lab, pids: Sequence[int], pings: int, tmp: Path) -> Result:
    untraced = rtt(lb, pings)
    traced, script = record(lb, pings, tmp / f"{name}.data")
    trace = events(script)
    rows = timeline(trace, *pids)
    far = summarize(wakes(e for e in trace if e.pid == pids[1]))
    columns = zip(*rows, strict=True)
    medians = {s: statistics.median(c) for s, c in zip(STRETCHES, columns, strict=False)}
    return Result(name, untraced, traced, medians, len(rows), far)


def report(results: Sequence[Result]) -> Iterable[str]:
    width = max(len(s) for s in STRETCHES)
    yield "Round trip, medians in us: " + ", ".join(
        f"{r.name} over {r.pings} pings" for r in results
    )
    yield f"  {'':<{width}} " + " ".join(f"{r.name:>14}" for r in results)
    for s in STRETCHES:
        cells = (f"{r.stretches[s]:14.0f}" if s in r.stretches else f"{'-':>14}" for r in results)
        yield f"  {s:<{width}} " + " ".join(cells)
    averages = {
        "ping's average, untraced, ms": [r.rtt_untraced for r in results],
        "traced": [r.rtt_traced for r in results],
    }
    for label, values in averages.items():
        yield f"  {label:<{width}} " + " ".join(f"{v:14.3f}" for v in values)
    for r in results:
        yield from far_end(r.name, r.far)


def far_end(name: str, s: Summary | None) -> Iterable[str]:
    if s is None:
        yield f"{name}: no wakes of the far end seen"
        return
    yield f"{VARIANTS[name][0]}, far end: {s.wakes} of {s.of} wakes in this shape, medians in us"
    for step, m in zip(s.shape, s.medians, strict=True):
        yield f"  {step:<22} {m:8.1f}"
    yield f"  {'= user, kernel':<22} {s.total(True):8.0f} {s.total(False):8.0f}"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.wakes", description=__doc__)
    p.add_argument(
        "variants", nargs="*", help=f"of {', '.join(sorted(VARIANTS))} (default: {DEFAULT})"
    )
    p.add_argument("--pings", type=int, default=300, help="pings per variant (default 300)")
    args = p.parse_args(argv)
    if unknown := set(args.variants) - set(VARIANTS):
        p.error(f"no such variant: {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        p.error("needs root (network namespaces, taps, perf tracepoints)")
    if shutil.which("perf") is None:
        p.error("needs perf (Debian: linux-perf; `tools/bootstrap.sh bench` installs it)")
    results = []
    with tempfile.TemporaryDirectory(prefix="rqbench-wakes-") as tmp:
        for name in args.variants or DEFAULT:
            with lab() as lb:
                pids = VARIANTS[name][1](lb)
                lb.wait_overlay()
                if len(pids) != 2:
                    print(f"{name}: no tunnel process to trace")
                    continue
                results.append(measure(name, lb, pids, args.pings, Path(tmp)))
                print(f"{name}: traced", flush=True)
    for line in report(results) if results else ():
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
