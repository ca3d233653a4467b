"""Shared fixtures. Tests that need the kernel (namespaces, taps) need root."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.netlab import Lab, lab


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (network namespaces, /dev/net/tun)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def netlab() -> Iterator[Lab]:
    with lab() as lb:
        yield lb
