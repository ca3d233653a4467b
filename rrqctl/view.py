"""Text a person reads: cable status tables, action lines. Pure functions of plain data."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator, Sequence
from typing import Any, TextIO


def table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    """Left-aligned columns; the first row is the header."""
    if not rows:
        return []
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    if len(widths) == 3:  # (`rrqctl show`'s, once a cable: the short way)
        w0, w1 = widths[0] + 2, widths[1] + 2
        return [f"{indent}{a:<{w0}}{b:<{w1}}{c}".rstrip() for a, b, c in rows]
    # each cell padded to its column's width and two spaces, but the last, left as it is
    last = len(widths) - 1
    formats = "".join(f"{{:<{w + 2}}}" for w in widths[:last]) + "{}"
    return [(indent + formats.format(*r)).rstrip() for r in rows]


def size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def ago(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 60:
        return f"{seconds:.1f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def duration(seconds: float) -> str:
    s = int(seconds)
    if s < 60:
        return f"{seconds:.0f}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def drops_text(drops: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in drops.items()) or "none"


def status_text(st: dict[str, Any]) -> str:
    """One cable's live status, as `rrqctl status` prints it."""
    local = st.get("local")
    if local is None:
        local_text = "none (a switch among its remotes)"
    else:
        rx = f"{local['rx_frames']} frames ({size(local['rx_bytes'])})"
        tx = f"{local['tx_frames']} frames ({size(local['tx_bytes'])})"
        mtu = f" (MTU {local['mtu']})" if local.get("mtu") else ""
        local_text = f"{local['kind']} {local['name']}{mtu}: in {rx}, out {tx}"
    usage = ""
    if "rss_bytes" in st:  # an engine started before an upgrade may not say
        usage = f", {size(st['rss_bytes'])} resident, {st['cpu_seconds']:.1f} s CPU"
    lines = [
        f"cable {st['name']}: pid {st['pid']}, up {duration(st['uptime'])}, UDP port {st['port']}"
        f"{usage}",
        f"  local: {local_text}",
    ]
    if "datapath" in st:  # an engine started before an upgrade may not say
        fast = st.get("fast_frames", 0)
        lines.append(
            "  datapath: C (rrqctl/engine/fastpath.c), "
            f"{fast} frames forwarded in C; the rest in Python"
            if st["datapath"] == "c"
            else "  datapath: Python"
        )
    remotes = st["remotes"]
    if remotes:
        rows = [["REMOTE", "KIND", "STATE", "SEALED", "PATH MTU", "HEARD", "IN", "OUT", "DROPPED"]]
        for r in remotes:
            rows.append(
                [
                    r["name"],
                    r["kind"],
                    r["state"],
                    "yes" if r["sealed"] else "no",
                    str(r.get("path_mtu") or "-"),
                    ago(r["last_heard"]),
                    f"{r['rx_frames']} ({size(r['rx_bytes'])})",
                    f"{r['tx_frames']} ({size(r['tx_bytes'])})",
                    str(sum(r["drops"].values())),
                ]
            )
        lines += table(rows)
    else:
        lines.append(
            "  remotes: none known yet (declared: " + (", ".join(st["declared"]) or "none") + ")"
        )
    for u in st.get("unresolved", ()):  # an engine started before an upgrade does not say
        lines.append(f"  {u['name']}: not resolved ({u['error']}); trying again every 15s")
    stale = [r for r in remotes if r.get("stale_reason")]
    for r in stale:
        lines.append(f"  {r['name']} is {r['state']}: {r['stale_reason']}")
    macs = st["macs"]
    lines.append(f"  MACs learned: {len(macs)}")
    lines += table(
        [["MAC", "CHANNEL", "SEEN"]] + [[m["mac"], m["channel"], ago(m["age"])] for m in macs],
        "    ",
    )
    lines.append(f"  dropped: {drops_text(st['drops'])}")
    return "\n".join(lines)


def _cable_rows(c: Any) -> list[list[str]]:
    """(what, value, where) rows for one cable, in the order a reader wants them."""
    rows: list[list[str]] = []

    def add(what: str, value: str, field: str) -> None:
        rows.append([what, value, c.origins.get(field, "")])

    add(
        "port",
        f"{c.port}" + (" (notap: no tap, a switch among remotes)" if c.local == "none" else ""),
        "port",
    )
    for i, r in enumerate(c.remotes):
        notes = r.kind
        if r.keyfile:
            notes += ", sealed"
        if r.ignore:
            notes += f", ignores {len(r.ignore)} MACs"
        add("remote", f"{r.text()} ({notes})", f"remotes[{i}]")
    if c.multicast is not None:
        add("multicast", c.multicast.text(), "multicast")
    flags = [f for f, on in (("-tpg", c.tpg), ("-4", c.ipv4_only)) if on]
    if c.buffers is not None or c.threads is not None or c.source is not None:
        flags += [
            f"{o} {v}"
            for o, v in (("-B", c.buffers), ("-T", c.threads), ("-S", c.source))
            if v is not None
        ]
    if flags:
        option_fields = ("tpg", "ipv4_only", "buffers", "threads", "source")
        add("options", " ".join(flags), next((f for f in option_fields if f in c.origins), ""))
    if c.log is not None:
        add("log", f"{'-' + 'v' * c.verbosity + ' ' if c.verbosity else ''}{c.log.target}", "log")
    elif c.verbosity:
        add("log", "-" + "v" * c.verbosity, "verbosity")
    for what, value in (
        ("nice", c.nice),
        ("bridge", c.bridge),
        ("mac", c.mac),
        ("mtu", c.mtu),
    ):
        if value is not None:
            add(what, str(value), what)
    for i, address in enumerate(c.addresses):
        add("address", str(address), f"addresses[{i}]")
    if c.dhcp is not None:
        add("dhcp", " ".join([c.dhcp.method, *c.dhcp.args]), "dhcp")
    return rows


def show_text(cables: Sequence[Any]) -> str:
    """`rrqctl show`: each cable, its rrqnet command line, and where every value came from."""
    return "\n\n".join(show_chunks(cables))


def write_show(cables: Sequence[Any], out: TextIO) -> None:
    """show_text, written as it is made (50k cables are 25 MB of text: never held whole)."""
    chunks = show_chunks(cables)
    while batch := list(itertools.islice(chunks, 512)):  # (a write per cable costs 10 %)
        out.write("\n\n".join(batch) + ("\n\n" if len(batch) == 512 else "\n"))


def show_chunks(cables: Sequence[Any]) -> Iterator[str]:
    """One text per cable (without its last newline; a blank line goes between two)."""
    import gc

    gc.disable()  # (many short strings, no cycles: see config/sources.py load)
    try:
        for c in cables:
            yield _cable_text(c)
    finally:
        gc.enable()


def _cable_text(c: Any) -> str:
    owner = ", tap/bridge/DHCP owned by systemd-networkd" if c.owner == "networkd" else ""
    start = f", started by ifup ({'/'.join(c.start)})" if c.start else ""
    rows = _cable_rows(c)
    w0 = max(7, *[len(r[0]) for r in rows]) + 2  # "SETTING": 7
    w1 = max(5, *[len(r[1]) for r in rows]) + 2  # "VALUE": 5
    lines = [f"  {a:<{w0}}{b:<{w1}}{f}".rstrip() for a, b, f in [_HEADER, *rows]]
    return (
        f"{c.name}: {c.kind} cable declared at {c.origin}{owner}{start}\n"
        f"  engine: {' '.join(c.rrqnet_argv())}\n" + "\n".join(lines)
    )


_HEADER = ["SETTING", "VALUE", "FROM"]


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=False)
    sys.stdout.write("\n")
