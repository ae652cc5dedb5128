#!/bin/sh
# The published guide's build command for the client package:
#
#   sh tmcc_client_auto_rpm.sh [VERSION [RPM_ROOT [OUT_DIR]]]
#
# builds multi_client-VERSION-1.<arch>.rpm for the running kernel (KVER=...
# for another; its kernel-devel must be installed) and the
# multicast-proxy-tools-VERSION-1.noarch.rpm it requires, and copies both to
# OUT_DIR (default: this directory, as before).  Needs rpm-build and
# kernel-devel.
# A thin wrapper: scripts/build-rpms.sh does the work (and --help explains it).
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/scripts/build-rpms.sh" ${1:+--version "$1"} ${2:+--topdir "$2"} \
	--out "${3:-$here}" client tools
