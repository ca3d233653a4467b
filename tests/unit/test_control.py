"""The control socket of a running engine (in-process, on a real unix socket)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rrqctl.engine.loop import Engine
from rrqctl.errors import NotRunningError
from rrqctl.model import build_cable
from rrqctl.supervise.control import CLIENTS, ControlServer, query
from tests.unit.test_engine_timing import free_port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ControlServer]:
    cable = build_cable(
        {"name": "t", "port": free_port(), "local": "none", "ipv4_only": True, "remotes": []}
    )
    engine = Engine(cable.engine_settings())
    engine.open()
    loop = threading.Thread(target=engine.run)
    loop.start()
    srv = ControlServer(str(tmp_path / "t.sock"), engine)
    srv.start()
    yield srv
    srv.close()
    engine.stop()
    loop.join(5)
    engine.close()
    assert not loop.is_alive()


def silent_client(path: str) -> socket.socket:
    """A client that connects and never sends its request."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def test_clients_that_say_nothing_hold_up_no_status(server: ControlServer) -> None:
    quiet = [silent_client(server.path) for _ in range(CLIENTS - 1)]
    try:
        assert query(server.path, timeout=2.0)["remotes"] == []  # not 5 s behind them
    finally:
        for s in quiet:
            s.close()


def test_a_slow_request_holds_up_no_other(server: ControlServer) -> None:
    release, started = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait(10)
        return "done"

    server.blocking["slow"] = slow
    answer: list[str] = []
    waiting = threading.Thread(target=lambda: answer.append(query(server.path, "slow")))
    waiting.start()
    assert started.wait(5)
    assert query(server.path, timeout=2.0)["name"] == "t"  # answered meanwhile
    assert query(server.path, "summary", timeout=2.0)
    release.set()
    waiting.join(5)
    assert answer == ["done"]


def test_unknown_request_names_the_known_ones(server: ControlServer) -> None:
    with pytest.raises(NotRunningError, match=r"unknown request 'frobnicate'"):
        query(server.path, "frobnicate")


def test_counters_are_the_status_without_the_mac_table(server: ControlServer) -> None:
    full, counters = query(server.path, "status"), query(server.path, "counters")
    assert full["macs"] == [] and full["mac_count"] == 0
    assert "macs" not in counters
    assert {k: v for k, v in full.items() if k != "macs"}.keys() == counters.keys()
    assert counters["mac_count"] == 0 and counters["drops"] == full["drops"]


def test_metrics_ask_an_engine_from_before_counters_for_its_status(
    server: ControlServer,
) -> None:
    from rrqctl.commands.watch import ask as _ask

    assert "macs" not in _ask(server.path, "counters")
    del server.handlers["counters"]  # as an engine started before an upgrade
    assert _ask(server.path, "counters")["macs"] == []
    assert _ask(server.path + ".gone", "counters") is None
