#!/bin/sh
# Debian packages needed to build the modules, boot the test VM and build RPMs
# (ccache: tests/vm/guest/dkms.py puts it in front of its repeated builds).
# Idempotent: installs only what is missing.
set -eu
pkgs="qemu-system-x86 linux-headers-amd64 busybox-static kmod make gcc nftables
iproute2 util-linux rpm python3-venv procps ethtool dkms python3-bpfcc linux-perf openssl
iperf ccache"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "setup-deps: missing Debian packages:$missing (run as root)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086
apt-get install -y -q --no-install-recommends $missing
