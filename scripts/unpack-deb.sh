#!/bin/sh
# Unpack Debian packages under build/tools/NAME (apt-get download +
# dpkg-deb -x), without installing them: for servers the tests start
# themselves (etcd, Prometheus), whose packages would add a user and start a
# daemon on the machine.  Idempotent: a finished directory has a .done mark.
#
#   scripts/unpack-deb.sh NAME PACKAGE...
#
# A fresh machine may have no package lists yet: then, as root, they are
# updated once and the download retried.
set -eu
[ $# -ge 2 ] || { echo "usage: unpack-deb.sh NAME PACKAGE..." >&2; exit 2; }
top=$(cd "$(dirname "$0")/.." && pwd)
name=$1
shift
dir="$top/build/tools/$name"
[ -f "$dir/.done" ] && exit 0
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp/deb"
download() {
	(cd "$dir.tmp/deb" && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null)
}
download "$@" || { [ "$(id -u)" = 0 ] && apt-get update -q >/dev/null && download "$@"; } || {
	echo "unpack-deb: apt-get download $* failed (apt-get update first?)" >&2
	exit 1
}
for deb in "$dir.tmp"/deb/*.deb; do
	dpkg-deb -x "$deb" "$dir.tmp"
done
rm -rf "$dir.tmp/deb" "$dir"
mv "$dir.tmp" "$dir"
touch "$dir/.done"
