"""The error catalogue: every user-facing configuration error, with its exact text."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.configtree import KEY, error_lines, load_tree

IFACE = "iface mynet0 inet manual\n    rrqnet_port 3636\n"


def eni(*lines: str) -> dict[str, str | bytes]:
    return {"interfaces": IFACE + "".join(f"    {line}\n" for line in lines), "keys/k": KEY}


# (files, [exact error lines]) -- line 1 is the iface line, line 2 rrqnet_port, line 3 the next
CATALOGUE: list[tuple[str, dict[str, str | bytes], list[str]]] = [
    # interfaces(5) syntax
    (
        "misplaced option",
        {"interfaces": "  rrqnet_port 1\n" + IFACE},
        ["interfaces:1: misplaced option (outside an iface or mapping stanza)"],
    ),
    (
        "empty value",
        {"interfaces": IFACE + "    rrqnet_remote\n"},
        ["interfaces:3: option with empty value"],
    ),
    (
        "iface line",
        {"interfaces": "iface mynet0\n"},
        ["interfaces:1: want 'iface NAME FAMILY METHOD' (or 'iface NAME inherits TEMPLATE')"],
    ),
    (
        "inherits what",
        {"interfaces": "iface mynet0 inet manual inherits\n"},
        ["interfaces:1: inherits needs the name of a template stanza"],
    ),
    (
        "mapping option",
        {"interfaces": "mapping eth*\n  scrip /bin/true\n"},
        ["interfaces:2: 'scrip' in a mapping stanza (want script or map)"],
    ),
    (
        "mapping pattern",
        {"interfaces": "mapping\n"},
        ["interfaces:1: mapping needs at least one interface pattern"],
    ),
    (
        "auto nothing",
        {"interfaces": "auto\n"},
        ["interfaces:1: auto needs at least one interface name"],
    ),
    (
        "source args",
        {"interfaces": "source a b\n"},
        ["interfaces:1: source needs one path (shell wildcards allowed)"],
    ),
    (
        "source-directory args",
        {"interfaces": "source-directory\n"},
        ["interfaces:1: source-directory needs one directory"],
    ),
    (
        "source loop",
        {"interfaces": "source interfaces\n"},
        ["interfaces:1: interfaces is already read (a source loop)"],
    ),
    # rrqnet_* options
    (
        "unknown option",
        eni("rrqnet_remot 10.0.0.1"),
        ["interfaces:3: unknown option rrqnet_remot; did you mean rrqnet_remote?"],
    ),
    (
        "no port",
        {"interfaces": "iface mynet0 inet manual\n    rrqnet_remote 10.0.0.1:1\n"},
        [
            "interfaces:2: rrqnet_remote without rrqnet_port: add 'rrqnet_port PORT' to make mynet0 a cable"
        ],
    ),
    (
        "port twice",
        eni("rrqnet_port 3637"),
        ["interfaces:3: rrqnet_port given twice (first at interfaces:2)"],
    ),
    (
        "port words",
        {"interfaces": "iface x inet manual\n rrqnet_port notap\n"},
        ["interfaces:2: rrqnet_port: want [notap] PORT"],
    ),
    (
        "port number",
        {"interfaces": "iface x inet manual\n rrqnet_port 36x\n"},
        ["interfaces:2: rrqnet_port: port '36x' is not a number"],
    ),
    (
        "port range",
        {"interfaces": "iface x inet manual\n rrqnet_port 0\n"},
        ["interfaces:2: rrqnet_port: port 0 is out of range 1-65535"],
    ),
    (
        "remote address",
        eni("rrqnet_remote 111.222.333.444:3636=@ROOT@/keys/k"),
        ["interfaces:3: rrqnet_remote: '111.222.333.444' is not an IPv4 address"],
    ),
    (
        "remote port",
        eni("rrqnet_remote 10.0.0.1:99999"),
        ["interfaces:3: rrqnet_remote: port 99999 is out of range 1-65535"],
    ),
    (
        "remote prefix",
        eni("rrqnet_remote 10.0.0.0/40"),
        ["interfaces:3: rrqnet_remote: prefix length '40' is out of range 0-32"],
    ),
    (
        "remote bracket",
        eni("rrqnet_remote [fd::1:3636"),
        ["interfaces:3: rrqnet_remote: '[fd::1:3636' has no closing ']'"],
    ),
    (
        "remote after bracket",
        eni("rrqnet_remote [fd::1]3636"),
        ["interfaces:3: rrqnet_remote: unexpected '3636' after ']' (want ]:port)"],
    ),
    (
        "remote key empty",
        eni("rrqnet_remote 10.0.0.1:1="),
        ["interfaces:3: rrqnet_remote: '10.0.0.1:1=' has '=' but no key file after it"],
    ),
    (
        "remote v6",
        eni("rrqnet_remote [10.0.0.1]:1"),
        ["interfaces:3: rrqnet_remote: '10.0.0.1' is not an IPv6 address"],
    ),
    (
        "remote two",
        eni("rrqnet_remote 10.0.0.1 10.0.0.2"),
        [
            "interfaces:3: rrqnet_remote: '10.0.0.1 10.0.0.2' is not one remote (want REMOTE [-i MAC[,MAC]*])"
        ],
    ),
    (
        "remote ignore",
        eni("rrqnet_remote 10.0.0.1 -i 02:00"),
        ["interfaces:3: rrqnet_remote: '02:00' is not a MAC address (like 02:00:00:00:00:01)"],
    ),
    (
        "options order",
        eni("rrqnet_options -B 10 -4"),
        [
            "interfaces:3: rrqnet_options: option '-4' is out of order (options go in the order "
            "[-v] [-tpg] [-4] [-B n] [-T n] [-m mcast] [-t tap] [-S source])"
        ],
    ),
    (
        "options unknown",
        eni("rrqnet_options -x"),
        ["interfaces:3: rrqnet_options: unknown option '-x'"],
    ),
    (
        "options -v",
        eni("rrqnet_options -v"),
        ["interfaces:3: rrqnet_options: set the log level with rrqnet_log, not -v"],
    ),
    (
        "options -t",
        eni("rrqnet_options -t tap9"),
        ["interfaces:3: rrqnet_options: -t is implied: the tap is the stanza's interface"],
    ),
    (
        "options word",
        eni("rrqnet_options -4 10.0.0.1"),
        [
            "interfaces:3: rrqnet_options: '10.0.0.1' is not an rrqnet option here (want -tpg -4 -B n -T n -m mcast -S source)"
        ],
    ),
    (
        "options -B",
        eni("rrqnet_options -B many"),
        ["interfaces:3: rrqnet_options: -B needs a positive number, not 'many'"],
    ),
    (
        "options -m",
        eni("rrqnet_options -m 244.0.2.1:2000"),
        [
            "interfaces:3: rrqnet_options: -m '244.0.2.1:2000': 244.0.2.1 is not an IPv4 multicast address "
            "(224.0.0.0/4); did you mean 224.0.2.1?"
        ],
    ),
    (
        "options -S",
        eni("rrqnet_options -S here"),
        ["interfaces:3: rrqnet_options: -S needs an IP address, not 'here'"],
    ),
    (
        "log words",
        eni("rrqnet_log -v /a /b"),
        ["interfaces:3: rrqnet_log: want [-v|-vv|-vvv] [PATH|facility.priority]"],
    ),
    (
        "log level",
        eni("rrqnet_log -vvvv /a"),
        ["interfaces:3: rrqnet_log: '-vvvv' is not a log level (-v, -vv or -vvv)"],
    ),
    (
        "multicast twice",
        eni("rrqnet_options -m 239.1.1.1:9", "rrqnet_multicast 239.1.1.2:9"),
        [
            "interfaces:4: rrqnet_multicast: the multicast channel is already set by -m in the options"
        ],
    ),
    (
        "log relative",
        eni("rrqnet_log -v mynet0.log"),
        ["interfaces:3: log target 'mynet0.log' is neither an absolute path nor facility.priority"],
    ),
    (
        "log facility",
        eni("rrqnet_log -v demon.info"),
        ["interfaces:3: 'demon' is not a syslog facility (daemon, user, local0-7, ...)"],
    ),
    (
        "log priority",
        eni("rrqnet_log -vv daemon.chatty"),
        ["interfaces:3: 'chatty' is not a syslog priority (err, warning, info, ...)"],
    ),
    (
        "nice number",
        eni("rrqnet_nice low"),
        ["interfaces:3: rrqnet_nice: 'low' is not a whole number"],
    ),
    (
        "nice range",
        eni("rrqnet_nice 20"),
        ["interfaces:3: rrqnet_nice: 20 is out of range -20..19"],
    ),
    (
        "bridge words",
        eni("rrqnet_bridge br0 br1"),
        ["interfaces:3: rrqnet_bridge: want one word, not 'br0 br1'"],
    ),
    (
        "bridge name",
        eni("rrqnet_bridge bridge-name-too-long"),
        [
            "interfaces:3: 'bridge-name-too-long' is not a valid bridge name (1-15 of A-Z a-z 0-9 _ . : + -)"
        ],
    ),
    (
        "dhcp method",
        eni("rrqnet_dhcp udhcpc"),
        [
            "interfaces:3: rrqnet_dhcp: DHCP method 'udhcpc' is not known (the one method is dhclient)"
        ],
    ),
    (
        "mac",
        eni("rrqnet_mac 02:00:00:00:00"),
        ["interfaces:3: '02:00:00:00:00' is not a MAC address (like 02:00:00:00:00:01)"],
    ),
    (
        "mac multicast",
        eni("rrqnet_mac 01:00:5e:00:00:01"),
        ["interfaces:3: 01:00:5e:00:00:01 is not a unicast MAC address (first octet must be even)"],
    ),
    ("mtu", eni("rrqnet_mtu 40"), ["interfaces:3: rrqnet_mtu: 40 is out of range 68..65521"]),
    (
        "freshness",
        eni("rrqnet_freshness soon"),
        ["interfaces:3: rrqnet_freshness: 'soon' is not a number of seconds"],
    ),
    # the model
    (
        "ipv4 only",
        eni("rrqnet_options -4", "rrqnet_remote [fd::1]:3636"),
        ["interfaces:1: -4 (IPv4 only) excludes the IPv6 remote [fd::1]:3636"],
    ),
    (
        "notap bridge",
        {"interfaces": "iface x inet manual\n rrqnet_port notap 3636\n rrqnet_bridge br0\n"},
        ["interfaces:1: bridge, dhcp, mac, mtu and addresses need a tap (not notap)"],
    ),
    (
        "name",
        {"interfaces": "iface name-far-too-long0 inet manual\n rrqnet_port 3636\n"},
        [
            "interfaces:1: 'name-far-too-long0' is not a valid interface name (1-15 of A-Z a-z 0-9 _ . : + -)"
        ],
    ),
    # across cables and sources
    (
        "port clash",
        {"interfaces": IFACE + "iface other0 inet manual\n    rrqnet_port 3636\n"},
        ["interfaces:4: UDP port 3636 is already used by cable mynet0 (interfaces:2)"],
    ),
    (
        "twice",
        {"interfaces": IFACE, "conf.d/mynet0.conf": "TAP=mynet0\nPORT=3637\n"},
        ["conf.d/mynet0.conf: mynet0 is declared twice: here and at interfaces:1"],
    ),
    # key files
    (
        "key relative",
        eni("rrqnet_remote 10.0.0.1:1=keys/k"),
        ["interfaces:3: key file keys/k must be an absolute path"],
    ),
    (
        "key missing",
        eni("rrqnet_remote 10.0.0.1:1=@ROOT@/keys/none"),
        ["interfaces:3: key file @ROOT@/keys/none: No such file or directory"],
    ),
    (
        "key directory",
        eni("rrqnet_remote 10.0.0.1:1=@ROOT@/keys"),
        ["interfaces:3: key file @ROOT@/keys is not a regular file"],
    ),
    (
        "key short",
        {**eni("rrqnet_remote 10.0.0.1:1=@ROOT@/keys/short"), "keys/short": b"x" * 31},
        ["interfaces:3: key file @ROOT@/keys/short is shorter than 32 bytes"],
    ),
    # systemd-networkd
    (
        "networkd header",
        {"network/m.netdev": "[NetDev\nName=m\n[X-RRQNet]\nPort=1\n"},
        ["network/m.netdev:1: bad section header '[NetDev'"],
    ),
    (
        "networkd key=value",
        {"network/m.netdev": "[NetDev]\nName=m\nKind=tap\n[X-RRQNet]\nPort 1\n"},
        ["network/m.netdev:5: 'Port 1' is not Key=Value"],
    ),
    (
        "networkd outside",
        {"network/m.netdev": "Port=1\n[X-RRQNet]\nPort=1\n"},
        ["network/m.netdev:1: assignment outside of any section"],
    ),
    (
        "networkd owned",
        {"network/m.netdev": "[NetDev]\nName=m\nKind=tap\n[X-RRQNet]\nPort=1\nBridge=br0\n"},
        [
            "network/m.netdev:6: Bridge= does not belong in [X-RRQNet]: networkd owns it "
            "(use Bridge= in the [Network] section of a .network file)"
        ],
    ),
    (
        "networkd unknown",
        {"network/m.netdev": "[NetDev]\nName=m\nKind=tap\n[X-RRQNet]\nPort=1\nRemotes=10.0.0.1\n"},
        ["network/m.netdev:6: unknown key Remotes= in [X-RRQNet]; did you mean Remote?"],
    ),
    (
        "networkd notap",
        {"network/m.netdev": "[NetDev]\nName=m\nKind=tap\n[X-RRQNet]\nPort=1\nNoTap=maybe\n"},
        ["network/m.netdev:6: NoTap= wants yes or no, not 'maybe'"],
    ),
    (
        "networkd kind",
        {"network/m.netdev": "[NetDev]\nName=m\nKind=veth\n[X-RRQNet]\nPort=1\n"},
        ["network/m.netdev:3: [X-RRQNet] needs Kind=tap in [NetDev]"],
    ),
    (
        "networkd no port",
        {"network/m.netdev": "[NetDev]\nName=m\nKind=tap\n[X-RRQNet]\nRemote=10.0.0.1:1\n"},
        ["network/m.netdev:5: Remote= without Port=: add 'Port= PORT' to make m a cable"],
    ),
    (
        "networkd empty",
        {"network/m.netdev": "[NetDev]\nName=m\nKind=tap\n[X-RRQNet]\nNoTap=no\n"},
        ["network/m.netdev:5: [X-RRQNet] has no Port="],
    ),
    (
        "networkd bad value",
        {"network/m.netdev": "[NetDev]\nName=m\nKind=tap\n[X-RRQNet]\nPort=1\nNice=99\n"},
        ["network/m.netdev:6: Nice=: 99 is out of range -20..19"],
    ),
    # rrqnet-cron conf.d
    (
        "confd expansion",
        {"conf.d/v.conf": "TAP=v0\nPORT=$(cat /etc/port)\n"},
        ["conf.d/v.conf:2: '$' is shell syntax this file may not use (only NAME=value)"],
    ),
    (
        "confd backtick",
        {"conf.d/v.conf": 'TAP=v0\nPORT="`id`"\n'},
        ["conf.d/v.conf:2: '`' inside double quotes is an expansion; use single quotes"],
    ),
    (
        "confd command",
        {"conf.d/v.conf": "TAP=v0\nrm -rf /\n"},
        ["conf.d/v.conf:2: 'rm -rf /' is not an assignment (this file is read, never run)"],
    ),
    (
        "confd two",
        {"conf.d/v.conf": "TAP=v0 PORT=1\n"},
        ["conf.d/v.conf:1: more after TAP=...: one assignment per line"],
    ),
    (
        "confd semicolon",
        {"conf.d/v.conf": "TAP=v0;PORT=1\n"},
        ["conf.d/v.conf:1: ';' is shell syntax this file may not use (only NAME=value)"],
    ),
    ("confd quote", {"conf.d/v.conf": "TAP='v0\n"}, ["conf.d/v.conf:1: unterminated single quote"]),
    (
        "confd array",
        {"conf.d/v.conf": "TAP=v0\nVPN=( 10.0.0.1\n"},
        ["conf.d/v.conf:3: VPN=( is never closed with )"],
    ),
    ("confd no port", {"conf.d/v.conf": "TAP=v0\n"}, ["conf.d/v.conf: PORT is not set"]),
    (
        "confd bad port",
        {"conf.d/v.conf": "TAP=v0\nPORT=x\n"},
        ["conf.d/v.conf:2: PORT: port 'x' is not a number"],
    ),
    (
        "confd bad remote",
        {"conf.d/v.conf": "TAP=v0\nPORT=1\nVPN=( 10.0.0.1 10.0.0.300 )\n"},
        ["conf.d/v.conf:3: VPN: '10.0.0.300' is not an IPv4 address"],
    ),
]

WARNINGS = [
    (
        "key group-readable",
        {**eni("rrqnet_remote 10.0.0.1:1=@ROOT@/keys/g"), "keys/g": KEY},
        ["interfaces:3: warning: key file @ROOT@/keys/g is readable by its group"],
        0o640,
    ),
    (
        "confd unknown variable",
        {"conf.d/v.conf": "TAP=v0\nPORT=1\nVERBSE=-v\n"},
        [
            "conf.d/v.conf:3: warning: unknown variable VERBSE (a conf.d file sets TAP MAC BR IP "
            "PORT OPTIONS VPN VERBOSE LOG); did you mean VERBOSE?"
        ],
        None,
    ),
]


@pytest.mark.parametrize(
    ("files", "expected"), [c[1:] for c in CATALOGUE], ids=[c[0] for c in CATALOGUE]
)
def test_error_text(tmp_path: Path, files: dict[str, str | bytes], expected: list[str]) -> None:
    cfg = load_tree(tmp_path, files)
    expected = [e.replace("@ROOT@", str(tmp_path)) for e in expected]
    assert error_lines(cfg) == expected
    for name in cfg.broken:
        assert name not in cfg.cables


@pytest.mark.parametrize(
    ("files", "expected", "mode"), [w[1:] for w in WARNINGS], ids=[w[0] for w in WARNINGS]
)
def test_warning_text(
    tmp_path: Path, files: dict[str, str | bytes], expected: list[str], mode: int | None
) -> None:
    from tests.configtree import write_tree

    write_tree(tmp_path, files)
    if mode is not None:
        (tmp_path / "keys" / "g").chmod(mode)
    cfg = load_tree(tmp_path, {})
    assert error_lines(cfg) == [e.replace("@ROOT@", str(tmp_path)) for e in expected]
    assert cfg.cables  # a warning does not stop the cable


def test_world_readable_key_is_an_error(tmp_path: Path) -> None:
    from tests.configtree import write_tree

    write_tree(tmp_path, eni("rrqnet_remote 10.0.0.1:1=@ROOT@/keys/k"))
    (tmp_path / "keys" / "k").chmod(0o644)
    cfg = load_tree(tmp_path, {})
    key = tmp_path / "keys" / "k"
    assert error_lines(cfg) == [
        f"interfaces:3: key file {key} is readable by everyone (chmod o-r {key})"
    ]


def test_all_errors_of_a_file_are_reported_at_once(tmp_path: Path) -> None:
    cfg = load_tree(tmp_path, eni("rrqnet_remot 10.0.0.1", "rrqnet_nice 99", "rrqnet_bridge a b"))
    assert error_lines(cfg) == [
        "interfaces:3: unknown option rrqnet_remot; did you mean rrqnet_remote?",
        "interfaces:4: rrqnet_nice: 99 is out of range -20..19",
        "interfaces:5: rrqnet_bridge: want one word, not 'a b'",
    ]


def test_a_file_ifupdown_cannot_read_stops_its_cables_but_not_others(tmp_path: Path) -> None:
    from rrqctl.errors import ConfigError

    cfg = load_tree(
        tmp_path,
        {
            "interfaces": IFACE + "  stray\n",
            "conf.d/other.conf": "TAP=other0\nPORT=4000\n",
        },
    )
    with pytest.raises(ConfigError) as e:
        cfg.get("mynet0")
    assert e.value.lines == ["interfaces:3: option with empty value"]
    assert cfg.get("other0").port == 4000


def test_files_that_cannot_be_read_are_named_not_a_traceback(tmp_path: Path) -> None:
    """A dangling symlink or a directory where a file should be: said, others still load."""
    cfg = load_tree(
        tmp_path,
        {
            "conf.d/gone.conf": "->/nonexistent/gone.conf",
            "conf.d/other.conf": "TAP=other0\nPORT=4000\n",
            "network/a.network": "->/nonexistent/a.network",
            "network/cab0.netdev": "[NetDev]\nName=cab0\nKind=tap\n[X-RRQNet]\nPort=3636\n",
            "network/y.netdev": "->/nonexistent/y.netdev",
        },
    )
    (tmp_path / "conf.d" / "dir.conf").mkdir()
    again = load_tree(tmp_path, {})
    for c in (cfg, again):
        assert "conf.d/gone.conf: cannot read: No such file or directory" in error_lines(c)
        assert c.get("other0").port == 4000
    assert "conf.d/dir.conf: cannot read: Is a directory" in error_lines(again)
    assert again.get("cab0").port == 3636  # its unreadable .network file is skipped
