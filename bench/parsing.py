"""python -m bench.parsing: `rrqctl show` on generated interfaces files of 1k, 10k and 50k
cable stanzas (the real command, as an admin runs it): time and peak memory, each the best of
three runs. Reading is linear; 50k stanzas take under 2 s on the bench machine."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

SIZES = (1000, 10_000, 50_000)
TARGET_50K = 2.0  # s


def stanzas(n: int, key: Path | None = None) -> str:
    """n cables: auto, iface, port and a remote each; with key, as the README writes one:
    an address, the remote sealed, a log file (twice the text)."""
    out = []
    for i in range(n):
        a, b = i // 256 % 256, i % 256
        port = f"    rrqnet_port {1024 + i % 60000}\n"
        if key is None:
            remote = f"    rrqnet_remote 10.200.{a}.{b}:3636\n"
            out.append(f"auto net{i}\niface net{i} inet manual\n{port}{remote}\n")
            continue
        out.append(
            f"auto net{i}\niface net{i} inet static\n    address 10.{i >> 16}.{a}.{b}/24\n"
            f"{port}    rrqnet_remote 10.200.{a}.{b}:3636={key}\n"
            f"    rrqnet_log -v /var/log/rrqnet/net{i}.log\n\n"
        )
    return "".join(out)


def show(path: Path) -> tuple[float, int]:
    """Seconds and peak KB of `rrqctl show` on the interfaces file at path."""
    bin_dir = Path(sys.executable).parent
    argv = [str(bin_dir / "rrqctl"), "show", "--interfaces", str(path)]
    (path.parent / "none").mkdir(exist_ok=True)
    argv += ["--confd", str(path.parent / "none"), "--networkd-dir", str(path.parent / "none")]
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%e %M", *argv],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=True,
    )
    m = re.search(r"([\d.]+) (\d+)\s*$", done.stderr)
    assert m, done.stderr
    return float(m.group(1)), int(m.group(2))


def main() -> int:
    print("rrqctl show on generated interfaces files (best of 3 runs):")
    verdicts = []
    with tempfile.TemporaryDirectory(prefix="rrq-parse-") as d:
        key = Path(d) / "key"
        key.write_bytes(bytes(64))
        key.chmod(0o600)
        for kind, with_key in (("port and remote", None), ("as in the README", key)):
            for n in SIZES:
                path = Path(d) / f"interfaces{n}"
                path.write_text(stanzas(n, with_key))
                seconds, kb = min(show(path) for _ in range(3))
                size = path.stat().st_size / 1e6
                print(
                    f"  {n:>6} stanzas {kind} ({size:.1f} MB): {seconds:.2f} s, "
                    f"{kb / 1024:.0f} MB peak"
                )
                if n == 50_000:
                    ok = "PASS" if seconds < TARGET_50K else "MISS"
                    verdicts.append(
                        f"{ok}  50k stanzas {kind} in under {TARGET_50K:.0f} s: {seconds:.2f} s"
                    )
    for v in verdicts:
        print(v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
