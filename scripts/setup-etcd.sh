#!/bin/sh
# Debian's etcd server (and etcdctl) for the fleet tests, unpacked under
# build/tools/etcd by scripts/unpack-deb.sh, never installed: the
# etcd-server package would add a user and start a daemon on ports
# 2379/2380 of the machine.  The tests start their own etcd, on free ports,
# with a data directory of their own (tests/unit/etcd_server.py).
# Idempotent; prints the server binary's path (etcdctl is beside it).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
dir="$top/build/tools/etcd"
"$top/scripts/unpack-deb.sh" etcd etcd-server etcd-client
"$dir/usr/bin/etcd" --version >/dev/null
"$dir/usr/bin/etcdctl" version >/dev/null
echo "$dir/usr/bin/etcd"
