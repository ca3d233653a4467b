"""The tunnels compared, each set up between the lab's two namespaces as interface ov0
(addresses OVERLAY, MTU 1400). Each returns the pids of its tunnel processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench.lab import OVERLAY, OVERLAY_MTU, UNDERLAY, Lab, sh

Setup = Callable[[Lab], list[int]]


def _addresses(lab: Lab, dev: str = "ov0") -> None:
    for side in (0, 1):
        lab.run(side, "ip", "link", "set", dev, "mtu", str(OVERLAY_MTU))
        lab.run(side, "ip", "addr", "add", f"{OVERLAY[side]}/24", "dev", dev)
        lab.run(side, "ip", "link", "set", dev, "up")


def veth(lab: Lab) -> list[int]:
    """No tunnel at all: the underlay itself, at the same MTU (the ceiling)."""
    for side, dev in ((0, "ua"), (1, "ub")):
        lab.run(side, "ip", "link", "set", dev, "mtu", str(OVERLAY_MTU))
        lab.run(side, "ip", "addr", "add", f"{OVERLAY[side]}/24", "dev", dev)
    return []


def vxlan(lab: Lab) -> list[int]:
    for side in (0, 1):
        lab.run(
            side,
            "ip",
            "link",
            "add",
            "ov0",
            "type",
            "vxlan",
            "id",
            "42",
            "dstport",
            "4789",
            "remote",
            UNDERLAY[1 - side],
            "local",
            UNDERLAY[side],
            "dev",
            "ua" if side == 0 else "ub",
        )
    _addresses(lab)
    return []


def _key_suffix(lab: Lab) -> str:
    """A new key file for the cable, as the =KEYFILE that follows a remote."""
    path = lab.dir / "cable.key"
    path.write_bytes(os.urandom(64))
    path.chmod(0o600)
    return f"={path}"


def _rrqnet(lab: Lab, key: bool, datapath: str = "") -> list[int]:
    """rrqnet on both sides; datapath: RRQNET_DATAPATH ("python": the fallback; "": the C
    datapath when it is built)."""
    suffix = _key_suffix(lab) if key else ""
    env = {"RRQNET_CONTROL": "none", **({"RRQNET_DATAPATH": datapath} if datapath else {})}
    pids = []
    for side in (0, 1):
        lab.run(side, "ip", "tuntap", "add", "dev", "ov0", "mode", "tap")
    _addresses(lab)
    for side in (0, 1):
        argv = [
            sys.executable,
            "-m",
            "rrqctl.rrqnet",
            "-t",
            "ov0",
            "3636",
            f"{UNDERLAY[1 - side]}:3636{suffix}",
        ]
        pids.append(lab.spawn(side, argv, f"rrqnet{side}.log", env).pid)
    return pids


def _rrqctl_up(lab: Lab, key: bool) -> list[int]:
    """A cable as a user makes one: a stanza with no MTU declared, `rrqctl up` (which sizes
    the tap to the path, 1500 - 28 - 14 on this underlay, 32 less sealed)."""
    suffix = _key_suffix(lab) if key else ""
    pids = []
    for side in (0, 1):
        d = lab.dir / f"side{side}"
        d.mkdir()
        (d / "conf.d").mkdir()
        (d / "network").mkdir()
        (d / "interfaces").write_text(
            "iface ov0 inet manual\n    rrqnet_port 3636\n"
            f"    rrqnet_remote {UNDERLAY[1 - side]}:3636{suffix}\n"
        )
        where = ["--interfaces", str(d / "interfaces"), "--run-dir", str(d / "run")]
        where += ["--confd", str(d / "conf.d"), "--networkd-dir", str(d / "network")]
        lab.run(side, sys.executable, "-m", "rrqctl", "up", "ov0", *where)
        lab.run(side, "ip", "addr", "add", f"{OVERLAY[side]}/24", "dev", "ov0")
        pids.append(int((d / "run" / "ov0.pid").read_text()))
    return pids


def rrqctl_plain_defaults(lab: Lab) -> list[int]:
    return _rrqctl_up(lab, key=False)


def rrqctl_sealed_defaults(lab: Lab) -> list[int]:
    return _rrqctl_up(lab, key=True)


def python_forwarder(lab: Lab) -> list[int]:
    """The floor of any tunnel with a CPython per-frame loop (bench/forwarder.py)."""
    for side in (0, 1):
        lab.run(side, "ip", "tuntap", "add", "dev", "ov0", "mode", "tap")
    _addresses(lab)
    return [
        lab.spawn(
            side,
            [sys.executable, "-m", "bench.forwarder", "ov0", UNDERLAY[1 - side]],
            f"fwd{side}.log",
        ).pid
        for side in (0, 1)
    ]


def rrqctl_plain(lab: Lab) -> list[int]:
    return _rrqnet(lab, key=False)


def rrqctl_plain_python(lab: Lab) -> list[int]:
    return _rrqnet(lab, key=False, datapath="python")


def rrqctl_sealed_python(lab: Lab) -> list[int]:
    return _rrqnet(lab, key=True, datapath="python")


def rrqctl_sealed(lab: Lab) -> list[int]:
    return _rrqnet(lab, key=True)


def _openvpn(lab: Lab, tls: bool) -> list[int]:
    pids = []
    if tls:
        _certificates(lab.dir)
    for side in (0, 1):
        argv = [
            "openvpn",
            "--dev",
            "ov0",
            "--dev-type",
            "tap",
            "--proto",
            "udp",
            "--disable-dco",
            "--local",
            UNDERLAY[side],
            "--remote",
            UNDERLAY[1 - side],
            "--lport",
            "1194",
            "--rport",
            "1194",
            "--tun-mtu",
            str(OVERLAY_MTU),
            "--ifconfig",
            OVERLAY[side],
            "255.255.255.0",
            "--verb",
            "1",
        ]
        if not tls:
            argv += ["--cipher", "none", "--auth", "none"]
        elif side == 0:
            argv += [
                "--tls-server",
                "--dh",
                "none",
                "--ca",
                "ca.crt",
                "--cert",
                "server.crt",
                "--key",
                "server.key",
                "--data-ciphers",
                "AES-256-GCM",
            ]
        else:
            argv += [
                "--tls-client",
                "--remote-cert-tls",
                "server",
                "--ca",
                "ca.crt",
                "--cert",
                "client.crt",
                "--key",
                "client.key",
                "--data-ciphers",
                "AES-256-GCM",
            ]
        argv += ["--cd", str(lab.dir)]
        pids.append(lab.spawn(side, argv, f"openvpn{side}.log").pid)
    return pids


def openvpn_none(lab: Lab) -> list[int]:
    return _openvpn(lab, tls=False)


def openvpn_gcm(lab: Lab) -> list[int]:
    return _openvpn(lab, tls=True)


def _certificates(d: Path) -> None:
    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ossl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    ossl(
        "req",
        "-x509",
        "-new",
        "-key",
        "ca.key",
        "-subj",
        "/CN=bench-ca",
        "-days",
        "2",
        "-out",
        "ca.crt",
    )
    for name, ext in (
        ("server", "extendedKeyUsage=serverAuth\nkeyUsage=digitalSignature,keyAgreement\n"),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ):
        (d / f"{name}.ext").write_text(ext)
        ossl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key")
        ossl("req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}", "-out", f"{name}.csr")
        ossl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.crt",
        )


def _tinc(lab: Lab, cipher: bool) -> list[int]:
    names = ("a", "b")
    for side, name in enumerate(names):
        d = lab.dir / "tinc" / name
        (d / "hosts").mkdir(parents=True)
        subprocess.run(
            ["openssl", "genrsa", "-out", str(d / "rsa_key.priv"), "2048"],
            check=True,
            capture_output=True,
        )
        (d / "rsa_key.priv").chmod(0o600)
        conf = f"Name = {name}\nMode = switch\nDeviceType = tap\nInterface = ov0\n"
        conf += "AddressFamily = ipv4\n"
        if side == 0:
            conf += "ConnectTo = b\n"
        (d / "tinc.conf").write_text(conf)
        up = d / "tinc-up"
        up.write_text(
            f"#!/bin/sh\nip link set $INTERFACE mtu {OVERLAY_MTU} up\n"
            f"ip addr add {OVERLAY[side]}/24 dev $INTERFACE\n"
        )
        up.chmod(0o755)
        pub = sh("openssl", "rsa", "-in", str(d / "rsa_key.priv"), "-RSAPublicKey_out").stdout
        host = f"Address = {UNDERLAY[side]}\nPort = 655\n" + (
            "" if cipher else "Cipher = none\nDigest = none\n"
        )
        (d / "hosts" / name).write_text(host + pub)
    for name in names:
        for other in names:
            (lab.dir / "tinc" / name / "hosts" / other).write_text(
                (lab.dir / "tinc" / other / "hosts" / other).read_text()
            )
    return [
        lab.spawn(
            side,
            [
                "tincd",
                "-c",
                str(lab.dir / "tinc" / n),
                "-D",
                "-d0",
                f"--pidfile={lab.dir / 'tinc' / n}.pid",
            ],
            f"tinc{side}.log",
        ).pid
        for side, n in enumerate(names)
    ]


def tinc_none(lab: Lab) -> list[int]:
    return _tinc(lab, cipher=False)


def tinc_default(lab: Lab) -> list[int]:
    return _tinc(lab, cipher=True)


VARIANTS: dict[str, tuple[str, Setup]] = {
    "veth": ("veth, no tunnel (ceiling)", veth),
    "vxlan": ("kernel VXLAN", vxlan),
    "openvpn-none": ("OpenVPN 2.6 tap, no cipher", openvpn_none),
    "openvpn-gcm": ("OpenVPN 2.6 tap, AES-256-GCM", openvpn_gcm),
    "tinc-none": ("tinc 1.0 switch, no cipher", tinc_none),
    "tinc-default": ("tinc 1.0 switch, default cipher", tinc_default),
    "pyfwd": ("bare Python forwarder (floor)", python_forwarder),
    "rrqctl-plain": ("rrqctl plain (rrqnet-compatible)", rrqctl_plain),
    "rrqctl-sealed": ("rrqctl sealed (ChaCha20-Poly1305)", rrqctl_sealed),
    "rrqctl-plain-python": ("rrqctl plain, Python datapath", rrqctl_plain_python),
    "rrqctl-sealed-python": ("rrqctl sealed, Python datapath", rrqctl_sealed_python),
    "rrqctl-plain-defaults": ("rrqctl plain, no MTU declared", rrqctl_plain_defaults),
    "rrqctl-sealed-defaults": ("rrqctl sealed, no MTU declared", rrqctl_sealed_defaults),
}
