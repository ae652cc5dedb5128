#!/bin/sh
# Build the RPMs:
#   multi_server-VERSION-RELEASE.ARCH.rpm   the multis module for one kernel
#   multi_client-VERSION-RELEASE.ARCH.rpm   the multic module for one kernel
#   multicast-proxy-tools-VERSION-RELEASE.noarch.rpm   the commands, services
#                      and vendored libraries, which all the others require
#   multicast-proxy-dkms-VERSION-RELEASE.noarch.rpm   module sources for DKMS
#                      (instead of multi_server/multi_client: they conflict)
#
#   scripts/build-rpms.sh [OPTIONS] [server] [client] [tools] [dkms]   (default: all four)
#
#   --kver KVER     kernel to build the modules for ($KVER; default: the running one)
#   --kdir DIR      its build tree ($KDIR; default /lib/modules/KVER/build, else
#                   this repository's kit build/kit/KVER/build)
#   --version V     package version (default: pyproject.toml's)
#   --release R     package release (default 1)
#   --topdir DIR    rpmbuild's work tree (default build/rpm; ~/.rpmmacros is never touched)
#   --out DIR       where the finished RPMs are copied (default build/rpms)
#   --with-kernel-requires / --without-kernel-requires
#                   Requires: kernel-uname-r = KVER (default: with, except for
#                   Debian kernels and this repository's kits, which no rpm
#                   database knows)
#
# Needs rpmbuild (RHEL: rpm-build; Debian: rpm), gcc, make, the kernel's build
# tree, and PyPI the first time (the vendored wheels are cached in
# build/vendor, checked against packaging/rpm/vendor-requirements.txt).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
me=build-rpms

die() {
	echo "$me: $*" >&2
	exit 1
}

kver=${KVER:-}
kdir=${KDIR:-}
version=""
release=1
topdir="$top/build/rpm"
out="$top/build/rpms"
kernel_requires=""
what=""
while [ $# -gt 0 ]; do
	case "$1" in
	--kver) kver=$2; shift ;;
	--kdir) kdir=$2; shift ;;
	--version) version=$2; shift ;;
	--release) release=$2; shift ;;
	--topdir) topdir=$2; shift ;;
	--out) out=$2; shift ;;
	--with-kernel-requires) kernel_requires=with ;;
	--without-kernel-requires) kernel_requires=without ;;
	server | client | tools | dkms) what="$what $1" ;;
	-h | --help) sed -n '2,/^set -eu/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
	shift
done
what=${what:-server client tools dkms}
case "$topdir" in /*) ;; *) topdir="$PWD/$topdir" ;; esac
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

command -v rpmbuild >/dev/null ||
	die "rpmbuild is missing: install rpm-build (RHEL, Alinux) or rpm (Debian)"

if [ -z "$version" ]; then
	version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$top/pyproject.toml" | head -n1)
	[ -n "$version" ] || die "no version in pyproject.toml: pass --version"
fi

# The kernel: say clearly which build tree is missing and what to install
# (the old packages failed deep inside rpmbuild instead).
case "$what" in
*server* | *client*)
	kver=${kver:-$(uname -r)}
	if [ -z "$kdir" ]; then
		if [ -f "/lib/modules/$kver/build/Makefile" ]; then
			kdir="/lib/modules/$kver/build"
		elif [ -f "$top/build/kit/$kver/build/Makefile" ]; then
			kdir="$top/build/kit/$kver/build"
			kernel_requires=${kernel_requires:-without}
		else
			die "no build tree for kernel $kver (looked in /lib/modules/$kver/build and
$top/build/kit/$kver/build): install kernel-devel-$kver (RHEL, Alinux) or
linux-headers-$kver (Debian), or name another kernel with --kver/--kdir"
		fi
	fi
	[ -f "$kdir/Makefile" ] || die "$kdir is not a kernel build tree (no Makefile) for $kver"
	[ -f "$top/kernel/Makefile" ] || die "kernel/Makefile is missing: cannot build the modules"
	# RHEL-style names (4.18.0-513.el8.x86_64) are valid RPM versions;
	# Debian's (6.1.0-56-amd64: two '-') are not, and no rpm database has them.
	case "$kver" in *-*-*) kernel_requires=${kernel_requires:-without} ;; esac
	;;
esac
kernel_requires=${kernel_requires:-with}

# Debian's rpm has an empty database: BuildRequires cannot be checked there.
nodeps=""
rpm -q --quiet rpm 2>/dev/null || nodeps="--nodeps"

# (kernel/Makefile skips module BTF where pahole is missing.)
kmake_flags=""
# Debian's headers name the compiler their kernel was built with (5.10:
# gcc-10); where that one is missing, the system's gcc builds the modules.
if [ -n "$kdir" ] && [ -f "$kdir/.kernelvariables" ]; then
	kcc=$(sed -n 's/^CC *=.*\(gcc-[0-9][0-9]*\).*/\1/p' "$kdir/.kernelvariables" | head -n1)
	if [ -n "$kcc" ] && ! command -v "$kcc" >/dev/null; then
		echo "$me: $kcc (named by $kdir) is missing: building with gcc" >&2
		kmake_flags="$kmake_flags CC=gcc"
	fi
fi

mkdir -p "$topdir/SOURCES" "$topdir/SPECS" "$topdir/BUILD" "$topdir/RPMS" "$topdir/SRPMS" "$out"

# Source0: the project tree (tracked and new files, not build products).
src="multicast-proxy-$version"
list="$topdir/SOURCES/$src.files"
(
	cd "$top"
	# git's list when this is a checkout's top (a copy of the tree inside
	# another checkout, like build/vmtest/*, is not: git would answer for
	# the outer one), else every file but build products.
	if [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$top" ]; then
		git ls-files -co --exclude-standard -- kernel multicast_admin packaging docs \
			pyproject.toml README.md LICENSE COPYING
	else
		find kernel multicast_admin packaging docs pyproject.toml README.md LICENSE COPYING \
			-type f ! -name '*.o' ! -name '*.ko' ! -name '*.cmd' ! -name '*.mod' \
			! -name '*.mod.c' ! -name '*.order' ! -name '*.symvers' ! -name '.*.d' \
			! -name '*.pyc' ! -path '*/__pycache__/*' 2>/dev/null
	fi
) | while read -r f; do [ -f "$top/$f" ] && echo "$f"; done | sort -u > "$list"
tar -C "$top" -czf "$topdir/SOURCES/$src.tar.gz" --owner=0 --group=0 \
	--transform "s,^,$src/," -T "$list"

# Source1 of the tools: the vendored wheels, downloaded once (shared by every
# --topdir) and checked against their hashes.
# The few without a pure wheel (vendor-sdists.txt) come as hash-checked source
# archives, of which only the Python modules are shipped (vendor/src/).
reqs="$top/packaging/rpm/vendor-requirements.txt"
sdists="$top/packaging/rpm/vendor-sdists.txt"
vendor="$top/build/vendor"
case "$what" in *tools*) need_vendor=1 ;; *) need_vendor="" ;; esac
if [ -n "$need_vendor" ] && { [ ! -f "$vendor/.done" ] || [ "$reqs" -nt "$vendor/.done" ] ||
	[ "$sdists" -nt "$vendor/.done" ]; }; then
	fresh="$vendor.$$"
	rm -rf "$fresh"
	mkdir -p "$fresh/vendor"
	pip="python3 -m pip"
	[ -x "$top/.venv/bin/python" ] && pip="$top/.venv/bin/python -m pip"
	# shellcheck disable=SC2086
	$pip download -q --no-deps --only-binary=:all: --python-version 3.9 \
		--require-hashes -r "$reqs" -d "$fresh/vendor" ||
		die "could not download the vendored wheels (needs PyPI, see $reqs)"
	mkdir -p "$fresh/sdist" "$fresh/vendor/src"
	# shellcheck disable=SC2086
	$pip download -q --no-deps --no-binary=:all: --require-hashes -r "$sdists" \
		-d "$fresh/sdist" ||
		die "could not download the vendored sources (needs PyPI, see $sdists)"
	for archive in "$fresh"/sdist/*.tar.gz; do
		base=$(basename "$archive" .tar.gz)
		tar -C "$fresh/sdist" -xzf "$archive"
		for pkg in "$fresh/sdist/$base"/src/*/; do
			case "$pkg" in *.egg-info/ | *-stubs/) continue ;; esac
			name=$(basename "$pkg")
			mkdir -p "$fresh/vendor/src/$name"
			cp "$pkg"*.py "$fresh/vendor/src/$name/"
			cp "$fresh/sdist/$base/LICENSE" "$fresh/vendor/src/$name/LICENSE" 2>/dev/null || :
		done
	done
	rm -rf "$fresh/sdist"
	touch "$fresh/.done"
	rm -rf "$vendor"
	mv "$fresh" "$vendor"
fi
[ -z "$need_vendor" ] || tar -C "$vendor" -czf \
	"$topdir/SOURCES/multicast-proxy-vendor-$version.tar.gz" --owner=0 --group=0 vendor

rpmbuild_() { # SPEC DEFINES...
	spec=$1
	shift
	log="$topdir/$(basename "$spec" .spec)$suffix.log"
	if ! rpmbuild -bb $nodeps --define "_topdir $topdir" \
		--define "pkgversion $version" --define "pkgrelease $release" "$@" \
		"$top/packaging/rpm/$spec" >"$log" 2>&1; then
		grep -E '^error:|[Ee]rror|No such file' "$log" | tail -n 20 >&2
		die "rpmbuild $spec failed (full log: $log)"
	fi
	sed -n 's/^Wrote: //p' "$log"
}

built=""
for w in $what; do
	suffix=""
	case "$w" in
	server | client)
		suffix="-$w"
		set -- --define "role $w" --define "kver $kver" --define "kdir $kdir" \
			--"$kernel_requires" kernel_requires
		[ -z "$kmake_flags" ] || set -- "$@" --define "kmake_flags $kmake_flags"
		files=$(rpmbuild_ multi.spec "$@")
		;;
	tools | dkms)
		files=$(rpmbuild_ "multicast-proxy-$w.spec")
		;;
	esac
	for f in $files; do
		cp "$f" "$out/"
		built="$built $out/$(basename "$f")"
	done
done
echo "$me: built for kernel ${kver:-(none)}:"
for f in $built; do echo "  $f"; done
