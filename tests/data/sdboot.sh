#!/bin/sh
# Boot a real systemd as PID 1 in private pid/mount/cgroup/net/uts/ipc namespaces, on a
# throw-away root: a tmpfs with the host's /usr read-only (merged-/usr Debian). Never on the
# host's root: systemd-tmpfiles would empty /tmp and every enabled host service would start.
#
# Environment: SDROOT (a scratch dir), SDSHARE (etc/ tree copied into the root's /etc),
# SDCGROUP (a cgroup name of our own), SDBIND (a host dir bound at the same path, read-only),
# SDOVERLAY=1 to use an overlay of SDLOWER (default /) instead of the tmpfs root (dpkg tests),
# SDUNIFIED=1 for a pure cgroup2 layout (systemd 256 and later need it).
set -eu
: "${SDROOT:?}" "${SDSHARE:?}" "${SDCGROUP:?}"
ROOT=$SDROOT/root
LOG=$SDROOT/console.log
if [ "${SD_INNER:-}" != 1 ]; then
  for h in systemd unified; do
    mkdir -p "/sys/fs/cgroup/$h/$SDCGROUP"
    echo $$ > "/sys/fs/cgroup/$h/$SDCGROUP/cgroup.procs"
  done
  SD_INNER=1 exec unshare --pid --fork --mount --propagation private --cgroup --uts --ipc --net "$0"
fi
mkdir -p "$ROOT"; : > "$LOG"
if [ "${SDOVERLAY:-}" = 1 ]; then
  mkdir -p "$SDROOT/ovl"; mount -t tmpfs sd-ovl "$SDROOT/ovl"; mkdir "$SDROOT/ovl/upper" "$SDROOT/ovl/work"
  mount -t overlay sd-ovl -o "lowerdir=${SDLOWER:-/},upperdir=$SDROOT/ovl/upper,workdir=$SDROOT/ovl/work" "$ROOT"
  cd "$ROOT"
  for d in tmp var/tmp run; do mount -t tmpfs -o mode=1777 "sd-$(echo $d | tr / -)" $d; done; chmod 755 run
  mkdir -p etc/systemd/system
  for u in timers.target getty.target console-getty.service cron.service; do ln -sf /dev/null etc/systemd/system/$u; done
else
  mount -t tmpfs -o mode=755 sd-root "$ROOT"
  cd "$ROOT"
  mkdir -p usr etc var/tmp var/log var/lib tmp run proc sys dev root
  chmod 1777 tmp var/tmp
  mount --rbind /usr usr; mount -o remount,bind,ro usr
  for d in bin sbin lib lib64; do ln -s usr/$d $d; done
  cp /etc/passwd /etc/group /etc/shadow /etc/nsswitch.conf etc/ 2>/dev/null || true
  ln -s ../usr/lib/os-release etc/os-release
  : > etc/machine-id
fi
cp -a "$SDSHARE/etc/." etc/
if [ -n "${SDBIND:-}" ]; then
  mkdir -p ".$SDBIND"; mount --rbind "$SDBIND" ".$SDBIND"; mount -o remount,bind,ro ".$SDBIND"
fi
# /dev: fresh nodes (the host's /dev/net/tun is 0600 and stays untouched); console -> a log file
mount -t tmpfs -o mode=755,nosuid sd-dev dev
mkdir -p dev/net dev/pts dev/shm
mknod -m 666 dev/null c 1 3; mknod -m 666 dev/zero c 1 5; mknod -m 666 dev/full c 1 7
mknod -m 666 dev/random c 1 8; mknod -m 666 dev/urandom c 1 9; mknod -m 666 dev/tty c 5 0
mknod -m 666 dev/net/tun c 10 200
: > dev/console; mount --bind "$LOG" dev/console
mount --rbind /sys sys; mount -o remount,bind,ro sys
if [ "${SDUNIFIED:-}" = 1 ]; then
  mount -t cgroup2 sd-cg2 sys/fs/cgroup
else
  mount -t tmpfs -o mode=755 sd-cg sys/fs/cgroup
  mkdir sys/fs/cgroup/systemd sys/fs/cgroup/unified
  mount -t cgroup -o none,name=systemd,xattr sd-cg1 sys/fs/cgroup/systemd
  mount -t cgroup2 sd-cg2 sys/fs/cgroup/unified
fi
mount -t proc proc proc
mount --bind proc/sys proc/sys; mount -o remount,bind,ro proc/sys
mount --bind proc/sys/net proc/sys/net; mount -o remount,bind,rw proc/sys/net
mkdir .oldroot; pivot_root . .oldroot; cd /; umount -l /.oldroot; rmdir /.oldroot
exec env -i container=rrqctl-test PATH=/usr/sbin:/usr/bin /lib/systemd/systemd --system --unit=sd-idle.target --log-level=info
