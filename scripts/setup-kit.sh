#!/bin/sh
# Prepare the VM kernel kit for KVER under build/kit/KVER:
#   boot/vmlinuz-KVER, lib/modules/KVER (with modules.dep), build -> headers.
# The kernel image comes from Debian's archive (apt-get download, never
# installed).  The headers are the installed linux-headers-KVER package when
# there is one; otherwise (the other kernels of the matrix, scripts/kernels.sh)
# the headers, their -common part and the matching linux-kbuild package are
# downloaded and extracted into the kit too, with the paths that point to
# /usr/src and /usr/lib rewritten to point into the kit.
#
# Kernels of Debian 11 (bullseye, 5.10.0-N-amd64) come from a private apt
# configuration (scripts/debian-apt.sh; the machine's own apt setup is not
# touched); every other kernel from the machine's configured archive.
# Idempotent: a finished kit is marked with .done.
set -eu
kver=${1:-$("$(dirname "$0")/kver.sh")}
top=$(cd "$(dirname "$0")/.." && pwd)
kit="$top/build/kit/$kver"
[ -f "$kit/.done" ] && exit 0
# The kit's paths are written into it (its headers' Makefile, the build
# link): name it by its real path, so that a tree whose build/kit is a link
# to another's leaves a kit that still works when that tree is gone.
mkdir -p "$top/build/kit"
kit="$(cd "$top/build/kit" && pwd -P)/$kver"

# The Debian suite this kernel comes from (see scripts/debian-apt.sh).
apt_suite() {
	case "$kver" in
	5.10.*) echo bullseye ;;
	*) echo system ;;
	esac
}

apt_cmd() { # apt-get|apt-cache ARGS...
	"$top/scripts/debian-apt.sh" "$(apt_suite)" "$@"
}

download() { # DIR PACKAGE...
	dir=$1
	shift
	(cd "$dir" && apt_cmd apt-get download -q "$@" >/dev/null)
}

# The kbuild package a headers package depends on (linux-kbuild-6.1,
# linux-kbuild-6.12.117+deb12, ...).
kbuild_of() {
	apt_cmd apt-cache show "linux-headers-$kver" | sed -n 's/^Depends: //p' | head -n1 |
		tr ',' '\n' | sed -n 's/^ *\(linux-kbuild-[^ ]*\).*/\1/p' | head -n1
}

common_of() {
	apt_cmd apt-cache show "linux-headers-$kver" | sed -n 's/^Depends: //p' | head -n1 |
		tr ',' '\n' | sed -n 's/^ *\(linux-headers-[^ ]*-common\).*/\1/p' | head -n1
}

rm -rf "$kit"
mkdir -p "$kit/deb"
download "$kit/deb" "linux-image-$kver" 2>/dev/null ||
	# the unsigned flavour is what the archive ships for some releases
	download "$kit/deb" "linux-image-$kver-unsigned" || {
	echo "setup-kit: no linux-image-$kver(-unsigned) in the $(apt_suite) archive" >&2
	exit 1
}

hdr="/usr/src/linux-headers-$kver"
if [ ! -d "$hdr" ]; then
	# Not installed on this machine: bring the headers into the kit.
	common=$(common_of)
	kbuild=$(kbuild_of)
	if [ -z "$common" ] || [ -z "$kbuild" ]; then
		echo "setup-kit: linux-headers-$kver is not in the $(apt_suite) archive" >&2
		exit 1
	fi
	download "$kit/deb" "linux-headers-$kver" "$common" "$kbuild"
	hdr="$kit/usr/src/linux-headers-$kver"
fi
for deb in "$kit"/deb/*.deb; do
	dpkg-deb -x "$deb" "$kit"
done
rm -rf "$kit/deb"

if [ "${hdr#"$kit"/}" != "$hdr" ]; then
	# Headers extracted into the kit: the flavour's Makefile includes the
	# -common one by absolute path, and /lib/modules/KVER/build points to
	# /usr/src.  The scripts/tools links are relative (../../lib/linux-kbuild-X)
	# and resolve inside the kit already.
	sed -i "s|/usr/src/|$kit/usr/src/|g" "$hdr/Makefile"
	test -e "$hdr/scripts/Makefile.build" || {
		echo "setup-kit: $hdr/scripts does not resolve: $(readlink "$hdr/scripts")" >&2
		exit 1
	}
	rm -f "$kit/lib/modules/$kver/build" "$kit/lib/modules/$kver/source"
fi
depmod -b "$kit" "$kver"
ln -sfn "$hdr" "$kit/build"
test -f "$kit/boot/vmlinuz-$kver"
test -f "$kit/build/Makefile"
touch "$kit/.done"
echo "setup-kit: kernel kit ready in $kit"
