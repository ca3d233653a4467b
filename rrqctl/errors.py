"""The error tree. Every error a user can see is one of these, printed once by the CLI."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple


class ExitCode(enum.IntEnum):
    """Process exit codes; each value means exactly one thing."""

    OK = 0
    FAILURE = 1  # something could not be done or repaired (see the message)
    USAGE = 2  # the command line is wrong
    CONFIG = 3  # the configuration is wrong; nothing was changed
    ACTION = 4  # a host action failed; what was made was rolled back
    ENGINE = 5  # the engine could not start or died
    NOT_RUNNING = 6  # asked about a cable that is not running
    BUSY = 7  # another rrqctl holds the lock


class Location(NamedTuple):
    """Where a configuration value came from: FILE:LINE (line 0 = the whole file). A tuple:
    every line of a configuration has one, and there may be hundreds of thousands."""

    file: str
    line: int = 0

    def __str__(self) -> str:
        file, line = self  # (faster than the named fields: there may be a million of these)
        return f"{file}:{line}" if line else file

    @classmethod
    def parse(cls, text: str) -> Location:
        file, _, line = text.rpartition(":")
        return cls(file, int(line)) if file and line.isdigit() else cls(text)


@dataclass(frozen=True, slots=True)
class Issue:
    """One configuration problem at one place."""

    location: Location | None
    message: str
    warning: bool = False

    def __str__(self) -> str:
        prefix = "warning: " if self.warning else ""
        where = f"{self.location}: " if self.location else ""
        return f"{where}{prefix}{self.message}"


class RrqError(Exception):
    """Base of all errors the CLI turns into a message and an exit code."""

    exit_code = ExitCode.FAILURE


class UsageError(RrqError):
    exit_code = ExitCode.USAGE


class ConfigError(RrqError):
    """One or more configuration errors, each with its FILE:LINE."""

    exit_code = ExitCode.CONFIG

    def __init__(self, issues: Iterable[Issue] | str, location: Location | None = None):
        if isinstance(issues, str):
            issues = [Issue(location, issues)]
        self.issues: list[Issue] = [i for i in issues if not i.warning]
        super().__init__("\n".join(str(i) for i in self.issues))

    @property
    def lines(self) -> Sequence[str]:
        return [str(i) for i in self.issues]


class ActionError(RrqError):
    """A host action failed (a command, a netlink request, a process that would not start)."""

    exit_code = ExitCode.ACTION

    def __init__(
        self,
        message: str,
        argv: Sequence[str] | None = None,
        returncode: int | None = None,
        stderr: str = "",
    ):
        self.argv = list(argv) if argv else None
        self.returncode = returncode
        self.stderr = stderr.strip()
        detail = f": {self.stderr.splitlines()[-1]}" if self.stderr else ""
        super().__init__(f"{message}{detail}")


class EngineError(RrqError):
    exit_code = ExitCode.ENGINE


class NotRunningError(RrqError):
    exit_code = ExitCode.NOT_RUNNING


class BusyError(RrqError):
    exit_code = ExitCode.BUSY
