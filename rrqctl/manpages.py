"""The man pages, in troff: rrqnet(8), rrqctl(8), rrqnet-ifupdown(8), rrqnet-cron(8).

Generated (`python -m rrqctl.manpages DIR`) so the option lists come from the same tables
the parsers use; the files in man/ are checked against this by the tests.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

from rrqctl import __version__
from rrqctl.config.options import OPTIONS
from rrqctl.engine import cpucaps
from rrqctl.engine.channels import DOWNLINK_FORGET_AFTER, DOWNLINK_LIMIT
from rrqctl.engine.switch import LOCAL_MAC_LIMIT, MAC_AGE, MAC_LIMIT, MAC_SHARE
from rrqctl.errors import ExitCode

DATE = "2026-11-22"
Section = tuple[str, list[str]]


def esc(text: str) -> str:
    """Plain text as troff: backslashes, hyphens, leading dots and quotes made literal."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(
        ("\\&" + line) if line[:1] in (".", "'") else line for line in text.split("\n")
    )


def para(*texts: str) -> list[str]:
    return [x for t in texts for x in (".PP", esc(t))]


def item(term: str, text: str) -> list[str]:
    return [".TP", f".B {esc(term)}", esc(text)]


def example(lines: Iterable[str]) -> list[str]:
    return [".PP", ".nf", ".RS 4", *(esc(line) for line in lines), ".RE", ".fi"]


def page(name: str, summary: str, sections: list[Section]) -> str:
    out = [
        f'.TH {name.upper()} 8 "{DATE}" "rrqctl {__version__}" "System Administration"',
        ".SH NAME",
        f"{esc(name)} \\- {esc(summary)}",
    ]
    for title, body in sections:
        out += [f".SH {title}", *body]
    return "\n".join(out) + "\n"


def exit_status() -> list[str]:
    meaning = {
        ExitCode.OK: "success",
        ExitCode.FAILURE: "something could not be done or repaired (said on standard error)",
        ExitCode.USAGE: "the command line is wrong",
        ExitCode.CONFIG: "the configuration is wrong (each problem as FILE:LINE: message); nothing changed",
        ExitCode.ACTION: "a host action failed; what had been made was undone",
        ExitCode.ENGINE: "the engine could not start (what had been made was undone), "
        "or stopped on an error",
        ExitCode.NOT_RUNNING: "the cable is not running (or is not a cable)",
        ExitCode.BUSY: "another rrqctl holds the lock",
    }
    return [x for code, text in meaning.items() for x in item(str(int(code)), text)]


REMOTES = [
    *item(
        "a.b.c.d[/n][:port][=keyfile]",
        "An IPv4 address block. With the full prefix (no /n, or /32) and a port it is an uplink: "
        "the engine sends to it, and heartbeats it every 30 seconds. Anything else is a downlink "
        "mask: sources it admits may connect, and are forgotten after 3 silent minutes. A port on "
        "a downlink mask must match the source port.",
    ),
    *item(
        "addr[/n][=keyfile]",
        "A plain IPv6 address block: without brackets there is no port, so it "
        "is always a downlink mask. rrqctl warns when its last group reads as a port "
        "(fd00::2:3636, meant as [fd00::2]:3636).",
    ),
    *item(
        "[addr[/n]][:port][=keyfile]",
        "A bracketed IPv6 address block, optionally with a port: "
        "with the full prefix and a port it is an uplink.",
    ),
    *item(
        "name:port[=keyfile], [name]:port[=keyfile]",
        "A host name: an uplink to the address it resolves to (IPv4 only with -4), looked up "
        "at start in a thread of its own, again every 5 minutes, and every 15 seconds while "
        "the uplink goes unanswered (the next address of the name is tried then), so that a "
        "peer that moves is followed without a restart. Its datagrams are taken from that "
        "address and port only. rrqctl up and ifup refuse a name that does not resolve (unless "
        "an earlier up resolved it); rrqnet, systemd and cron warn and keep trying.",
    ),
    *item(
        "-i mac[,mac]*",
        "After a remote: MAC addresses to ignore on that remote's channels, as source or "
        "destination, both ways.",
    ),
]

SEALED = para(
    "A remote (or the multicast channel) with =keyfile is sealed. What that guarantees: a frame "
    "reaches the tap only if a holder of the key file sent it, to this engine, in a session made "
    "in the last 3 minutes, and only once; datagrams from anyone without the key never reach the "
    "tap, create no downlink and get no reply, nor do recorded ones replayed from anywhere.",
    "An uplink makes a session by a handshake (Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s, the key "
    "file as its pre-shared key): fresh X25519 keys at both ends, so a stolen key file does not "
    "open earlier captures; a key per direction; ChaCha20-Poly1305 with a replay window of 2048 "
    "counters; a new session every 120 seconds, the old one still accepted until it is 180 "
    "seconds old. A downlink is made only once its first datagram has proved that the peer "
    "receives at its address. A multicast group has no handshake: each member seals under "
    "sessions of its own, bound to the address they first came from; that proves membership, "
    "not which member. Sealing adds 32 bytes to a datagram (40 on a multicast channel).",
    "The file may be any size of 32 bytes or more; rrqctl genkey writes one (64 random bytes, "
    "mode 0600); copy it to every end. This is rrqctl's own format (docs/protocol.md, version 2, "
    "with its threat model), not the key-file scrambling of the C rrqnet, whose format is not "
    "published: a sealed channel needs rrqctl at both ends. Plain channels are byte-compatible "
    "with rrqnet, vde_plug udp:// and QEMU.",
    "Handshakes are dated: one whose date is further than RRQNET_FRESHNESS from this clock is "
    "refused, and logged. Residual risk: right after an engine restarts, a handshake recorded in "
    "the last minutes can be replayed to it once; it gets a reply no bigger than itself and "
    "leads to no session.",
)

MTU = para(
    "A frame crosses the cable as one UDP datagram, so it fits a path of MTU M when it is no "
    "longer than M - 28 bytes over IPv4 (M - 48 over IPv6), 32 less on a sealed channel and "
    "40 less on a sealed multicast channel. A tap that a cable declared for rrqctl makes "
    "(rrqctl up, ifup, rrqnet@.service, rrqnet-cron) gets, unless rrqnet_mtu or MTUBytes= says "
    "otherwise, the MTU whose frames (14 bytes of Ethernet header more) fit the route to every "
    "remote: 1458 on a 1500-byte IPv4 path, 1426 sealed.",
    "Such a cable's engine sends every datagram with DF set and learns each remote's path MTU "
    "from the route, from EMSGSIZE and from ICMP (rrqctl status shows it, and the tap's MTU). A "
    "frame from the tap too big for the path is answered as a router would: an ICMP "
    "fragmentation-needed (IPv4 with DF) or packet-too-big (IPv6) back into the tap with the "
    "MTU that fits, or, IPv4 without DF, sent on in IP fragments of its own that fit; each is "
    "counted as too-big. No datagram is ever cut into IP fragments on the underlay. "
    "rrqnet_mss_clamp also lowers the MSS of TCP SYNs crossing the cable, for hosts that do "
    "not heed ICMP.",
    "The rrqnet command keeps rrqnet(8)'s behaviour: it leaves the tap's MTU alone and lets "
    "big datagrams fragment. With RRQNET_PMTU=1 it sends with DF and answers frames too big "
    "as above.",
)

OPENSSL_IA32CAP = (
    f"On x86, unless already set, rrqnet sets it to {cpucaps.NO_AVX512} before OpenSSL loads: "
    "OpenSSL then seals and opens with its AVX2 code instead of its AVX-512 code, whose start-up "
    "cost on each datagram-sized call made a sealed frame about 1.8 us dearer (sealing and "
    "opening, measured on a 2-core KVM guest). Set it yourself to choose otherwise; "
    "see OPENSSL_ia32cap(3)."
)


def rrqnet_page() -> str:
    synopsis = [
        ".B rrqnet",
        "[\\fB\\-v\\fR|\\fB\\-vv\\fR|\\fB\\-vvv\\fR] [\\fB\\-tpg\\fR] [\\fB\\-4\\fR] "
        "[\\fB\\-B\\fR \\fIn\\fR] [\\fB\\-T\\fR \\fIn\\fR] [\\fB\\-m\\fR \\fImcast\\fR] "
        "[\\fB\\-t\\fR \\fItap\\fR] [\\fB\\-S\\fR \\fIsource\\fR]",
        "\\fIport\\fR ( \\fIremote\\fR [\\fB\\-i\\fR \\fImac\\fR[,\\fImac\\fR]*] )*",
    ]
    options = [
        *item(
            "-v, -vv, -vvv",
            "Log on standard error: operation; also connections and messaging; also every frame.",
        ),
        *item(
            "-tpg",
            "Pad datagrams of 1461 to 1477 bytes to 1478 bytes (a workaround for NAT "
            "devices that mishandle those sizes).",
        ),
        *item(
            "-4",
            "Use an IPv4-only socket. By default one dual-stack IPv6 socket serves both "
            "families (IPv4 as ::ffff:a.b.c.d).",
        ),
        *item(
            "-B n",
            "How many datagrams or frames the engine takes in per wake-up before it sends "
            "them on (default 64). Upstream this is the number of receive buffers.",
        ),
        *item(
            "-T n",
            "Accepted for compatibility and ignored: the engine is one thread. Upstream "
            "this is the number of dispatch threads.",
        ),
        *item(
            "-m ipv4:port[=keyfile]",
            "Join an IPv4 multicast group as one more, persistent "
            "channel; whatever arrives on it counts as coming from the group. QEMU's -netdev "
            "socket,mcast= is a peer. The engine's own datagrams echoed back are ignored.",
        ),
        *item(
            "-t tap",
            "Use this tap (creating a non-persistent one if there is none). With -t - "
            "the local end is standard input and output in the VDE plug stream format (each frame "
            "after its length, 2 bytes big-endian). Without -t the engine is a switch among its "
            "remotes only.",
        ),
        *item("-S source", "Send (and receive) UDP on this local address."),
    ]
    return page(
        "rrqnet",
        "packet tunnelling over UDP, multiple channels",
        [
            ("SYNOPSIS", synopsis),
            (
                "DESCRIPTION",
                para(
                    "rrqnet is a virtual cable: it carries Ethernet frames between a tap (or standard "
                    "input/output) and UDP channels to remote hosts, and switches among all its channels by "
                    "destination MAC address, as a learning switch does. It is rrqctl's engine behind the "
                    "command line of rrqnet(8), which it keeps exactly: options in their fixed order, then "
                    "the UDP port, then the remotes.",
                    "Unicast frames go to the channel where the destination was learned; broadcast, "
                    "multicast and unknown destinations go to every known channel but the one they came "
                    "from. A MAC address is bound to the channel it arrived on for 6 seconds after a "
                    "broadcast and 20 seconds after a unicast frame; a frame from it via another channel "
                    "meanwhile is dropped, which is what keeps cycles of cables from looping broadcasts.",
                    "Datagrams shorter than 12 bytes are heartbeats; longer ones are one frame each. Only "
                    "sources that a remote declaration admits are accepted. Everything dropped is counted "
                    "by reason (see rrqctl status).",
                    "A remote is up only while something authentic arrives from it: a downlink answers "
                    "each heartbeat (at most one a second), so an uplink hears from a live peer at least "
                    "every 30 seconds. One not heard from for 60 seconds (two heartbeat intervals) is "
                    "stale, with the reason as far as the engine can tell (no reply for N s; N datagrams "
                    "from it refused since, and why); the change is logged once, and rrqctl check reports "
                    "it and logs it once to syslog.",
                    "What the network can make the engine hold is bounded. The MAC table holds at most "
                    f"{MAC_LIMIT} addresses learned from remotes, {MAC_SHARE} of them from any one "
                    f"remote, and {LOCAL_MAC_LIMIT} learned from the tap, which no remote can take: "
                    "past its share, frames from a new source MAC are dropped "
                    f"(mac-table-full) until old addresses age out, {MAC_AGE:.0f} seconds after they "
                    f"were last seen. A downlink mask holds at most {DOWNLINK_LIMIT} downlinks at once: "
                    "past that, datagrams from a new source are dropped (downlinks-full) until a "
                    f"downlink has been silent for {DOWNLINK_FORGET_AFTER:.0f} seconds. A plain mask "
                    "admits any source address in it, forged ones too; seal masks that face untrusted "
                    "networks.",
                ),
            ),
            ("OPTIONS", [*para("Options must come in this order."), *options]),
            ("REMOTES", REMOTES),
            ("SEALED CHANNELS", SEALED),
            ("MTU", MTU),
            (
                "ENVIRONMENT",
                [
                    *item(
                        "RRQNET_CONTROL",
                        "Path of the control socket (default /run/rrqnet/NAME.sock, "
                        "NAME being the tap, or rrqnet-PORT; inside a network namespace that "
                        "ip netns named NS, /run/rrqnet/netns/NS/NAME.sock); none for no socket.",
                    ),
                    *item(
                        "RRQNET_PMTU",
                        "1: send with DF, learn each remote's path MTU, answer frames too big "
                        "with ICMP (see MTU); 0, the default: let datagrams fragment, as upstream.",
                    ),
                    *item(
                        "RRQNET_FRESHNESS",
                        "Seconds the date of a sealed channel's handshake may differ from "
                        "this clock, either way (default 600; 0: handshakes are not dated, "
                        "for ends without a clock).",
                    ),
                    *item("OPENSSL_ia32cap", OPENSSL_IA32CAP),
                ],
            ),
            ("EXIT STATUS", exit_status()),
            (
                "EXAMPLES",
                [
                    *para(
                        "Two hosts, 10.0.0.1 and 192.168.0.1, each with tap0 already made and addressed:"
                    ),
                    *example(
                        [
                            "[10.0.0.1]# rrqnet -v -t tap0 1400 192.168.0.1:1400",
                            "[192.168.0.1]# rrqnet -v -t tap0 1400 10.0.0.1:1400",
                        ]
                    ),
                    *para(
                        "A server that admits any client of 10.2.0.0/16 with the right key, and a client "
                        "behind NAT:"
                    ),
                    *example(
                        [
                            "[server]# rrqnet -t vpn0 2300 10.2.0.0/16:2300=/etc/rrqnet/keys/vpn0.key",
                            "[client]# rrqnet -t vpn0 2300 5.6.7.1:2300=/etc/rrqnet/keys/vpn0.key",
                        ]
                    ),
                    *para("Into a VDE switch through standard input and output:"),
                    *example(["# dpipe rrqnet -t - 1400 0.0.0.0/0 = vde_plug /tmp/vde1.ctl"]),
                ],
            ),
            (
                "NOTES",
                para(
                    "Upstream's examples that pipe rrqnet through dpipe without -t need -t - here: without "
                    "-t the engine is a pure switch. Upstream's multicast example uses 244.0.2.1, which is "
                    "not a multicast address; rrqnet says so and suggests 224.0.2.1."
                ),
            ),
            (
                "SEE ALSO",
                [
                    ".BR rrqctl (8),",
                    ".BR rrqnet-ifupdown (8),",
                    ".BR vde_plug (1),",
                    ".BR dpipe (1)",
                ],
            ),
        ],
    )


COMMANDS = [
    (
        "up NAME [--ifupdown-state DIR]",
        "Bring a cable up: tap (persistent, no packet information), MAC and MTU, link up, "
        "addresses (those of the stanza's inet and inet6 static stanzas, or conf.d's IP=), bridge, "
        "the engine (detached, with RUN/NAME.pid and RUN/NAME.sock), nice, log, dhclient. Each step is "
        "printed as [#] command as it is done; a failure undoes the steps done. Already up: nothing "
        "happens. A stanza of /etc/network/interfaces on a host with ifupdown is brought up by "
        "ifup NAME instead (printed as [#] ifup NAME), so that ifupdown knows it is up and "
        "ifdown takes it down.",
    ),
    (
        "down NAME [--ifupdown-state DIR]",
        "Undo what up made (recorded in RUN/NAME.json); a tap that existed before stays, as it "
        "was found (down, without the addresses up gave it). A cable ifupdown records as up is "
        "taken down by ifdown NAME. A conf.d cable, which check keeps up as rrqnet-cron does, "
        "stays down (RUN/NAME.down) until up.",
    ),
    ("plan NAME", "Print what up would do on this host now, changing nothing."),
    (
        "run NAME",
        "Run the cable in the foreground, as rrqnet@NAME.service does: set up, run the engine, "
        "supervise dhclient, repair local faults, tell systemd READY, STATUS and WATCHDOG; SIGHUP re-reads "
        "the remotes; SIGTERM undoes the set-up. The cable is read and checked and the tap "
        "made first; the process then re-executes itself (same pid, same command line plus "
        "--engine-fd) as a small engine process, and runs repairs, tear-down and reloads in "
        "short-lived helpers, beside the datapath, which keeps running; on x86 the engine "
        f"process gets OPENSSL_ia32cap={cpucaps.NO_AVX512} unless it is set (see rrqnet(8)). "
        "Its health checks run every 10 seconds (--health-every) and at once when the kernel announces a change to "
        "the tap or its addresses. Under systemd ($FDSTORE, which rrqnet@.service sets), a tap it made "
        "is kept in the unit's file descriptor store and is not persistent: a restart after a crash "
        "adopts it as it was (same ifindex, addresses, bridge), and stopping the unit removes it even "
        "when no engine is left to (a stop during RestartSec=).",
    ),
    (
        "show [NAME] [--json]",
        "The declared cables, their rrqnet command line and where every value came "
        "from (FILE:LINE); configuration errors, each as FILE:LINE: message.",
    ),
    (
        "status [NAME] [--json | --metrics]",
        "Live state from the control socket: remotes (kind, state, last heard, "
        "sealed or plain, counters), learned MAC addresses, drops by reason, the engine's "
        "memory and CPU time. --metrics prints it as Prometheus text exposition, every "
        "running cable in one file (for node_exporter's textfile collector): "
        "rrqnet_channel_frames_total, rrqnet_channel_bytes_total, rrqnet_channel_up, "
        "rrqnet_dropped_total, rrqnet_macs, rrqnet_resident_memory_bytes, "
        "rrqnet_cpu_seconds_total. The control sockets are root's: another user is told so "
        "(exit 1).",
    ),
    (
        "check [NAME...] [--dry-run] [--now] [--json] [--quiet]",
        "Find what died and repair it: engine, tap, MAC, MTU, "
        "bridge membership, dhclient. Without names: every cable that should be up (recorded by up or the "
        "ifupdown hook, auto or allow-hotplug stanzas ifupdown records as up, conf.d cables). Cables that "
        "systemd supervises are only reported; once such a unit is stopped, what its cable left "
        "is taken away (record, pid file, control socket, a persistent tap it made). A cable "
        "that ifup or ifdown is changing at that moment is left to them (ifupdown's lock on the interface says so), and a cable taken down while the "
        "check runs stays down. Repairs that fail wait 1, 2, 4 ... 60 minutes; --now tries at once "
        "(once what failed is fixed). A file it cannot read is said on standard error and makes "
        "it exit 1: the cables declared there go unchecked. --dry-run reports and writes "
        "nothing. Run from /etc/cron.d/rrqnet.",
    ),
    ("hook", "The ifupdown hook (see rrqnet-ifupdown(8))."),
    (
        "render networkd|unit|interfaces|cron [NAME]",
        "Print the cable as systemd-networkd files, the unit "
        "with this cable's drop-in, an interfaces stanza, or the cron file.",
    ),
    (
        "install [--root DIR] [--uninstall]",
        "Put the hooks, units, cron file and /etc/rrqnet in place (for "
        "installations from PyPI; the Debian package ships them itself).",
    ),
    (
        "genkey FILE [--size N]",
        "Write a new random key file (mode 0600, N bytes, 64 by default, 32 at least) for "
        "sealed channels: copy it to every end. A sealed channel lets through only frames that "
        "a holder of the file sent, each once, in sessions made by a handshake (rrqnet(8), "
        "SEALED CHANNELS).",
    ),
    ("demo", "A sealed cable between two network namespaces: pinged, shown, removed."),
]


def rrqctl_page() -> str:
    return page(
        "rrqctl",
        "manage rrqnet virtual cables",
        [
            ("SYNOPSIS", [".B rrqctl", "[\\fIoptions\\fR] \\fICOMMAND\\fR [\\fIoptions\\fR]"]),
            (
                "DESCRIPTION",
                para(
                    "rrqctl declares, starts, supervises and repairs rrqnet virtual cables on Debian and "
                    "Devuan hosts. A cable is declared once: as an /etc/network/interfaces stanza with "
                    "rrqnet_* options (rrqnet-ifupdown(8)), as a systemd-networkd NAME.netdev with Kind=tap "
                    "and an [X-RRQNet] section, or as rrqnet-cron's /etc/rrqnet/conf.d/NAME.conf. Every "
                    "source is parsed, never run, and checked before anything on the host changes."
                ),
            ),
            ("COMMANDS", [x for cmd, text in COMMANDS for x in item(cmd, text)]),
            (
                "OPTIONS",
                [
                    *para(
                        "Where cables are declared and run; before the command or after it. "
                        "A file named here that cannot be read is an error, never 'no cables'."
                    ),
                    *item(
                        "--interfaces FILE",
                        "The interfaces file (default /etc/network/interfaces).",
                    ),
                    *item(
                        "--networkd-dir DIR",
                        "A systemd-networkd directory; repeat it for several (default: "
                        "/etc, /run, /usr/local/lib and /usr/lib systemd/network).",
                    ),
                    *item("--confd DIR", "rrqnet-cron's directory (default /etc/rrqnet/conf.d)."),
                    *item(
                        "--run-dir DIR",
                        "Pid files, records and control sockets (default /run/rrqnet; inside a "
                        "network namespace that ip netns named NS, /run/rrqnet/netns/NS, so that "
                        "cables of one name in two namespaces never meet).",
                    ),
                    *item(
                        "--ifupdown-state DIR",
                        "(up, down, check) Where ifupdown records what it brought up (default "
                        "/run/network); given to ifup and ifdown as --state-dir when not that.",
                    ),
                ],
            ),
            (
                "SYSTEMD-NETWORKD",
                [
                    *para(
                        "networkd owns the tap, its MAC and MTU, the bridge and DHCP; rrqnet@NAME.service runs "
                        "the engine on the tap once networkd has made it. Keys of [X-RRQNet] (in the .netdev or "
                        "in NAME.netdev.d/*.conf drop-ins, applied in lexical order; an empty Remote= resets the "
                        "list):"
                    ),
                    *[
                        x
                        for o in OPTIONS
                        if o.networkd not in ("Bridge", "DHCP", "MACAddress", "MTUBytes")
                        for x in item(f"{o.networkd}=", o.help)
                    ],
                    *item("NoTap=", "yes: the engine uses no tap (a switch among its remotes)."),
                    *example(
                        [
                            "# /etc/systemd/network/mynet0.netdev",
                            "[NetDev]",
                            "Name=mynet0",
                            "Kind=tap",
                            "",
                            "[X-RRQNet]",
                            "Port=3636",
                            "Remote=10.0.0.2:3636=/etc/rrqnet/keys/mynet0.key",
                        ]
                    ),
                ],
            ),
            (
                "FILES",
                [
                    *item(
                        "/run/rrqnet/NAME.{pid,sock,json}",
                        "The engine's pid, its control socket, and the record of what up made.",
                    ),
                    *item(
                        "/run/rrqnet/NAME.down",
                        "A conf.d cable taken down by rrqctl down: check leaves it down.",
                    ),
                    *item("/etc/rrqnet/keys/", "Key files (mode 0700 directory)."),
                    *item("/etc/cron.d/rrqnet", "Runs rrqctl check every minute."),
                    *item(
                        "/lib/systemd/system/rrqnet@.service",
                        "One cable under systemd; rrqnet.target groups them.",
                    ),
                ],
            ),
            ("EXIT STATUS", exit_status()),
            (
                "SEE ALSO",
                [
                    ".BR rrqnet (8),",
                    ".BR rrqnet-ifupdown (8),",
                    ".BR rrqnet-cron (8),",
                    ".BR interfaces (5),",
                    ".BR systemd.netdev (5)",
                ],
            ),
        ],
    )


def ifupdown_page() -> str:
    return page(
        "rrqnet-ifupdown",
        "rrqnet virtual cables declared in /etc/network/interfaces",
        [
            ("SYNOPSIS", [".B /etc/network/if-{pre-up,up,down,post-down}.d/rrqnet"]),
            (
                "DESCRIPTION",
                para(
                    "A stanza with rrqnet_port is an rrqnet virtual cable: ifup brings it up, ifdown takes it "
                    "down. The hook hands over to rrqctl hook (the rrqctl that rrqctl install was run as, "
                    "else the one on ifupdown's PATH), which reads the phase and the options from "
                    "ifupdown's environment, and takes FILE:LINE from the interfaces file for its "
                    "messages. A stanza with other rrqnet_* options but no rrqnet_port (a typo in it, "
                    "say) makes ifup fail with what is wrong; so does a cable declared in two stanzas.",
                    "pre-up makes the tap (unless notap), sets its MAC and MTU, brings it up, joins the bridge "
                    "and starts the engine, and returns once the engine is ready; post-up starts dhclient; "
                    "pre-down releases the lease and stops dhclient; post-down stops the engine and removes "
                    "the tap it made. Where systemd is PID 1 the hook starts and stops rrqnet@IFACE.service "
                    "instead, so that systemd supervises the cable (and post-down takes away what the cable left "
                    "if ifdown came while systemd waited to restart a crashed engine). A mistake in the stanza makes ifup fail "
                    "with FILE:LINE: message, and nothing is left behind. "
                    "The addresses of inet and inet6 static stanzas are ifup's to give; rrqctl up "
                    "gives the same ones when it brings the cable up itself.",
                ),
            ),
            ("OPTIONS", [x for o in OPTIONS for x in item(f"{o.name} {o.args}", o.help)]),
            (
                "EXAMPLE",
                [
                    *example(
                        [
                            "auto mynet0",
                            "iface mynet0 inet static",
                            "    address 10.100.100.1/24",
                            "    rrqnet_port 3636",
                            "    rrqnet_options -4 -B 10 -T 1",
                            "    rrqnet_remote 111.222.33.44:3636=/etc/rrqnet/keys/mynet.key",
                            "    rrqnet_log -v /var/log/mynet0.log",
                        ]
                    ),
                    *para(
                        "A cable through host 111.222.33.44, port 3636, sealed with a shared key file; the engine "
                        "uses an IPv4-only socket and logs at -v to /var/log/mynet0.log. With no rrqnet_mtu, the "
                        "tap is made with the MTU whose frames fit one datagram on the route to 111.222.33.44: "
                        "on a 1500-byte path, 1500 - 28 (IPv4 and UDP) - 14 (Ethernet) - 32 (sealing) = 1426."
                    ),
                ],
            ),
            (
                "SEE ALSO",
                [".BR rrqnet (8),", ".BR rrqctl (8),", ".BR interfaces (5),", ".BR dhclient (8)"],
            ),
        ],
    )


def cron_page() -> str:
    return page(
        "rrqnet-cron",
        "keep rrqnet cables up from cron",
        [
            ("SYNOPSIS", [".B rrqnet-cron", "[\\fINAME\\fR...]"]),
            (
                "DESCRIPTION",
                para(
                    "rrqnet-cron NAME is rrqctl check NAME: it makes sure the cable's tap, MAC, address, bridge "
                    "and engine are there, and repairs what is not. A cable of /etc/rrqnet/conf.d/NAME.conf is "
                    "read as plain shell assignments, never run: TAP, MAC, BR, IP, PORT, OPTIONS=( ... ), "
                    "VPN=( remotes [-i mac,...] ... ) and VERBOSE; and LOG, rrqctl's own, with "
                    "rrqnet_log's words (a file to append the engine's log to). "
                    "rrqctl down NAME keeps a conf.d cable down until rrqctl up NAME."
                ),
            ),
            (
                "EXAMPLE",
                example(
                    [
                        "# /etc/rrqnet/conf.d/office.conf",
                        "TAP=office0",
                        "MAC=02:00:00:00:0f:0f",
                        "BR=br9",
                        "IP=10.9.9.1/24",
                        "PORT=3939",
                        "OPTIONS=( -4 )",
                        "VPN=( 10.0.9.1:3939=/etc/rrqnet/keys/office.key )",
                        "LOG=/var/log/rrqnet/office0.log",
                    ]
                ),
            ),
            ("SEE ALSO", [".BR rrqctl (8),", ".BR rrqnet (8)"]),
        ],
    )


PAGES = {
    "rrqnet.8": rrqnet_page,
    "rrqctl.8": rrqctl_page,
    "rrqnet-ifupdown.8": ifupdown_page,
    "rrqnet-cron.8": cron_page,
}


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "man")
    out.mkdir(parents=True, exist_ok=True)
    for name, make in PAGES.items():
        (out / name).write_text(make())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
