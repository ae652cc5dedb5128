#!/bin/sh
# Debian's etcd server (and etcdctl) for the fleet tests, unpacked under
# build/tools/etcd (apt-get download + dpkg-deb -x), never installed: the
# etcd-server package would add a user and start a daemon on ports
# 2379/2380 of the machine.  The tests start their own etcd, on free ports,
# with a data directory of their own (tests/fleet/etcd.py).
# Idempotent; prints the server binary's path (etcdctl is beside it).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build/tools/etcd"
if [ ! -f "$dir/.done" ]; then
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp/deb"
	download() {
		(cd "$dir.tmp/deb" &&
			apt-get download -q -o APT::Sandbox::User=root etcd-server etcd-client >/dev/null)
	}
	# a fresh machine may have no package lists yet: update them once (as root)
	download || { [ "$(id -u)" = 0 ] && apt-get update -q >/dev/null && download; } || {
		echo "setup-etcd: apt-get download etcd-server etcd-client failed (apt-get update first?)" >&2
		exit 1
	}
	for deb in "$dir.tmp"/deb/*.deb; do
		dpkg-deb -x "$deb" "$dir.tmp"
	done
	rm -rf "$dir.tmp/deb" "$dir"
	mv "$dir.tmp" "$dir"
	touch "$dir/.done"
fi
"$dir/usr/bin/etcd" --version >/dev/null
"$dir/usr/bin/etcdctl" version >/dev/null
echo "$dir/usr/bin/etcd"
