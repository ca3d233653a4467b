"""Text made from templates (jinja2, StrictUndefined): networkd files, stanzas, unit drop-ins,
the cron file. The only module that imports jinja2."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import jinja2

from rrqctl import resources
from rrqctl.errors import ConfigError
from rrqctl.system.paths import UNIT_LOG_DIR

if TYPE_CHECKING:
    from rrqctl.model import Cable

DEFAULT_FRESHNESS = 600.0
CRON_SCHEDULE = "* * * * *"


def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(resources.path("templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


def data_file(*parts: str) -> str:
    """A file shipped with rrqctl (units, hooks)."""
    return resources.text(*parts)


def _options(c: Cable, multicast: bool = False) -> str:
    """The rrqnet options of the cable, in rrqnet's fixed order (-m only if asked)."""
    words = (["-tpg"] if c.tpg else []) + (["-4"] if c.ipv4_only else [])
    pairs: list[tuple[str, object]] = [("-B", c.buffers), ("-T", c.threads)]
    pairs += [("-m", c.multicast.text() if multicast and c.multicast else None), ("-S", c.source)]
    for opt, value in pairs:
        if value is not None:
            words += [opt, str(value)]
    return " ".join(words)


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _log(c: Cable) -> str:
    """rrqnet_log's words: [-v|-vv|-vvv] [TARGET]."""
    words = (["-" + "v" * c.verbosity] if c.verbosity else []) + ([c.log.target] if c.log else [])
    return " ".join(words)


def _common(c: Cable) -> dict[str, Any]:
    return {
        "name": c.name,
        "port": c.port,
        "remotes": [" ".join(r.argv()) for r in c.remotes],
        "options": _options(c),
        "log": _log(c),
        "origin": c.origin or "the command line",
    }


def networkd_files(c: Cable) -> dict[str, str]:
    """NAME.netdev and NAME.network that declare the same cable for systemd-networkd."""
    if c.local != "tap":
        raise ConfigError(
            f"{c.name} has no tap (notap): networkd would have nothing to own; "
            "keep it in /etc/network/interfaces"
        )
    ctx = {
        **_common(c),
        "mac": c.mac,
        "mtu": c.mtu,
        "nice": c.nice,
        "multicast": c.multicast.text() if c.multicast else "",
        "freshness": None if c.freshness == DEFAULT_FRESHNESS else _number(c.freshness),
        "addresses": list(c.addresses),
        "bridge": c.bridge,
        "dhcp": c.dhcp is not None,
    }
    return {
        f"{c.name}.netdev": render("networkd.netdev.j2", **ctx),
        f"{c.name}.network": render("networkd.network.j2", **ctx),
    }


def interfaces_stanza(c: Cable) -> str:
    """An /etc/network/interfaces stanza for the cable (the way back from networkd or conf.d)."""
    options = _options(c, multicast=True)
    extra: list[tuple[str, object]] = [
        (k, v)
        for k, v in (("bridge", c.bridge), ("nice", c.nice), ("mac", c.mac), ("mtu", c.mtu))
        if v is not None
    ]
    if c.dhcp is not None:
        extra.append(("dhcp", " ".join([c.dhcp.method, *c.dhcp.args])))
    if c.freshness != DEFAULT_FRESHNESS:
        extra.append(("freshness", _number(c.freshness)))
    return render(
        "interfaces.j2",
        **{
            **_common(c),
            "options": options,
            "auto": "auto" in c.start,
            "notap": c.local == "none",
            "extra": extra,
            "inet": [a for a in c.addresses if ":" not in a],
            "inet6": [a for a in c.addresses if ":" in a],
        },
    )


def unit_dropin(c: Cable) -> str:
    log_dir = None
    if c.log is not None and c.log.syslog is None:
        log_dir = os.path.dirname(c.log.target)
        if (log_dir + "/").startswith(UNIT_LOG_DIR + "/"):
            log_dir = None  # the unit's LogsDirectory: writable already
    return render(
        "unit-dropin.j2",
        name=c.name,
        nice=c.nice,
        networkd=c.owner == "networkd",
        log_dir=log_dir,
        log_file=c.log.target if c.log is not None else None,
    )


def unit_with_overrides(
    c: Cable, unit_dir: str = "/lib/systemd/system", rrqctl: str = "/usr/bin/rrqctl"
) -> str:
    """As `systemctl cat rrqnet@NAME` would show it once the drop-in is in place."""
    dropin = f"/etc/systemd/system/rrqnet@{c.name}.service.d/rrqctl.conf"
    unit = unit_text("rrqnet@.service", rrqctl)
    return f"# {unit_dir}/rrqnet@.service\n{unit}\n# {dropin}\n{unit_dropin(c)}"


def cron_file(
    schedule: str = CRON_SCHEDULE, rrqctl: str = "/usr/bin/rrqctl", args: Sequence[str] = ()
) -> str:
    fields = schedule.split()
    if len(fields) != 5 and not (len(fields) == 1 and fields[0].startswith("@")):
        raise ConfigError(
            f"cron schedule '{schedule}' needs five fields (like '* * * * *') or @hourly etc."
        )
    words = [cron_word(a) for a in args]
    return render("cron.j2", schedule=schedule, rrqctl=cron_word(rrqctl), args=words)


def cron_word(word: str) -> str:
    """word as one word of a crontab command (sh quoting; % means a newline to cron)."""
    return shlex.quote(word).replace("%", "\\%")


def systemd_word(word: str) -> str:
    """word as one word of a unit's command line (systemd.service(5): quoting, %, $)."""
    word = word.replace("%", "%%").replace("$", "$$")
    if not any(c.isspace() or c in "\"'\\;" for c in word):
        return word
    return '"' + word.replace("\\", "\\\\").replace('"', '\\"') + '"'


def unit_text(name: str, rrqctl: str = "/usr/bin/rrqctl") -> str:
    """A shipped unit, calling rrqctl at its path."""
    return data_file("units", name).replace("/usr/bin/rrqctl", systemd_word(rrqctl))
