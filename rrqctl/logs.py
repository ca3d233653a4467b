"""Logging for engines and commands: levels as rrqnet(8) -v/-vv/-vvv, to stderr or syslog."""

from __future__ import annotations

import logging
import os
import sys

from rrqctl.engine.state import TRACE

LEVELS = {0: logging.WARNING, 1: logging.INFO, 2: logging.DEBUG, 3: TRACE}


class _Format(logging.Formatter):
    """'warning: ' and 'error: ' prefixes; plain text for information."""

    def __init__(self, prefix: str, stamp: bool) -> None:
        stamp_fmt = "%(asctime)s " if stamp else ""
        super().__init__(f"{stamp_fmt}{prefix}%(tag)s%(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        record.tag = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return super().format(record)


def _syslog_handler(facility: str, priority: str) -> logging.Handler:
    """rrqnet_log's facility.priority: every line at that one priority, as logger(1) does."""
    from logging.handlers import SysLogHandler  # only for cables that log to syslog

    class SyslogAt(SysLogHandler):
        def mapPriority(self, levelName: str) -> str:  # noqa: N802,N803 (logging's names)
            return priority

    return SyslogAt("/dev/log", SysLogHandler.facility_names[facility])


def setup(prog: str, verbosity: int, syslog: tuple[str, str] | None = None) -> logging.Logger:
    """Configure the root logger once for this process; returns the engine's logger."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler: logging.Handler
    if syslog is not None:
        facility, priority = syslog
        handler = _syslog_handler(facility, priority)
        handler.setFormatter(logging.Formatter(f"{prog}[{os.getpid()}]: %(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        # journald stamps lines itself; files and terminals get a timestamp
        handler.setFormatter(_Format(f"{prog}: ", stamp="JOURNAL_STREAM" not in os.environ))
    root.addHandler(handler)
    root.setLevel(LEVELS[max(0, min(3, verbosity))])
    return logging.getLogger("rrqctl.engine")
