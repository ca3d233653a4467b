"""Configuration trees for tests: files written under a temp dir, loaded with relative paths."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from rrqctl.config.sources import Config, Sources, load

KEY = bytes(range(64))


def write_tree(root: Path, files: Mapping[str, str | bytes]) -> None:
    """files: relative path -> text (or bytes). 'keys/...' files become mode 0600 keys.
    A value starting with '->' makes a symlink to the rest."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str) and content.startswith("->"):
            path.symlink_to(content[2:])
            continue
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content.replace("@ROOT@", str(root)))
        if rel.startswith("keys/"):
            path.chmod(0o600)


@contextlib.contextmanager
def inside(root: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(root)
    try:
        yield
    finally:
        os.chdir(old)


def sources() -> Sources:
    return Sources("interfaces", ("network", "run-network", "lib-network"), "conf.d")


def load_tree(root: Path, files: Mapping[str, str | bytes]) -> Config:
    write_tree(root, files)
    with inside(root):
        return load(sources())


def error_lines(cfg: Config, root: Path | None = None) -> list[str]:
    lines = [str(i) for i in cfg.errors] + [str(w) for w in cfg.warnings]
    if root is not None:
        lines = [line.replace(str(root) + "/", "") for line in lines]
    return lines
