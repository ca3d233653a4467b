"""The man pages: rrqnet(8), rrqctl(8), rrqnet-ifupdown(8), rrqnet-cron(8).

Their text is in templates/man/*.8.j2 (troff, as jinja2 templates); what comes from the code
is filled in here: the option tables (config/options.py), the exit codes (errors.py), the
engine's limits, the version, and the date of the newest debian/changelog entry. `python -m
rrqctl.manpages DIR` writes them (make man; the Debian build does it too); the files in man/
are checked against it by the tests.
"""

from __future__ import annotations

import email.utils
import re
import sys
from pathlib import Path

from rrqctl import __version__, render
from rrqctl.config.options import OPTIONS
from rrqctl.engine import cpucaps
from rrqctl.engine.channels import DOWNLINK_FORGET_AFTER, DOWNLINK_LIMIT
from rrqctl.engine.switch import LOCAL_MAC_LIMIT, MAC_AGE, MAC_LIMIT, MAC_SHARE
from rrqctl.errors import ExitCode

CHANGELOG = Path(__file__).resolve().parents[1] / "debian" / "changelog"
PAGES = ("rrqnet.8", "rrqctl.8", "rrqnet-ifupdown.8", "rrqnet-cron.8")
OWNED_BY_NETWORKD = ("Bridge", "DHCP", "MACAddress", "MTUBytes")


def esc(text: str) -> str:
    """Plain text as troff: backslashes, hyphens, leading dots and quotes made literal."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        ("\\&" + line) if line[:1] in (".", "'") else line for line in text.split("\n")
    )


def item(term: str, text: str) -> list[str]:
    return [".TP", f".B {esc(term)}", esc(text)]


def exit_status() -> list[str]:
    meaning = {
        ExitCode.OK: "success",
        ExitCode.FAILURE: "something could not be done or repaired (said on standard error)",
        ExitCode.USAGE: "the command line is wrong",
        ExitCode.CONFIG: "the configuration is wrong (each problem as FILE:LINE: message); "
        "nothing changed",
        ExitCode.ACTION: "a host action failed; what had been made was undone",
        ExitCode.ENGINE: "the engine could not start (what had been made was undone), "
        "or stopped on an error",
        ExitCode.NOT_RUNNING: "the cable is not running (or is not a cable)",
        ExitCode.BUSY: "another rrqctl holds the lock",
    }
    return [x for code, text in meaning.items() for x in item(str(int(code)), text)]


def release_date(changelog: Path = CHANGELOG) -> str:
    """The date of the newest debian/changelog entry (its trailer line), as YYYY-MM-DD."""
    m = re.search(r"^ -- .+?>  (.+)$", changelog.read_text(), re.M)
    if m is None:
        raise ValueError(f"{changelog}: no trailer line with a date")
    return email.utils.parsedate_to_datetime(m.group(1)).date().isoformat()


def context() -> dict[str, object]:
    def lines(items: list[str]) -> str:
        return "\n".join(items)

    return {
        "date": release_date(),
        "version": __version__,
        "exit_status": lines(exit_status()),
        "options": lines([x for o in OPTIONS for x in item(f"{o.name} {o.args}", o.help)]),
        "networkd_keys": lines(
            [
                x
                for o in OPTIONS
                if o.networkd not in OWNED_BY_NETWORKD
                for x in item(f"{o.networkd}=", o.help)
            ]
        ),
        "mac_limit": MAC_LIMIT,
        "mac_share": MAC_SHARE,
        "local_mac_limit": LOCAL_MAC_LIMIT,
        "mac_age": f"{MAC_AGE:.0f}",
        "downlink_limit": DOWNLINK_LIMIT,
        "downlink_forget_after": f"{DOWNLINK_FORGET_AFTER:.0f}",
        "no_avx512": cpucaps.NO_AVX512,
    }


def page(name: str) -> str:
    return render.render(f"man/{name}.j2", **context())


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "man")
    out.mkdir(parents=True, exist_ok=True)
    for name in PAGES:
        (out / name).write_text(page(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
