"""Remote declarations: the three forms, uplink vs downlink, matching a source."""

from __future__ import annotations

from ipaddress import ip_address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rrqctl.engine.remotes import best_match, parse_multicast, parse_remote


@pytest.mark.parametrize(
    ("text", "network", "port", "key", "kind"),
    [
        ("10.0.0.1", "10.0.0.1/32", None, None, "downlink"),
        ("10.0.0.1:2300", "10.0.0.1/32", 2300, None, "uplink"),
        ("10.0.0.1/32:2300", "10.0.0.1/32", 2300, None, "uplink"),
        ("10.0.0.0/8:2300=/k", "10.0.0.0/8", 2300, "/k", "downlink"),
        ("10.0.0.1=/sec/a=b:c", "10.0.0.1/32", None, "/sec/a=b:c", "downlink"),
        ("10.2.3.4/16", "10.2.0.0/16", None, None, "downlink"),
        ("fe::1", "fe::1/128", None, None, "downlink"),
        ("fd::/120=/k", "fd::/120", None, "/k", "downlink"),
        ("[fe::1:4]:2300", "fe::1:4/128", 2300, None, "uplink"),
        ("[fe::1:4/128]:2300=/k", "fe::1:4/128", 2300, "/k", "uplink"),
        ("[fd::/120]:2300", "fd::/120", 2300, None, "downlink"),
        ("[fd::1]", "fd::1/128", None, None, "downlink"),
    ],
)
def test_forms(text: str, network: str, port: int | None, key: str | None, kind: str) -> None:
    r = parse_remote(text)
    assert (str(r.network), r.port, r.keyfile, r.kind) == (network, port, key, kind)
    assert parse_remote(r.text()) == r  # the canonical text reads back the same


def test_longest_prefix_wins_then_declaration_order() -> None:
    wide = parse_remote("10.0.0.0/8")
    narrow = parse_remote("10.1.0.0/16:2300")
    up = parse_remote("10.1.2.3:2300")
    rs = [wide, narrow, up]
    assert best_match(rs, ip_address("10.1.2.3"), 2300) is up
    assert best_match(rs, ip_address("10.1.9.9"), 2300) is narrow
    assert best_match(rs, ip_address("10.1.9.9"), 999) is wide  # a declared port must match
    assert best_match(rs, ip_address("11.0.0.1"), 2300) is None
    assert best_match([parse_remote("fd::/16")], ip_address("10.0.0.1"), 1) is None


def test_multicast() -> None:
    m = parse_multicast("239.1.2.3:2000=/k")
    assert (str(m.group), m.port, m.keyfile) == ("239.1.2.3", 2000, "/k")
    assert m.text() == "239.1.2.3:2000=/k"


@given(st.text(max_size=60))
def test_any_text_parses_or_says_why(text: str) -> None:
    """Arbitrary input never escapes as anything but ValueError."""
    try:
        r = parse_remote(text)
    except ValueError as e:
        assert str(e)
    else:
        assert parse_remote(r.text()) == r


@given(
    st.ip_addresses(),
    st.integers(0, 128),
    st.one_of(st.none(), st.integers(1, 65535)),
    st.one_of(st.none(), st.from_regex(r"/[a-z0-9_./=:-]{1,20}", fullmatch=True)),
)
def test_generated_declarations_round_trip(ip, plen, port, key) -> None:  # type: ignore[no-untyped-def]
    plen = min(plen, ip.max_prefixlen)
    host = f"{ip}/{plen}"
    if ip.version == 6:
        text = f"[{host}]" + (f":{port}" if port else "")
    else:
        text = host + (f":{port}" if port else "")
    if key:
        text += f"={key}"
    r = parse_remote(text)
    assert r.port == port and r.keyfile == key and r.network.prefixlen == plen
    assert parse_remote(r.text()) == r


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("peer.example.net:3636", "peer.example.net:3636"),
        ("[peer.example.net]:3636=/k", "peer.example.net:3636=/k"),
        ("peer:3636=/k", "peer:3636=/k"),
        ("Peer-1.example.net.:3636", "Peer-1.example.net:3636"),
    ],
)
def test_a_host_name_with_a_port_is_an_uplink_resolved_later(text: str, shown: str) -> None:
    r = parse_remote(text)
    assert (r.kind, r.host is not None, r.resolved, r.text()) == ("uplink", True, False, shown)
    assert not r.admits(ip_address("0.0.0.0"), 3636)  # nothing, until it resolves
    at = r.at(ip_address("10.0.0.7"))
    assert at.admits(ip_address("10.0.0.7"), 3636) and not at.admits(ip_address("10.0.0.7"), 1)
    assert at.declared() == r


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("peer.example.net", "'peer.example.net' is a host name: it needs a port"),
        ("300.1.1.1:3636", "'300.1.1.1' is not an IPv4 address"),
        ("-peer:3636", "'-peer' is not an IPv4 address"),
        ("peer..net:3636", "'peer..net' is not an IPv4 address"),
    ],
)
def test_what_is_neither_an_address_nor_a_host_name_says_so(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_remote(text)


def test_host_names_in_every_format(tmp_path: Path) -> None:
    from tests.configtree import load_tree

    cfg = load_tree(
        tmp_path,
        {
            "interfaces": "iface a0 inet manual\n  rrqnet_port 3601\n  rrqnet_remote a.test:1\n",
            "network/b0.netdev": "[NetDev]\nName=b0\nKind=tap\n[X-RRQNet]\nPort=3602\n"
            "Remote=[b.test]:2\n",
            "conf.d/c0.conf": "TAP=c0\nPORT=3603\nVPN=( c.test:3 )\n",
        },
    )
    assert [(n, [r.text() for r in cfg.cables[n].remotes]) for n in ("a0", "b0", "c0")] == [
        ("a0", ["a.test:1"]),
        ("b0", ["b.test:2"]),
        ("c0", ["c.test:3"]),
    ]
