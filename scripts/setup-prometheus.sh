#!/bin/sh
# Debian's Prometheus server for the VM tests, unpacked under build/tools
# (apt-get download + dpkg-deb -x), never installed: the package would add a
# user and start a daemon on port 9090 of the machine.  The API needs only
# the binary (the web UI's JavaScript packages are not needed).
# Idempotent; prints the binary's path.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build/tools/prometheus"
if [ ! -f "$dir/.done" ]; then
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp/deb"
	(cd "$dir.tmp/deb" && apt-get download -q -o APT::Sandbox::User=root prometheus >/dev/null) || {
		echo "setup-prometheus: apt-get download prometheus failed (apt-get update first?)" >&2
		exit 1
	}
	dpkg-deb -x "$dir.tmp"/deb/prometheus_*.deb "$dir.tmp"
	rm -rf "$dir.tmp/deb" "$dir"
	mv "$dir.tmp" "$dir"
	touch "$dir/.done"
fi
"$dir/usr/bin/prometheus" --version >/dev/null
echo "$dir/usr/bin/prometheus"
