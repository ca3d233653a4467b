"""The control socket: one JSON request per connection, one JSON answer.

    {"cmd": "status"}   the cable's remotes, counters, MAC table and drops
    {"cmd": "counters"} the same without the MAC table (its size only)
    {"cmd": "summary"}  one line
    {"cmd": "metrics"}  Prometheus text exposition
    {"cmd": "reload"}   re-read the configuration (when the runner supports it)

Each connection is answered in a thread of its own (CLIENTS at most at once), so a slow
request, or a client that connects and says nothing, holds up no other. These threads never
touch engine state: they ask the loop thread (Engine.call). A request that waits for
something slower (a reload reads the configuration in a helper) is a blocking handler: it
runs in its connection's thread and reaches the engine itself.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rrqctl.errors import NotRunningError, RrqError
from rrqctl.supervise.metrics import metrics_text

if TYPE_CHECKING:
    from rrqctl.engine.loop import Engine

log = logging.getLogger("rrqctl.control")
REQUEST_MAX = 4096
TIMEOUT = 5.0
CLIENTS = 8  # connections answered at once; more wait in the listen queue


class SocketInUseError(OSError):
    pass


class ControlServer:
    def __init__(self, path: str, engine: Engine) -> None:
        self.path = path
        self.engine = engine
        self.handlers: dict[str, Callable[[], Any]] = {
            "status": engine.status,
            "counters": lambda: engine.status(macs=False),
            "summary": engine.summary,
            "metrics": lambda: metrics_text([engine.status(macs=False)]),
        }
        self.blocking: dict[str, Callable[[], Any]] = {}
        self.sock = _bind(path)
        self._thread = threading.Thread(target=self._serve, name="control", daemon=True)
        self._slots = threading.BoundedSemaphore(CLIENTS)
        self._closed = False

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed:
            self._slots.acquire()
            try:
                conn, _ = self.sock.accept()
            except OSError:
                self._slots.release()
                return
            threading.Thread(
                target=self._client, args=(conn,), name="control-client", daemon=True
            ).start()

    def _client(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.settimeout(TIMEOUT)
                self._answer(conn)
        except OSError as e:
            log.debug("control connection: %s", e)
        finally:
            self._slots.release()

    def _answer(self, conn: socket.socket) -> None:
        raw = conn.recv(REQUEST_MAX)
        try:
            req = json.loads(raw) if raw.strip().startswith(b"{") else {"cmd": raw.decode().strip()}
            cmd = str(req.get("cmd", "status"))
        except (ValueError, UnicodeDecodeError):
            cmd = ""
        handler = self.handlers.get(cmd)
        blocking = self.blocking.get(cmd)
        if handler is None and blocking is None:
            reply: dict[str, Any] = {
                "error": f"unknown request '{cmd}'",
                "known": sorted([*self.handlers, *self.blocking]),
            }
        else:
            try:
                if blocking is not None:
                    result = blocking()
                else:
                    assert handler is not None
                    result = self.engine.call(handler).result(TIMEOUT)
                reply = {"ok": True, "result": result}
            except Exception as e:  # the engine answers, or the client learns why not
                reply = {"error": f"{type(e).__name__}: {e}"}
        conn.sendall(json.dumps(reply).encode() + b"\n")

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                os.unlink(self.path)


def _bind(path: str) -> socket.socket:
    """Bind a unix socket at path; refuse to steal one that a live engine answers on."""
    os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
    if os.path.exists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # stale: nobody listens
        else:
            raise SocketInUseError(f"{path} is in use by another engine")
        finally:
            probe.close()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        s.bind(path)
    finally:
        os.umask(old)
    s.listen(8)
    return s


def query(path: str, cmd: str = "status", timeout: float = TIMEOUT) -> Any:
    """Ask the engine behind `path`; NotRunningError when nobody answers."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(json.dumps({"cmd": cmd}).encode())
        s.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    except (FileNotFoundError, ConnectionRefusedError):
        raise NotRunningError(f"no engine answers on {path}") from None
    except PermissionError:
        raise RrqError(f"{path}: permission denied (control sockets are root's)") from None
    except OSError as e:
        raise NotRunningError(f"{path}: {e.strerror or e}") from None
    finally:
        s.close()
    try:
        reply = json.loads(b"".join(chunks))
    except ValueError:
        raise NotRunningError(f"{path}: not an rrqctl control socket") from None
    if "error" in reply:
        raise NotRunningError(f"{path}: {reply['error']}")
    return reply["result"]
