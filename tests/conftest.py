"""Shared fixtures. Tests that need the kernel (namespaces, taps) need root."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from tests.netlab import Lab, lab

# The same examples on every run, so the suite (and the Debian build that runs it) is
# deterministic. To explore, run with HYPOTHESIS_EXPLORE=1 (random examples, 20x as many;
# 3000 per parser found nothing new on 2026-11-22).
settings.register_profile("ci", derandomize=True, max_examples=150)
settings.register_profile("explore", max_examples=3000)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_EXPLORE") else "ci")


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


@pytest.fixture(params=["c", "python"], ids=["c-datapath", "python-datapath"])
def datapath(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Engines started in the test run the C datapath (rrqctl/engine/fastpath.c), or the
    Python one (RRQNET_DATAPATH=python): modules that use this run each test on both."""
    if request.param == "c":
        try:
            import rrqctl.engine._fastpath  # type: ignore[import-not-found]  # noqa: F401
        except ImportError:
            pytest.fail("the C datapath is not built (make check builds it)")
        monkeypatch.delenv("RRQNET_DATAPATH", raising=False)
    else:
        monkeypatch.setenv("RRQNET_DATAPATH", "python")
    return str(request.param)
