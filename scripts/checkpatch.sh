#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Run the kernel's own style checker, checkpatch.pl --strict, on every kernel
# source of the project (kernel/**/*.c and *.h, generated files excepted) and
# fail on any ERROR, WARNING or CHECK.
#
#   scripts/checkpatch.sh [FILE...]
#
# checkpatch.pl comes from Debian's linux-source-<ver> package (installed when
# missing; needs root), whose tarball holds the kernel tree: only
# scripts/checkpatch.pl and the two data files it reads are extracted, once,
# into build/checkpatch/.
#
# Deliberate exceptions:
#   kernel/include/uapi/*: checked without --strict (ERRORs and WARNINGs
#     still fail).  Two of --strict's CHECKs contradict uapi conventions
#     there: BIT_MACRO (BIT() is not available to user space) and
#     LINE_SPACING (the "enum {...}; #define X_MAX (__X_MAX - 1)" idiom of
#     every uapi header).
#   kernel/*/trace.h: --strict without PARENTHESIS_ALIGNMENT and
#     OPEN_ENDED_LINE, which the TRACE_EVENT() layout of every header in
#     include/trace/events/ ("TP_STRUCT__entry(" on its own line, TP_PROTO
#     continued inside TRACE_EVENT's parentheses) cannot satisfy.
set -eu

cd "$(dirname "$0")/.."
out=build/checkpatch
package=${CHECKPATCH_PACKAGE:-linux-source-6.1}
files="checkpatch.pl spelling.txt const_structs.checkpatch"

have_checkpatch() {
	for f in $files; do
		[ -s "$out/$f" ] || return 1
	done
}

find_tarball() {
	ls /usr/src/linux-source-*.tar.xz /usr/src/linux-source-*.tar.bz2 \
		2>/dev/null | sort -V | tail -n 1
}

if ! have_checkpatch; then
	tarball=$(find_tarball)
	if [ -z "$tarball" ]; then
		echo "checkpatch.sh: installing $package for checkpatch.pl" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
			--no-install-recommends "$package" >&2
		tarball=$(find_tarball)
	fi
	[ -n "$tarball" ] || {
		echo "checkpatch.sh: no /usr/src/linux-source-*.tar.* found" >&2
		exit 1
	}
	top=$(basename "$tarball")
	top=${top%.tar.*}
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/checkpatch.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	members=
	for f in $files; do
		members="$members $top/scripts/$f"
	done
	# shellcheck disable=SC2086 # one word per member
	tar -xf "$tarball" -C "$tmp" $members
	mkdir -p "$out"
	for f in $files; do
		mv "$tmp/$top/scripts/$f" "$out/$f"
	done
	chmod +x "$out/checkpatch.pl"
fi

if [ $# -eq 0 ]; then
	set -- $(find kernel -type f \( -name '*.c' -o -name '*.h' \) \
		! -name '*.mod.c' ! -name '.*' | sort)
fi

strict_files=
uapi_files=
trace_files=
for file in "$@"; do
	case $file in
	kernel/include/uapi/*) uapi_files="$uapi_files $file" ;;
	kernel/*/trace.h) trace_files="$trace_files $file" ;;
	*) strict_files="$strict_files $file" ;;
	esac
done

checkpatch() {
	perl "$out/checkpatch.pl" --no-tree --terse --show-types \
		--color=never --summary-file "$@"
}

status=0
# shellcheck disable=SC2086 # one word per file
if [ -n "$strict_files" ]; then
	report=$(checkpatch --strict -f $strict_files 2>&1) || status=1
	[ $status -eq 0 ] || printf '%s\n' "$report" | grep -v ' 0 errors, 0 warnings, 0 checks,'
fi
# shellcheck disable=SC2086
if [ -n "$trace_files" ]; then
	report=$(checkpatch --strict --ignore PARENTHESIS_ALIGNMENT,OPEN_ENDED_LINE \
		-f $trace_files 2>&1) || {
		status=1
		printf '%s\n' "$report" | grep -v ' 0 errors, 0 warnings, 0 checks,'
	}
fi
# shellcheck disable=SC2086
if [ -n "$uapi_files" ]; then
	report=$(checkpatch -f $uapi_files 2>&1) || {
		status=1
		printf '%s\n' "$report" | grep -v ' 0 errors, 0 warnings,'
	}
fi
if [ $status -eq 0 ]; then
	echo "checkpatch.sh: $# files clean"
else
	echo "checkpatch.sh: style problems (see above)" >&2
fi
exit $status
