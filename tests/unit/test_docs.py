"""Documentation stays true: man pages as generated from the option tables, readable by man;
the README opens with its two set-up commands."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rrqctl import manpages

REPO = Path(__file__).parents[2]


@pytest.mark.parametrize("name", sorted(manpages.PAGES))
def test_committed_man_page_is_what_the_generator_makes(name: str) -> None:
    assert (REPO / "man" / name).read_text() == manpages.page(name), (
        "run: python -m rrqctl.manpages man"
    )


def test_man_pages_are_dated_from_the_newest_changelog_entry(tmp_path: Path) -> None:
    changelog = tmp_path / "changelog"
    changelog.write_text(
        "rrqctl (0.2.0) unstable; urgency=medium\n\n  * Later.\n\n"
        " -- A <a@example.org>  Fri, 04 Dec 2026 12:00:00 +0000\n\n"
        "rrqctl (0.1.0) unstable; urgency=medium\n\n  * First.\n\n"
        " -- A <a@example.org>  Sun, 22 Nov 2026 06:00:00 +0000\n"
    )
    assert manpages.release_date(changelog) == "2026-12-04"
    date = manpages.release_date()
    for name in manpages.PAGES:
        assert f'"{date}"' in (REPO / "man" / name).read_text().splitlines()[0]


@pytest.mark.skipif(shutil.which("man") is None, reason="man-db is not installed")
@pytest.mark.parametrize("name", sorted(manpages.PAGES))
def test_man_renders_the_page_without_warnings(name: str) -> None:
    r = subprocess.run(
        ["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(REPO / "man" / name)],
        capture_output=True,
        text=True,
        env={**os.environ, "MANWIDTH": "80", "LC_ALL": "C.UTF-8"},
    )
    assert r.returncode == 0 and r.stderr == ""


def test_every_interfaces_option_is_in_the_ifupdown_page() -> None:
    from rrqctl.config.options import OPTIONS

    page = (REPO / "man" / "rrqnet-ifupdown.8").read_text()
    for o in OPTIONS:
        assert manpages.esc(o.name) in page


def test_readme_starts_with_exactly_the_two_setup_commands() -> None:
    lines = (REPO / "README.md").read_text().splitlines()
    block = lines[lines.index("```sh") + 1 : lines.index("```")]
    assert [line.split("#")[0].strip() for line in block] == ["make demo", "make check"]
    assert lines.index("```sh") <= 2


def test_the_packaged_cron_file_is_the_rendered_one() -> None:
    from rrqctl import render

    assert (REPO / "debian" / "rrqctl.rrqnet.cron.d").read_text() == render.cron_file()


def test_the_readme_states_the_engine_s_limits_as_they_are() -> None:
    from rrqctl.engine.channels import DOWNLINK_LIMIT
    from rrqctl.engine.switch import MAC_LIMIT

    readme = " ".join((REPO / "README.md").read_text().split())
    assert f"{MAC_LIMIT} learned MACs, {DOWNLINK_LIMIT} downlinks per mask" in readme
