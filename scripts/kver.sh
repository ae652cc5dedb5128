#!/bin/sh
# The ABI name of the Debian kernel that linux-headers-amd64 points at
# (e.g. 6.1.0-56-amd64): the kernel the modules are built for and the VM boots.
set -eu
dep=$(dpkg-query -W -f='${Depends}' linux-headers-amd64 2>/dev/null || true)
case "$dep" in
linux-headers-*) echo "$dep" | sed -e 's/^linux-headers-//' -e 's/ .*//' ;;
*) echo "kver.sh: linux-headers-amd64 is not installed: run 'make deps'" >&2; exit 1 ;;
esac
