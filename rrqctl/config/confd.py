"""rrqnet-cron's /etc/rrqnet/conf.d/NAME.conf, read as plain shell assignments. Never run.

    TAP=mynet0           MAC=02:00:00:00:36:36     BR=br0       IP=10.10.0.1/24
    PORT=3636            OPTIONS=( -4 -B 10 )      VERBOSE=-v
    LOG=/var/log/rrqnet/mynet0.log       (rrqctl's own: rrqnet_log's words)
    VPN=( 10.0.0.2:3636=/etc/rrqnet/keys/k  10.1.0.0/16:3636 )

Allowed: NAME=word, NAME=( words ) over several lines, 'single' and "double" quotes
(without $ or ` inside double quotes), backslash escapes, # comments, blank lines.
Anything else (expansions, commands, ;, |, &, redirections) is an error, not executed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rrqctl.errors import Issue, Location

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
KNOWN = ("TAP", "MAC", "BR", "IP", "PORT", "OPTIONS", "VPN", "VERBOSE", "LOG")
ARRAYS = ("OPTIONS", "VPN")
SPECIAL = set("$`;|&<>(){}!*?[]~")


class ShellSyntax(ValueError):  # noqa: N818 (a reason, said to the user)
    pass


@dataclass(frozen=True)
class Assignment:
    name: str
    words: tuple[str, ...]
    array: bool
    loc: Location
    lines: tuple[int, ...] = ()  # the line of each word (arrays span lines)

    def word_locs(self) -> list[tuple[str, Location]]:
        lines = self.lines or (self.loc.line,) * len(self.words)
        return [(w, Location(self.loc.file, n)) for w, n in zip(self.words, lines, strict=True)]


class _Lexer:
    """Words of the safe subset; positions give line numbers for errors."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    @property
    def line(self) -> int:
        return self.text.count("\n", 0, self.pos) + 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_blanks(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            elif c in " \t" or (newlines and c == "\n"):
                self.pos += 1
            elif c == "\\" and self.text[self.pos + 1 : self.pos + 2] == "\n":
                self.pos += 2
            else:
                return

    def word(self, stop: str = "") -> str:
        out = []
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c in " \t\n" or c in stop:
                break
            if c == "'":
                end = self.text.find("'", self.pos + 1)
                if end < 0:
                    raise ShellSyntax("unterminated single quote")
                out.append(self.text[self.pos + 1 : end])
                self.pos = end + 1
            elif c == '"':
                out.append(self._double())
            elif c == "\\":
                out.append(self.text[self.pos + 1 : self.pos + 2])
                self.pos += 2
            elif c in SPECIAL:
                raise ShellSyntax(f"'{c}' is shell syntax this file may not use (only NAME=value)")
            else:
                out.append(c)
                self.pos += 1
        return "".join(out)

    def _double(self) -> str:
        out: list[str] = []
        self.pos += 1
        while self.pos < len(self.text):
            c = self.text[self.pos]
            if c == '"':
                self.pos += 1
                return "".join(out)
            if c in "$`":
                raise ShellSyntax(f"'{c}' inside double quotes is an expansion; use single quotes")
            if c == "\\" and self.text[self.pos + 1 : self.pos + 2] in ('"', "\\", "$", "`"):
                self.pos += 1
                c = self.text[self.pos]
            out.append(c)
            self.pos += 1
        raise ShellSyntax("unterminated double quote")


def parse(text: str, path: str) -> tuple[list[Assignment], list[Issue]]:
    lx = _Lexer(text)
    out: list[Assignment] = []
    issues: list[Issue] = []
    while True:
        lx.skip_blanks(newlines=True)
        if lx.pos >= len(text):
            return out, issues
        line = lx.line
        try:
            out.append(_assignment(lx, path))
        except ShellSyntax as e:
            issues.append(Issue(Location(path, lx.line if lx.line >= line else line), str(e)))
            nl = text.find("\n", lx.pos)
            lx.pos = len(text) if nl < 0 else nl + 1


def _assignment(lx: _Lexer, path: str) -> Assignment:
    loc = Location(path, lx.line)
    m = NAME.match(lx.text, lx.pos)
    if not m:
        bad = lx.text[lx.pos :].split("\n", 1)[0].strip()
        raise ShellSyntax(f"'{bad}' is not an assignment (this file is read, never run)")
    lx.pos = m.end()
    name = m.group()[:-1]
    if lx.peek() == "(":
        lx.pos += 1
        words = []
        lines = []
        while True:
            lx.skip_blanks(newlines=True)
            if lx.peek() == ")":
                lx.pos += 1
                break
            if not lx.peek():
                raise ShellSyntax(f"{name}=( is never closed with )")
            lines.append(lx.line)
            words.append(lx.word(stop=")"))
        array = True
    else:
        words = [lx.word()]
        lines = [loc.line]
        array = False
    lx.skip_blanks(newlines=False)
    if lx.peek() not in ("", "\n"):
        raise ShellSyntax(f"more after {name}=...: one assignment per line")
    return Assignment(name, tuple(words), array, loc, tuple(lines))
