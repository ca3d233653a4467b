"""Arbitrary text into every configuration parser: nothing but ConfigError ever escapes."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rrqctl.config import hookenv
from rrqctl.config.cables import cable_from_settings
from rrqctl.errors import ConfigError, NotRunningError
from tests.configtree import load_tree

TOKENS = [
    "iface ",
    "mynet0 ",
    "inet ",
    "manual",
    "auto ",
    "allow-hotplug ",
    "mapping ",
    "script ",
    "map ",
    "source ",
    "source-directory ",
    "inherits ",
    "rrqnet_port ",
    "rrqnet-port ",
    "rrqnet_remote ",
    "rrqnet_options ",
    "rrqnet_log ",
    "rrqnet_nice ",
    "rrqnet_bridge ",
    "rrqnet_dhcp ",
    "rrqnet_mac ",
    "rrqnet_mtu ",
    "rrqnet_freshness ",
    "notap ",
    "3636",
    "10.0.0.1",
    ":3636",
    "/24",
    "=",
    "[fd::1]",
    "-i ",
    "02:00:00:00:00:01",
    "-4 ",
    "-B ",
    "-m ",
    "239.1.1.1:9",
    "-v ",
    "/var/log/x",
    "daemon.info",
    "dhclient ",
    "\n",
    "\n    ",
    "\\\n",
    "#",
    "  ",
    "\t",
    "[NetDev]\n",
    "[X-RRQNet]\n",
    "Name=",
    "Kind=tap\n",
    "Port=",
    "Remote=",
    "NoTap=",
    "Options=",
    "TAP=",
    "PORT=",
    "VPN=(",
    ")",
    "'",
    '"',
    "$",
    "`",
    ";",
    "MAC=",
    "BR=",
    "IP=",
]
texts = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=8)), max_size=60).map("".join)
FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load_everything(files: dict[str, str]) -> None:
    """files as they are: bytes, so a text starting with '->' is not taken for a symlink."""
    with tempfile.TemporaryDirectory() as d:
        cfg = load_tree(
            Path(d), {k: v.encode("utf-8", "surrogateescape") for k, v in files.items()}
        )
        for name in cfg.names:
            with contextlib.suppress(ConfigError, NotRunningError):
                cfg.get(name)


@FUZZ
@example("\\\n\n")  # a continuation into a blank line (found by this test)
@given(texts)
def test_interfaces_parser(text: str) -> None:
    load_everything({"interfaces": text})


@FUZZ
@given(texts, texts)
def test_networkd_parser(netdev: str, dropin: str) -> None:
    load_everything({"network/x.netdev": netdev, "network/x.netdev.d/a.conf": dropin})


@FUZZ
@example("->0")  # was taken for a symlink to '0' (found by this test)
@given(texts)
def test_confd_parser(text: str) -> None:
    load_everything({"conf.d/x.conf": text})


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "IF_RRQNET_PORT",
                "IF_RRQNET_REMOTE",
                "IF_RRQNET_OPTIONS",
                "IF_RRQNET_LOG",
                "IF_RRQNET_NICE",
                "IF_RRQNET_BRIDGE",
                "IF_RRQNET_DHCP",
                "IF_RRQNET_MTU",
                "IF_RRQNET_BOGUS",
                "IFACE",
                "PHASE",
            ]
        ),
        texts,
    )
)
def test_hook_environment(env: dict[str, str]) -> None:
    call = hookenv.parse(env)
    if call.settings:
        cable, issues = cable_from_settings(call.iface or "x", list(call.settings), None, "hookenv")
        assert (cable is None) == bool(issues)
