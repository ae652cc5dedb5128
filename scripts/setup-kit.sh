#!/bin/sh
# Prepare the VM kernel kit for KVER under build/kit/KVER:
#   boot/vmlinuz-KVER, lib/modules/KVER (with modules.dep), build -> headers.
# The kernel image comes from Debian's archive (apt-get download, never
# installed); the headers are the installed linux-headers-KVER package.
# Idempotent: a finished kit is marked with .done.
set -eu
kver=${1:-$("$(dirname "$0")/kver.sh")}
top=$(cd "$(dirname "$0")/.." && pwd)
kit="$top/build/kit/$kver"
[ -f "$kit/.done" ] && exit 0

hdr="/usr/src/linux-headers-$kver"
if [ ! -d "$hdr" ]; then
	echo "setup-kit: $hdr is missing: apt-get install linux-headers-$kver" >&2
	exit 1
fi
rm -rf "$kit"
mkdir -p "$kit/deb"
(cd "$kit/deb" && apt-get download -q "linux-image-$kver" >/dev/null) || {
	# the unsigned flavour is what the archive ships for some releases
	(cd "$kit/deb" && apt-get download -q "linux-image-$kver-unsigned" >/dev/null)
}
for deb in "$kit"/deb/*.deb; do
	dpkg-deb -x "$deb" "$kit"
done
rm -rf "$kit/deb"
depmod -b "$kit" "$kver"
ln -sfn "$hdr" "$kit/build"
test -f "$kit/boot/vmlinuz-$kver"
touch "$kit/.done"
echo "setup-kit: kernel kit ready in $kit"
