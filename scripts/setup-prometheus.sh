#!/bin/sh
# Debian's Prometheus server for the VM tests, unpacked under
# build/tools/prometheus by scripts/unpack-deb.sh, never installed: the
# package would add a user and start a daemon on port 9090 of the machine.
# The API needs only the binary (the web UI's JavaScript packages are not
# needed).  Idempotent; prints the binary's path.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build/tools/prometheus"
"$top/scripts/unpack-deb.sh" prometheus prometheus
"$dir/usr/bin/prometheus" --version >/dev/null
echo "$dir/usr/bin/prometheus"
