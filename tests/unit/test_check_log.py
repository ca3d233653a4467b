"""`rrqctl check` says a change of an uplink's health once, not at every run of cron."""

from __future__ import annotations

import logging
from pathlib import Path

from rrqctl.aspects import Finding
from rrqctl.supervise.check import Checker, _syslog
from rrqctl.supervise.health import uplink_findings
from rrqctl.system.paths import Paths


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


STATUS = {
    "uptime": 500.0,
    "remotes": [
        {
            "name": "10.0.0.2:3636",
            "kind": "uplink",
            "state": "stale",
            "last_heard": 75.0,
            "stale_reason": "no reply for 75s",
        },
        {"name": "10.0.0.3:3636", "kind": "uplink", "state": "up", "last_heard": 1.0},
    ],
}


def test_a_stale_uplink_is_a_finding_that_says_why() -> None:
    (f,) = uplink_findings(STATUS)
    assert f == Finding("uplink", "uplink 10.0.0.2:3636 is stale: no reply for 75s", repair=False)


def test_an_uplink_going_stale_and_coming_back_is_logged_once_each(tmp_path: Path) -> None:
    log = Lines()
    _syslog().addHandler(log)
    try:
        for _ in range(3):  # three runs of cron, a checker each, as cron makes them
            checker = Checker(None, Paths(str(tmp_path)))  # type: ignore[arg-type]
            checker._log_uplink_changes("mynet0", uplink_findings(STATUS))
            checker.backoff.save(checker.backoff_file)
        assert log.lines == ["mynet0: uplink 10.0.0.2:3636 is stale: no reply for 75s"]
        for _ in range(2):
            checker = Checker(None, Paths(str(tmp_path)))  # type: ignore[arg-type]
            checker._log_uplink_changes("mynet0", [])
            checker.backoff.save(checker.backoff_file)
        assert log.lines[1:] == ["mynet0: uplink 10.0.0.2:3636 is heard from again"]
    finally:
        _syslog().removeHandler(log)
