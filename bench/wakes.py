"""python -m bench.wakes: where one ping's time goes in the far end's tunnel process.

Ping RTT on a shared VM is too noisy to explain (see the README), but each of its parts
is not. The far end of a cable wakes once per ping: a datagram comes in, its frame goes to
the tap, the kernel answers the ping at once, and the reply goes back out. This traces that
process's system calls with perf (tracepoints raw_syscalls and sched_switch, nothing
sampled) while ping runs, and prints, per step of the usual wake, the median time spent in
the kernel and in the process's own code (user) between two calls. Needs root, perf
(Debian: linux-perf) and what `make bench` installs; knows x86_64's system-call numbers.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
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

from bench.lab import OVERLAY, Lab, lab, sh
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
LINE = re.compile(
    r"\s(\d+\.\d+):\s+(?:raw_syscalls:sys_(enter|exit)|sched:(sched_switch))\S*\s*(?:NR (\d+))?"
)

Step = tuple[str, float]  # ("user -> read" or "read", microseconds)


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


def wakes(script: str) -> list[list[Step]]:
    """perf script's text as wakes: from a wait that slept to the next one that does."""
    out: list[list[Step]] = []
    cur: list[Step] | None = None
    slept = False
    entered = left = 0.0
    for line in script.splitlines():
        m = LINE.search(line)
        if m is None:
            continue
        t = float(m.group(1)) * 1e6
        if m.group(3):
            slept = True
            continue
        name = SYSCALLS.get(int(m.group(4) or -1), f"syscall {m.group(4)}")
        if m.group(2) == "enter":
            if cur is not None:
                cur.append((f"user -> {name}", t - left))
            entered = t
            continue
        if name in WAITS and slept:
            cur = []
            out.append(cur)
        elif cur is not None:
            cur.append((name, t - entered))
        slept = False
        left = t
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


def trace(lb: Lab, pid: int, pings: int, data: Path) -> str:
    """perf script of pid's system calls while `pings` pings cross the cable."""
    rec = subprocess.Popen(
        ["perf", "record", "-q", "-o", str(data), "-e", EVENTS, "-p", str(pid)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        time.sleep(1.0)
        if rec.poll() is not None:
            raise RuntimeError(f"perf record: {rec.communicate()[1].decode().strip()}")
        lb.run(0, "ping", "-c", str(pings), "-i", "0.01", "-q", OVERLAY[1])
    finally:
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=30)
    return sh("perf", "script", "-i", str(data)).stdout


def report(name: str, s: Summary | None) -> Iterable[str]:
    if s is None:
        yield f"{name}: no wakes seen"
        return
    yield f"{VARIANTS[name][0]}: {s.wakes} of {s.of} wakes in this shape, medians in us"
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
    with tempfile.TemporaryDirectory(prefix="rqbench-wakes-") as tmp:
        for name in args.variants or DEFAULT:
            with lab() as lb:
                pids = VARIANTS[name][1](lb)
                lb.wait_overlay()
                if len(pids) != 2:
                    print(f"{name}: no tunnel process to trace")
                    continue
                script = trace(lb, pids[1], args.pings, Path(tmp) / f"{name}.data")
            for line in report(name, summarize(wakes(script))):
                print(line, flush=True)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
