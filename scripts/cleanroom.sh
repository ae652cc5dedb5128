#!/bin/sh
# The README's commands on a fresh Debian 12 machine: a new Debian root made
# with debootstrap (--variant=minbase, plus git, make and ca-certificates:
# what the README says a user needs), a clean clone of this repository's HEAD
# in it, and in a chroot there, as the README writes them:
#
#     make demo
#     make test
#
#   scripts/cleanroom.sh [--then COMMAND]...
#
# Each --then COMMAND runs afterwards in the same clone (CI adds its lint,
# style and kernel-matrix runs this way).  The exit status is the first
# failure's; every step is timed.
#
# Of this machine the root gets only its network settings: the resolver
# configuration (/etc/resolv.conf), the trusted CA certificates under
# /usr/local/share/ca-certificates (installed with update-ca-certificates),
# and the proxy variables, if any are set.  Its apt sources are Debian 12's
# usual three (bookworm, bookworm-updates, bookworm-security) on the mirror
# this machine uses (scripts/debian-mirror.sh).  Nothing the project
# installs is cached: only debootstrap's own result, unmodified, in
# $MCP_CLEANROOM_CACHE (default /var/cache/multicast-proxy/cleanroom),
# keyed by suite, mirror and package list.
#
# Needs root and debootstrap (installed with apt-get when missing).  The root
# is build/cleanroom/root, made anew on each run; the clone is /root/multicast-proxy.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
me=cleanroom
suite=bookworm
include=git,make,ca-certificates
root="$top/build/cleanroom/root"
cache=${MCP_CLEANROOM_CACHE:-/var/cache/multicast-proxy/cleanroom}
clone=/root/multicast-proxy

die() {
	echo "$me: $*" >&2
	exit 1
}

then_cmds=""
nl='
'
while [ $# -gt 0 ]; do
	case "$1" in
	--then) [ $# -ge 2 ] || die "--then needs a command"; then_cmds="$then_cmds$2$nl"; shift ;;
	-h | --help) sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
	shift
done

[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts)"
git -C "$top" rev-parse --verify -q HEAD >/dev/null || die "$top is not a git checkout with a commit"
if ! command -v debootstrap >/dev/null; then
	echo "$me: installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap \
		>/dev/null 2>&1 || {
		apt-get update -q >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap
	}
fi

started=$(date +%s)
stage() { echo "== $me: $* ($(($(date +%s) - started)) s)"; }

unmount_all() {
	# deepest first; lazy, so that a process still holding a file cannot
	# keep the next run from wiping the root
	if [ -d "$root" ]; then
		for m in $(awk -v r="$root" 'index($2, r) == 1 { print $2 }' /proc/mounts | sort -r); do
			umount -l "$m" 2>/dev/null || :
		done
	fi
}

# ---------------------------------------------------------------- the root
mirror=$("$top/scripts/debian-mirror.sh")
key=$(printf '%s %s %s' "$suite" "$mirror" "$include" | sha256sum | cut -c1-16)
tarball="$cache/debootstrap-$suite-minbase-$key.tar"
unmount_all
# (a process of an interrupted run may still be writing there for a moment)
rm -rf "$root" 2>/dev/null || { sleep 5; rm -rf "$root"; }
mkdir -p "$root" "$cache"
if [ -f "$tarball" ]; then
	stage "debootstrap result from the cache ($tarball)"
else
	stage "debootstrap --variant=minbase --include=$include $suite $mirror"
	fresh="$top/build/cleanroom/debootstrap.$$"
	rm -rf "$fresh"
	if ! debootstrap --variant=minbase --include="$include" "$suite" "$fresh" "$mirror" \
		>"$top/build/cleanroom/debootstrap.log" 2>&1; then
		tail -n 20 "$top/build/cleanroom/debootstrap.log" >&2
		die "debootstrap failed (log: $top/build/cleanroom/debootstrap.log)"
	fi
	tar -C "$fresh" -cf "$tarball.$$" . && mv "$tarball.$$" "$tarball"
	rm -rf "$fresh"
fi
tar -C "$root" -xf "$tarball"

# This machine's network settings, and nothing else of it.
rm -f "$root/etc/resolv.conf"
cp -L /etc/resolv.conf "$root/etc/resolv.conf"
if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
	cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
fi
chroot "$root" update-ca-certificates >/dev/null
security=${mirror%/debian*}/debian-security
cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb $security $suite-security main
EOF

trap unmount_all EXIT INT TERM
mount -t proc proc "$root/proc"
mount -t sysfs sysfs "$root/sys"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs -o mode=1777 tmpfs "$root/tmp"

# ---------------------------------------------------------------- the clone
stage "git clone of $(git -C "$top" rev-parse --short HEAD) into $clone"
git clone -q --no-hardlinks "$top" "$root$clone"

# A login's environment, not this process's: only what reaches the network.
run_in_root() { # COMMAND
	set -- env -i HOME=/root USER=root LOGNAME=root TERM=dumb LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
	for v in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
		eval "val=\${$v:-}"
		# shellcheck disable=SC2154
		[ -z "$val" ] || set -- "$@" "$v=$val"
	done
	"$@" chroot "$root" /bin/sh -c "cd $clone && $cmd"
}

status=0
run_step() { # COMMAND
	cmd=$1
	stage "$cmd"
	if run_in_root; then
		stage "$cmd: ok"
	else
		rc=$?
		stage "$cmd: FAILED (exit $rc)"
		[ "$status" != 0 ] || status=$rc
	fi
}

# The README's commands, as the README writes them.
run_step "make demo" </dev/null
run_step "make test" </dev/null
printf '%s' "$then_cmds" >"$top/build/cleanroom/then"
while IFS= read -r c; do
	[ -z "$c" ] || run_step "$c" </dev/null
done <"$top/build/cleanroom/then"
stage "done: exit $status"
exit "$status"
