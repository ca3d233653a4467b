#!/bin/sh
# Install what rrqctl's demo and tests need, and nothing that is already there.
# Usage: tools/bootstrap.sh [demo|check|bench]   (run as root on Debian 12/13)
set -eu
cd "$(dirname "$0")/.."
WHAT=${1:-check}
VENV=${VENV:-.venv}

# Debian packages per purpose. The demo needs the kernel tools and Debian's
# python3 (its python3-systemd); the tests drive the real programs.
PKGS_DEMO="iproute2 iputils-ping procps python3 python3-venv python3-systemd gcc python3-dev
  libssl-dev"
PKGS_CHECK="$PKGS_DEMO ifupdown dnsmasq-base isc-dhcp-client vdeplug vde2 cron
  systemd dbus psmisc util-linux debootstrap lintian man-db faketime iptables"
PKGS_BENCH="$PKGS_DEMO iperf3 openvpn tinc linux-perf"
case "$WHAT" in
  demo) PKGS=$PKGS_DEMO ;;
  check) PKGS=$PKGS_CHECK ;;
  bench) PKGS=$PKGS_BENCH ;;
  *) echo "usage: $0 [demo|check|bench]" >&2; exit 2 ;;
esac

missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
    || missing="$missing $p"
done
if [ -n "$missing" ]; then
  [ "$(id -u)" = 0 ] || { echo "bootstrap: need root to install:$missing" >&2; exit 1; }
  echo "bootstrap: installing Debian packages:$missing"
  # Never let package installation start services (cron, openvpn, tinc) on this host.
  policy=/usr/sbin/policy-rc.d; ours=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; ours=1
  fi
  trap '[ -z "$ours" ] || rm -f "$policy"' EXIT
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

# A venv on Debian's python3 sees python3-systemd (the pyenv python does not).
if [ ! -x "$VENV/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
stamp="$VENV/.installed-$WHAT"
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  extra=""; [ "$WHAT" = check ] && extra="[test]"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".$extra"
  touch "$stamp"
fi
# The C datapath (rrqctl/engine/fastpath.c), built in place for the editable install,
# again whenever its source is newer than what was built.
so=$(ls rrqctl/engine/_fastpath.*.so 2>/dev/null | head -n 1 || true)
if [ -z "$so" ] || [ rrqctl/engine/fastpath.c -nt "$so" ] || [ setup.py -nt "$so" ]; then
  RRQCTL_FASTPATH=required "$VENV/bin/python" setup.py -q build_ext --inplace 2>&1 \
    | grep -v -e _BetaConfiguration -e 'warnings.warn(msg' >&2 || true
  ls rrqctl/engine/_fastpath.*.so >/dev/null
fi
# Byte-compile the package: this environment may set PYTHONDONTWRITEBYTECODE, and without
# .pyc files every rrqctl command (cron's check each minute) compiles its modules again.
"$VENV/bin/python" -m compileall -q rrqctl >/dev/null
