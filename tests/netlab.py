"""A lab of network namespaces for real-kernel tests.

Every namespace, link and process a Lab makes carries its per-run prefix and is removed
when the Lab closes, whatever happened. Daemons are direct children, in the foreground.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent  # the venv's bin: rrqnet, rrqctl


class Proc:
    """A child process inside a namespace, stopped (TERM, then KILL) when the lab closes."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path, name: str) -> None:
        self.popen = popen
        self.log = log
        self.name = name

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


class Engine(Proc):
    """An rrqnet engine with a control socket."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path, name: str, control: Path) -> None:
        super().__init__(popen, log, name)
        self.control = control

    def query(self, cmd: str = "status") -> Any:
        from rrqctl.supervise.control import query

        return query(str(self.control), cmd)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = self.query("status")
        return result

    def remote(self, name: str) -> dict[str, Any]:
        for r in self.status()["remotes"]:
            if r["name"] == name:
                return dict(r)
        raise KeyError(name)

    def wait_ready(self, timeout: float = 10.0) -> None:
        wait_for(self._answers, timeout, f"engine {self.name} to answer", self)

    def _answers(self) -> bool:
        if not self.alive():
            raise AssertionError(
                f"engine {self.name} exited {self.popen.returncode}:\n{self.output()}"
            )
        try:
            self.status()
        except Exception:
            return False
        return True


def wait_for(
    cond: Callable[[], Any],
    timeout: float = 10.0,
    what: str = "condition",
    proc: Proc | None = None,
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            extra = f"\n--- {proc.name} output:\n{proc.output()}" if proc else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(0.05)


class Lab:
    def __init__(self) -> None:
        self.prefix = "rq" + secrets.token_hex(3)
        self.dir = Path(tempfile.mkdtemp(prefix=f"{self.prefix}-", dir="/tmp"))
        self.hosts: list[str] = []
        self.procs: list[Proc] = []
        self.cleanup_dirs: list[Path] = []  # made outside self.dir (a run dir per namespace)

    # ---- topology -------------------------------------------------------------------

    def host(self, name: str) -> str:
        ns = f"{self.prefix}-{name}"
        sh(["ip", "netns", "add", ns])
        self.hosts.append(ns)
        self.ip(ns, "link", "set", "lo", "up")
        return ns

    def ip(self, ns: str, *args: str) -> str:
        return sh(["ip", "-n", ns, *args])

    def link(
        self,
        a: str,
        b: str,
        a_addrs: Sequence[str] = (),
        b_addrs: Sequence[str] = (),
        a_if: str = "",
        b_if: str = "",
    ) -> tuple[str, str]:
        """A veth pair between hosts a and b, up, with addresses."""
        a_if = a_if or f"v{b.rsplit('-', 1)[1]}"[:15]
        b_if = b_if or f"v{a.rsplit('-', 1)[1]}"[:15]
        sh(
            [
                "ip",
                "link",
                "add",
                a_if,
                "netns",
                a,
                "type",
                "veth",
                "peer",
                "name",
                b_if,
                "netns",
                b,
            ]
        )
        for ns, ifname, addrs in ((a, a_if, a_addrs), (b, b_if, b_addrs)):
            for addr in addrs:
                self.ip(ns, "addr", "add", addr, "dev", ifname, *(["nodad"] if ":" in addr else []))
            self.ip(ns, "link", "set", ifname, "up")
        return a_if, b_if

    def segment(self, hosts: dict[str, str], ifname: str = "u0") -> str:
        """One Ethernet segment: a bridge in a namespace of its own, and on it each host
        (namespace -> address) through a veth named ifname, reverse-path filters off (so that
        tests may forge sources). Returns the switch's namespace."""
        sw = self.host("sw")
        self.ip(sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        self.ip(sw, "link", "set", "br0", "up")
        for i, (ns, addr) in enumerate(hosts.items()):
            port = f"s{i}"
            sh(
                [
                    "ip",
                    "link",
                    "add",
                    ifname,
                    "netns",
                    ns,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    port,
                    "netns",
                    sw,
                ]
            )
            self.ip(sw, "link", "set", port, "master", "br0")
            self.ip(sw, "link", "set", port, "up")
            self.ip(ns, "addr", "add", addr, "dev", ifname)
            self.ip(ns, "link", "set", ifname, "up")
            for conf in ("all", "default", ifname):
                sh(
                    [
                        "ip",
                        "netns",
                        "exec",
                        ns,
                        "sysctl",
                        "-qw",
                        f"net.ipv4.conf.{conf}.rp_filter=0",
                    ]
                )
        return sw

    def tap(
        self,
        ns: str,
        name: str = "tap0",
        addrs: Sequence[str] = (),
        mac: str = "",
        quiet: bool = False,
    ) -> str:
        """A persistent tap with addresses (the engine attaches to it). quiet: no IPv6, so
        the kernel sends nothing on its own (for tests that count frames)."""
        self.ip(ns, "tuntap", "add", "dev", name, "mode", "tap")
        if quiet:
            sh(["ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{name}.disable_ipv6=1"])
        if mac:
            self.ip(ns, "link", "set", name, "address", mac)
        for addr in addrs:
            self.ip(ns, "addr", "add", addr, "dev", name, *(["nodad"] if ":" in addr else []))
        self.ip(ns, "link", "set", name, "up")
        return name

    # ---- processes ------------------------------------------------------------------

    def spawn(
        self,
        ns: str,
        argv: Sequence[str],
        name: str,
        env: dict[str, str] | None = None,
        stdin: Any = subprocess.DEVNULL,
        stdout: Any = None,
    ) -> Proc:
        log = self.dir / f"{name}.log"
        with open(log, "wb") as f:
            p = subprocess.Popen(
                ["ip", "netns", "exec", ns, *argv],
                stdin=stdin,
                stdout=stdout if stdout is not None else f,
                stderr=f,
                env={**os.environ, **(env or {})},
            )
        proc = Proc(p, log, name)
        self.procs.append(proc)
        return proc

    def rrqnet(
        self,
        ns: str,
        args: Sequence[str] | str,
        name: str,
        ready: bool = True,
        env: dict[str, str] | None = None,
        wrap: Sequence[str] = (),
        **kw: Any,
    ) -> Engine:
        """Start `rrqnet ARGS` in ns with a control socket; wait until it answers. wrap: a
        command to run it under (as `faketime -f -30s`)."""
        if isinstance(args, str):
            args = args.split()
        control = self.dir / f"{name}.sock"
        env = {"RRQNET_CONTROL": str(control), **(env or {})}
        p = self.spawn(ns, [*wrap, str(BIN / "rrqnet"), *args], name, env=env, **kw)
        self.procs.remove(p)
        eng = Engine(p.popen, p.log, name, control)
        self.procs.append(eng)
        if ready:
            eng.wait_ready()
        return eng

    def rrqctl_args(self, ns: str) -> list[str]:
        """Private configuration places for host ns (nothing of the real host's); its
        interfaces file is empty until written (one named on the command line must exist)."""
        d = self.dir / ns
        d.mkdir(parents=True, exist_ok=True)
        if not (d / "interfaces").exists():
            (d / "interfaces").touch()
        for sub in ("conf.d", "network"):
            (d / sub).mkdir(exist_ok=True)
        return [
            "--interfaces",
            str(d / "interfaces"),
            "--run-dir",
            str(d / "run"),
            "--confd",
            str(d / "conf.d"),
            "--networkd-dir",
            str(d / "network"),
        ]

    def write_interfaces(self, ns: str, text: str) -> Path:
        d = self.dir / ns
        d.mkdir(exist_ok=True)
        (d / "interfaces").write_text(text)
        return d / "interfaces"

    def rrqctl(self, ns: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `rrqctl ARGS` in ns against ns's private configuration."""
        r = subprocess.run(
            ["ip", "netns", "exec", ns, str(BIN / "rrqctl"), *args, *self.rrqctl_args(ns)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check and r.returncode != 0:
            raise AssertionError(
                f"rrqctl {' '.join(args)} exited {r.returncode}:\n{r.stdout}{r.stderr}"
            )
        return r

    def run_dir(self, ns: str) -> Path:
        return self.dir / ns / "run"

    def links(self, ns: str) -> str:
        return self.ip(ns, "-br", "link")

    def pids(self, ns: str) -> list[int]:
        r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        return [int(p) for p in r.stdout.split()]

    def ping(self, ns: str, addr: str, count: int = 3, timeout: float = 10.0) -> bool:
        """True when every echo got a reply (retrying until timeout: ARP/ND must settle)."""
        deadline = time.monotonic() + timeout
        while True:
            r = subprocess.run(
                ["ip", "netns", "exec", ns, "ping", "-c", str(count), "-i", "0.2", "-W", "1", addr],
                capture_output=True,
                text=True,
            )
            if r.returncode == 0:
                return True
            if time.monotonic() > deadline:
                return False

    def send_frame(self, ns: str, ifname: str, frame: bytes) -> None:
        """Put one raw Ethernet frame on ifname in ns (an AF_PACKET socket)."""
        code = (
            "import socket,sys; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW);"
            f"s.bind(({ifname!r}, 0)); s.send(bytes.fromhex(sys.argv[1]))"
        )
        sh(["ip", "netns", "exec", ns, sys.executable, "-c", code, frame.hex()])

    def dnsmasq(self, ns: str, ifname: str, first: str, last: str) -> tuple[Proc, Path, Path]:
        """A DHCP server on ifname in ns (foreground, our child). Returns (proc, log, leases)."""
        log, leases = self.dir / f"dnsmasq-{ifname}.log", self.dir / f"dnsmasq-{ifname}.leases"
        p = self.spawn(
            ns,
            [
                "dnsmasq",
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--port=0",
                f"--interface={ifname}",
                "--bind-interfaces",
                "--except-interface=lo",
                "--no-ping",
                f"--dhcp-range={first},{last},255.255.255.0,1h",
                "--dhcp-authoritative",
                f"--dhcp-leasefile={leases}",
                f"--pid-file={self.dir}/dnsmasq-{ifname}.pid",
                "--log-dhcp",
                f"--log-facility={log}",
            ],
            f"dnsmasq-{ifname}",
        )
        wait_for(lambda: log.exists() and "started" in log.read_text(), 5, "dnsmasq to start", p)
        return p, log, leases

    def keyfile(self, name: str = "key", size: int = 64) -> str:
        path = self.dir / name
        path.write_bytes(os.urandom(size))
        path.chmod(0o600)
        return str(path)

    # ---- cleanup --------------------------------------------------------------------

    def close(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        for ns in self.hosts:  # daemons that detached themselves (engines of `up`, dhclient)
            r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in r.stdout.split():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGKILL)
        for ns in reversed(self.hosts):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for d in [self.dir, *self.cleanup_dirs]:
            shutil.rmtree(d, ignore_errors=True)


def in_private_mounts(
    ns: str, script: str, argv0: str, *args: str, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run sh script (with $0 argv0 and "$@" args) in netns ns, in a mount namespace of its
    own: its bind mounts are gone when it ends and the host never sees them."""
    unshare = ["unshare", "--mount", "--propagation", "private"]
    return subprocess.run(
        ["ip", "netns", "exec", ns, *unshare, "sh", "-c", script, argv0, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def nobody_can_run_rrqctl() -> bool:
    """Whether user nobody can start this checkout's rrqctl (not when the checkout lies in a
    directory only root may enter, as one made by mktemp -d)."""
    try:
        r = subprocess.run(
            ["runuser", "-u", "nobody", "--", sys.executable, "-c", "import rrqctl"],
            capture_output=True,
            check=False,
        )
    except OSError:  # (no runuser, or not root: those tests say so themselves)
        return False
    return r.returncode == 0


NOT_FOR_NOBODY = "user nobody cannot reach this checkout (a parent directory is root's alone)"


def sh(argv: Sequence[str]) -> str:
    r = subprocess.run(list(argv), capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: rc={r.returncode}: {r.stderr.strip()}")
    return r.stdout


@contextlib.contextmanager
def lab() -> Iterator[Lab]:
    lb = Lab()
    try:
        yield lb
    finally:
        lb.close()


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, sort_keys=True)
