"""The error tree. Every error a user can see is one of these, printed once by the CLI."""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
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


ERRORS: dict[str, type[RrqError]] = {
    c.__name__: c for c in (RrqError, ActionError, ConfigError, EngineError)
}


def error_json(e: RrqError) -> str:
    """An error as JSON, for the process that waits for a helper (see error_from)."""
    kind = type(e).__name__ if type(e).__name__ in ERRORS else "RrqError"
    return json.dumps({"kind": kind, "message": str(e)})


def error_from(text: str, fallback: str) -> RrqError:
    """The error a helper wrote as JSON ({"kind", "message"}), else fallback as ActionError."""
    try:
        said = json.loads(text)
        kind, message = ERRORS.get(said["kind"], RrqError), str(said["message"])
    except (ValueError, KeyError, TypeError):
        return ActionError(fallback)
    return kind(message)


def exit_code(ok: bool) -> int:
    return int(ExitCode.OK if ok else ExitCode.FAILURE)


def run_guarded(prog: str, fn: Callable[[], int]) -> int:
    """Run fn; an RrqError becomes 'prog: message' lines on stderr and its exit code. The one
    place (for rrqctl, rrqnet and rrqnet-cron alike) that turns an error into what is said."""
    try:
        return fn()
    except ConfigError as e:
        for line in e.lines:
            print(f"{prog}: {line}", file=sys.stderr)
        return int(e.exit_code)
    except RrqError as e:
        first, *rest = str(e).splitlines() or [type(e).__name__]
        print(f"{prog}: {first}", *rest, sep="\n", file=sys.stderr)
        return int(e.exit_code)
    except PermissionError as e:  # (what needs root says so itself; this is the rest)
        where = f"{e.filename}: " if e.filename else ""
        hint = "" if os.geteuid() == 0 else " (not root)"
        print(f"{prog}: {where}{e.strerror or e}{hint}", file=sys.stderr)
        return int(ExitCode.FAILURE)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `rrqctl show | head`: the reader left; not our error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.OK)
