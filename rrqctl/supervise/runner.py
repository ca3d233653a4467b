"""Running an engine in this process: open, serve the control socket, loop, clean up."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Iterator
from typing import TYPE_CHECKING

from rrqctl import logs
from rrqctl.engine.crypto import MIN_KEYFILE
from rrqctl.engine.loop import Engine
from rrqctl.errors import ConfigError, EngineError, Issue
from rrqctl.supervise.control import ControlServer, SocketInUseError
from rrqctl.system import notify, proc
from rrqctl.system.paths import Paths

if TYPE_CHECKING:
    from rrqctl.engine.settings import EngineSettings


def readable_keys(settings: EngineSettings) -> None:
    """Every key file readable by this process and long enough, before anything is opened."""
    issues = []
    for path in settings.keyfiles:
        try:
            with open(path, "rb") as f:
                size = len(f.read(MIN_KEYFILE))
        except OSError as e:
            issues.append(Issue(None, f"key file {path}: {e.strerror}"))
            continue
        if size < MIN_KEYFILE:
            issues.append(Issue(None, f"key file {path} is shorter than {MIN_KEYFILE} bytes"))
    if issues:
        raise ConfigError(issues)


def open_engine(engine: Engine) -> None:
    """engine.open(), with OS errors said in the cable's terms."""
    try:
        engine.open()
    except OSError as e:
        raise EngineError(describe_open_error(engine.settings, e)) from None
    except ValueError as e:  # (what the engine found wrong with what it was given)
        raise EngineError(str(e)) from None


def describe_open_error(cable: EngineSettings, e: OSError) -> str:
    if e.errno == errno.EADDRINUSE:
        return f"UDP port {cable.port} is already in use"
    if e.errno in (errno.EPERM, errno.EACCES) and e.filename == "/dev/net/tun":
        return "cannot open /dev/net/tun: need root (CAP_NET_ADMIN)"
    if e.errno == errno.EADDRNOTAVAIL:
        return f"cannot bind to source address {cable.source}: not an address of this host"
    what = e.filename or cable.name
    return f"{what}: {e.strerror or e}"


def control_server(engine: Engine, path: str | None) -> ControlServer | None:
    """The control socket at path ('none' = no socket; default RUN/NAME.sock)."""
    if path == "none":
        return None
    path = path or Paths().control(engine.settings.name)
    try:
        server = ControlServer(path, engine)
    except SocketInUseError as e:
        engine.log.warning("no control socket: %s", e)
        return None
    except OSError as e:
        engine.log.info("no control socket at %s: %s", path, e.strerror)
        return None
    server.start()
    return server


def quiet_stdio() -> None:
    """rrqnet(8): with a tap (or none), stdin and stdout are closed; stderr stays."""
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.close(null)


def handle_signals(engine: Engine) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: engine.stop())


def serve(cable: EngineSettings, control: str | None, prog: str) -> int:
    """The rrqnet command: one engine in the foreground until a signal or end of stdin."""
    readable_keys(cable)
    log = logs.setup(prog, cable.verbosity)
    engine = Engine(cable, log=log)
    open_engine(engine)
    server = None
    try:
        if cable.local != "stdio":
            quiet_stdio()
        server = control_server(engine, control)
        handle_signals(engine)
        log.info(
            "%s: UDP port %s, %d remote declarations", cable.name, cable.port, len(cable.remotes)
        )
        notify.notify("READY=1", f"STATUS={engine.summary()}")
        engine.run()
    finally:
        notify.notify("STOPPING=1")
        if server is not None:
            server.close()
        engine.close()
    if engine.failure:
        raise EngineError(engine.failure)
    return 0


class Readiness:
    """Say 'ready' (or why not) once: on the --ready-fd pipe and to systemd."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd
        self.said = False

    def _write(self, line: str) -> None:
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.write(self.fd, (line + "\n").encode())
                os.close(self.fd)
            self.fd = None

    def ready(self, status: str) -> None:
        if not self.said:
            self.said = True
            self._write("READY")
            notify.notify("READY=1", f"STATUS={status}")

    def fail(self, reason: str) -> None:
        if not self.said:
            self.said = True
            self._write("FAIL " + " ".join(reason.split()))


@contextlib.contextmanager
def pidfile(path: str) -> Iterator[None]:
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    other = proc.read_pidfile(path)
    if other is not None and other != os.getpid():
        raise EngineError(f"an engine (pid {other}) is already running for this cable ({path})")
    proc.write_pidfile(path, os.getpid())
    try:
        yield
    finally:
        if proc.read_pidfile(path) == os.getpid():
            proc.remove_file(path)
