"""Key files of sealed channels, checked as a cable is read: there, regular, neither readable
nor writable by every user, in a folder no other user may write to, 32 bytes at least."""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING

from rrqctl.config.cables import loc_of
from rrqctl.errors import Issue

if TYPE_CHECKING:
    from rrqctl.model import Cable


StatOf = Callable[[str], "os.stat_result | OSError"]


def stat_of_path(path: str) -> os.stat_result | OSError:
    try:
        return os.stat(path)
    except OSError as e:
        return e


def check_keyfiles(cable: Cable, stat_of: StatOf = stat_of_path) -> tuple[list[Issue], list[Issue]]:
    """Key files exist, are regular files, are neither readable nor writable by every user (a
    warning if readable by the group) and nor is their directory writable by every user."""
    errors: list[Issue] = []
    warnings: list[Issue] = []
    for i, r in enumerate(cable.remotes):
        if r.keyfile:
            where = functools.partial(cable.where, f"remotes[{i}]")
            _check_key(r.keyfile, where, errors, warnings, stat_of)
    if cable.multicast is not None and cable.multicast.keyfile:
        where = functools.partial(cable.where, "multicast")
        _check_key(cable.multicast.keyfile, where, errors, warnings, stat_of)
    return errors, warnings


def _check_key(
    path: str,
    where: Callable[[], str | None],
    errors: list[Issue],
    warnings: list[Issue],
    stat_of: StatOf,
) -> None:
    """(where: the FILE:LINE of the declaration, asked only if there is something to say)"""
    st = stat_of(path) if os.path.isabs(path) else None
    if isinstance(st, os.stat_result) and _key_is_fine(path, st, stat_of):
        return
    loc = loc_of(where())
    if not os.path.isabs(path):
        errors.append(Issue(loc, f"key file {path} must be an absolute path"))
        return
    st = stat_of(path)
    if isinstance(st, OSError):
        errors.append(Issue(loc, f"key file {path}: {st.strerror}"))
        return
    folder = os.path.dirname(path)
    dir_st = stat_of(folder)
    open_dir = not isinstance(dir_st, OSError) and dir_st.st_mode & stat.S_IWOTH
    if not stat.S_ISREG(st.st_mode):
        errors.append(Issue(loc, f"key file {path} is not a regular file"))
    elif st.st_mode & stat.S_IWOTH:
        errors.append(Issue(loc, f"key file {path} is writable by every user (chmod o-w {path})"))
    elif open_dir and not dir_st.st_mode & stat.S_ISVTX:  # type: ignore[union-attr]
        errors.append(Issue(loc, f"key file {path} is in {folder}, which every user may write to"))
    elif st.st_mode & stat.S_IROTH:
        errors.append(Issue(loc, f"key file {path} is readable by everyone (chmod o-r {path})"))
    elif open_dir:
        warnings.append(
            Issue(loc, f"key file {path} is in {folder}, which every user may add to", warning=True)
        )
    elif st.st_mode & stat.S_IRGRP:
        warnings.append(Issue(loc, f"key file {path} is readable by its group", warning=True))
    elif st.st_size < 32:
        errors.append(Issue(loc, f"key file {path} is shorter than 32 bytes"))


def _key_is_fine(path: str, st: os.stat_result, stat_of: StatOf) -> bool:
    """The usual case, said quickly: nothing to say of this key file."""
    dir_st = stat_of(os.path.dirname(path))
    return (
        stat.S_ISREG(st.st_mode)
        and not st.st_mode & (stat.S_IRWXO | stat.S_IRGRP)
        and st.st_size >= 32
        and isinstance(dir_st, os.stat_result)
        and not dir_st.st_mode & stat.S_IWOTH
    )
