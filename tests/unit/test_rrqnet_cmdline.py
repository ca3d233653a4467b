"""rrqnet(8)'s command line: every example of the man page, the fixed option order, errors."""

from __future__ import annotations

import pytest

from rrqctl.config.cmdline import build
from rrqctl.errors import ExitCode, UsageError
from rrqctl.rrqnet import main

# (argv, local, [(declared, kind, sealed)]) for every example in rrqnet(8)
MAN_PAGE_EXAMPLES = [
    (
        "-t vpn0 2300 5.6.7.1:2300=/sec/vpn0.key",
        "tap",
        [("5.6.7.1:2300=/sec/vpn0.key", "uplink", True)],
    ),
    (
        "-t vpn0 2300 1.2.3.0/24:2300=/sec/vpn0.key",
        "tap",
        [("1.2.3.0/24:2300=/sec/vpn0.key", "downlink", True)],
    ),
    (
        "-t vpn0 2300 [fe::1:4]:2300=/sec/vpn0.key",
        "tap",
        [("[fe::1:4]:2300=/sec/vpn0.key", "uplink", True)],
    ),
    (
        "-t vpn0 2300 [fd::/120]:2300=/sec/vpn0.key",
        "tap",
        [("[fd::/120]:2300=/sec/vpn0.key", "downlink", True)],
    ),
    (
        "-t vpn0 2300 2.0.0.1:2300 3.0.0.1:2300 4.0.0.1:2300",
        "tap",
        [
            ("2.0.0.1:2300", "uplink", False),
            ("3.0.0.1:2300", "uplink", False),
            ("4.0.0.1:2300", "uplink", False),
        ],
    ),
    (
        "-v -t tap0 1400 10.2.0.0/16:1400=/sec/keyfile",
        "tap",
        [("10.2.0.0/16:1400=/sec/keyfile", "downlink", True)],
    ),
    ("-v -t tap0 1400 [fe::1:3]:1400", "tap", [("[fe::1:3]:1400", "uplink", False)]),
    ("-v -t tap0 1400 [fe::2]:1400", "tap", [("[fe::2]:1400", "uplink", False)]),
    ("-v -t tap0 1400 192.168.0.1:1400", "tap", [("192.168.0.1:1400", "uplink", False)]),
    ("-v -t tap0 1400 10.0.0.1:1400", "tap", [("10.0.0.1:1400", "uplink", False)]),
    ("-v -t tap0 1400 10.2.0.0/16:1400", "tap", [("10.2.0.0/16:1400", "downlink", False)]),
    # the dpipe examples: without -t the engine is a pure switch (use -t - for stdio)
    ("1400 0.0.0.0/0=keyfile0", "none", [("0.0.0.0/0=keyfile0", "downlink", True)]),
    ("1401 0.0.0.0/0=keyfile1", "none", [("0.0.0.0/0=keyfile1", "downlink", True)]),
    ("1400 0.0.0.0/0", "none", [("0.0.0.0/0", "downlink", False)]),
]


@pytest.mark.parametrize(("argv", "local", "remotes"), MAN_PAGE_EXAMPLES)
def test_man_page_example_parses(
    argv: str, local: str, remotes: list[tuple[str, str, bool]]
) -> None:
    cable = build(argv.split())
    assert cable.local == local
    assert [(r.text(), r.kind, r.sealed) for r in cable.remotes] == remotes
    # the Cable says it back as the same command line
    assert cable.rrqnet_argv()[1:] == argv.split()


def test_man_page_multicast_example_gets_a_hint_for_its_typo() -> None:
    """rrqnet(8) writes '-m 244.0.2.1:2000': 244/8 is not multicast; we say so and suggest 224."""
    with pytest.raises(
        UsageError, match=r"244\.0\.2\.1 is not an IPv4 multicast .*did you mean 224\.0\.2\.1\?"
    ):
        build(["-m", "244.0.2.1:2000", "-t", "vpn0"])
    cable = build(["-m", "224.0.2.1:2000", "-t", "vpn0"])
    assert cable.port is None and cable.multicast is not None
    assert str(cable.multicast.group) == "224.0.2.1" and cable.multicast.port == 2000


def test_all_options_in_order() -> None:
    argv = [
        "-vvv",
        "-tpg",
        "-4",
        "-B",
        "10",
        "-T",
        "1",
        "-m",
        "239.1.2.3:2000=/k",
        "-t",
        "tap7",
        "-S",
        "10.0.0.1",
        "3636",
        "10.0.0.2:3636",
    ]
    c = build(argv)
    assert (c.verbosity, c.tpg, c.ipv4_only, c.buffers, c.threads) == (3, True, True, 10, 1)
    assert c.multicast is not None and c.multicast.keyfile == "/k"
    assert (c.name, c.local, str(c.source), c.port) == ("tap7", "tap", "10.0.0.1", 3636)
    assert c.rrqnet_argv()[1:] == argv


def test_stdio_and_ignore_lists() -> None:
    c = build(
        [
            "-t",
            "-",
            "1400",
            "10.0.0.0/8",
            "-i",
            "02:00:00:00:00:01,02:00:00:00:00:02",
            "10.1.1.1:1400",
        ]
    )
    assert c.local == "stdio"
    assert c.remotes[0].ignore == (bytes.fromhex("020000000001"), bytes.fromhex("020000000002"))
    assert c.remotes[1].ignore == ()


@pytest.mark.parametrize(
    ("argv", "word"),
    [
        ("-4 -v 1400", "'-v' is out of order"),
        ("-t tap0 -4 1400", "'-4' is out of order"),
        ("-v -v 1400", "'-v' is out of order"),
        ("-x 1400", "unknown option '-x'"),
        ("-vvvv 1400", "unknown option '-vvvv'"),
        ("-B ten 1400", "-B needs a positive number, not 'ten'"),
        ("-T 0 1400", "-T needs a positive number, not '0'"),
        ("-t", "option '-t' needs a value"),
        ("", "the UDP port is missing"),
        ("-t tap0", "the UDP port is missing"),
        ("tap0 1400", "'tap0' is not a port number"),
        ("70000", "port 70000 is out of range 1-65535"),
        ("1400 1.2.3.4:99999", "remote '1.2.3.4:99999': port 99999 is out of range 1-65535"),
        ("1400 1.2.3.256", "remote '1.2.3.256': '1.2.3.256' is not an IPv4 address"),
        ("1400 1.2.3.4/33", "prefix length '33' is out of range 0-32"),
        ("1400 [fe::1:2300", "has no closing ']'"),
        ("1400 [fe::1]x", "unexpected 'x' after ']'"),
        ("1400 10.0.0.1=", "has '=' but no key file"),
        ("1400 fe::1/129", "prefix length '129' is out of range 0-128"),
        ("1400 -i 02:00:00:00:00:01", "'-i' must follow a remote declaration"),
        ("1400 10.0.0.1 -i", "'-i' after '10.0.0.1' needs"),
        ("1400 10.0.0.1 -i 02:00:00:00:00", "'02:00:00:00:00' is not a MAC address"),
        ("1400 10.0.0.1 -4", "unexpected '-4' among the remotes"),
        ("-S nowhere 1400", "-S needs an IP address, not 'nowhere'"),
        ("-m 10.0.0.1:2000 1400", "10.0.0.1 is not an IPv4 multicast address"),
        ("-m 239.0.0.1 1400", "needs a port"),
        ("-4 1400 [fe::1]:1400", "-4 (IPv4 only) excludes the IPv6 remote [fe::1]:1400"),
        ("-t this-name-is-too-long 1400", "is not a valid interface name"),
    ],
)
def test_usage_errors_name_the_offending_word(argv: str, word: str) -> None:
    with pytest.raises(UsageError) as e:
        build(argv.split())
    assert word in str(e.value)


def test_main_prints_one_usage_error_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["-4", "-v", "1400"])
    err = capsys.readouterr().err
    assert rc == ExitCode.USAGE == 2
    assert err.startswith("rrqnet: option '-v' is out of order")
    assert "usage: rrqnet" in err and "Traceback" not in err


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "usage: rrqnet" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("rrqnet (rrqctl) ")


def test_missing_key_file_is_a_config_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(["1400", "10.0.0.1:1400=/nonexistent/key"])
    err = capsys.readouterr().err
    assert rc == ExitCode.CONFIG
    assert err == "rrqnet: key file /nonexistent/key: No such file or directory\n"
