"""The files rrqctl ships beside its code: hooks/, units/ and templates/ at the top of the
source tree, one copy each. An installed package has them in rrqctl/_shipped/ (setup.py
copies them there at build time); a source tree (or an editable install) reads them where
they are."""

from __future__ import annotations

from pathlib import Path

SHIPPED = ("hooks", "units", "templates")
_HERE = Path(__file__).resolve().parent


def path(*parts: str) -> Path:
    """The shipped file or directory at parts (e.g. "units", "rrqnet@.service")."""
    if parts[0] not in SHIPPED:
        raise ValueError(f"{parts[0]} is not shipped with rrqctl (one of {', '.join(SHIPPED)})")
    for base in (_HERE / "_shipped", _HERE.parent):
        found = base.joinpath(*parts)
        if found.exists():
            return found
    raise FileNotFoundError(f"{'/'.join(parts)}: not shipped with this rrqctl (a broken install?)")


def text(*parts: str) -> str:
    return path(*parts).read_text()
