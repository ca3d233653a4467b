"""`rrqctl demo`: a real sealed cable between two network namespaces, pinged and shown.

Everything it makes (namespaces, links, key, engines) carries one random prefix and is
removed at the end, also on Ctrl-C or failure.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from types import FrameType

from rrqctl.engine.crypto import generate_keyfile
from rrqctl.errors import ActionError, RrqError
from rrqctl.supervise.control import query
from rrqctl.system import netlink, proc
from rrqctl.view import status_text

PORT = 3636
UNDERLAY = ("10.201.0.1", "10.201.0.2")
OVERLAY = ("10.202.0.1", "10.202.0.2")


class Demo:
    def __init__(self, say: Callable[[str], None] = print) -> None:
        self.say = say
        self.prefix = "rrqdemo-" + secrets.token_hex(2)
        self.hosts = (f"{self.prefix}-a", f"{self.prefix}-b")
        self.dir = tempfile.mkdtemp(prefix=f"{self.prefix}-")
        self.engines: list[subprocess.Popen[bytes]] = []
        self.made_ns: list[str] = []

    def step(self, text: str) -> None:
        self.say(f"[#] {text}")

    def build(self) -> None:
        a, b = self.hosts
        for ns in self.hosts:
            self.step(f"ip netns add {ns}")
            netlink.create_netns(ns)
            self.made_ns.append(ns)
            netlink.set_up("lo", ns)
        self.step(f"ip link add ua netns {a} type veth peer name ub netns {b}")
        netlink.create_veth("ua", "ub", a, b)
        for ns, ifname, addr in ((a, "ua", UNDERLAY[0]), (b, "ub", UNDERLAY[1])):
            self.step(
                f"ip -n {ns} addr add {addr}/24 dev {ifname}; ip -n {ns} link set {ifname} up"
            )
            netlink.add_address(ifname, f"{addr}/24", ns)
            netlink.set_up(ifname, ns)
        for ns, addr in ((a, OVERLAY[0]), (b, OVERLAY[1])):
            self.step(
                f"ip -n {ns} tuntap add dev tap0 mode tap; ip -n {ns} addr add {addr}/24 dev tap0"
            )
            netlink.create_tap("tap0", ns)
            netlink.add_address("tap0", f"{addr}/24", ns)
            netlink.set_up("tap0", ns)

    def start(self) -> str:
        key = os.path.join(self.dir, "cable.key")
        self.step(f"rrqctl genkey {key}   # 64 random bytes, mode 0600, copied to both ends")
        generate_keyfile(key)
        for ns, peer, name in (
            (self.hosts[0], UNDERLAY[1], "a"),
            (self.hosts[1], UNDERLAY[0], "b"),
        ):
            argv = ["-v", "-t", "tap0", str(PORT), f"{peer}:{PORT}={key}"]
            self.step(f"ip netns exec {ns} rrqnet {' '.join(argv)} &")
            env = {**os.environ, "RRQNET_CONTROL": self.control(name)}
            log = open(os.path.join(self.dir, f"{name}.log"), "wb")  # noqa: SIM115 (closed by exit)
            self.engines.append(
                proc.spawn(
                    ["ip", "netns", "exec", ns, *proc.python_module("rrqctl.rrqnet"), *argv],
                    stdout=log.fileno(),
                    stderr=log.fileno(),
                    env=env,
                )
            )
            log.close()
        for name in ("a", "b"):
            self._wait_ready(name)
        return key

    def control(self, name: str) -> str:
        return os.path.join(self.dir, f"{name}.sock")

    def _wait_ready(self, name: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                query(self.control(name))
                return
            except RrqError:
                dead = [e for e in self.engines if e.poll() is not None]
                if dead or time.monotonic() > deadline:
                    with open(os.path.join(self.dir, f"{name}.log")) as f:
                        raise ActionError(f"engine {name} did not start:\n{f.read()}") from None
                time.sleep(0.05)

    def ping(self) -> bool:
        self.step(f"ip netns exec {self.hosts[0]} ping -c 3 {OVERLAY[1]}")
        r = proc.run(
            [
                "ip",
                "netns",
                "exec",
                self.hosts[0],
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                OVERLAY[1],
            ],
            check=False,
        )
        for line in r.stdout.splitlines():
            self.say(f"    {line}")
        return r.returncode == 0

    def show(self) -> None:
        for name, ns in zip(("a", "b"), self.hosts, strict=True):
            self.say(f"\n--- rrqctl status, in {ns}:")
            self.say(status_text(query(self.control(name))))

    def clean(self) -> None:
        for e in self.engines:
            proc.terminate(e.pid)
            e.wait()
        for ns in reversed(self.made_ns):
            netlink.delete_netns(ns)
        shutil.rmtree(self.dir, ignore_errors=True)
        if self.made_ns:
            self.say(f"\n[#] removed {', '.join(self.made_ns)} and everything in them")


def interrupt_on_sigterm() -> None:
    """SIGTERM, like Ctrl-C, unwinds this process (so the demo cleans up) - this one only.

    pyroute2 forks a child to reach a namespace and stops it with SIGTERM; the child
    inherits this handler. It must die as by default, never unwind into clean() and remove
    the namespaces under the demo's feet (it did, on a loaded host, nearly every time)."""
    me = os.getpid()

    def interrupted(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != me:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)


def run_demo() -> int:
    if os.geteuid() != 0:
        raise ActionError("the demo makes network namespaces and taps: run it as root")

    interrupt_on_sigterm()
    demo = Demo()
    try:
        demo.build()
        demo.start()
        ok = demo.ping()
        demo.show()
    finally:
        demo.clean()
    if not ok:
        raise ActionError("ping did not cross the cable")
    print("\nThe sealed cable carried the pings; both ends are gone again.")
    return 0
