#!/bin/sh
# The kernel compatibility matrix: build both modules against every Debian
# kernel header set these machines can get.
#
#   scripts/kernels.sh [build] [SERIES...]   build (default: every series)
#   scripts/kernels.sh list [SERIES...]      print "SERIES KVER" lines
#   scripts/kernels.sh kits [SERIES...]      only prepare build/kit/KVER
#   scripts/kernels.sh vmtest [SERIES...]    run the VM tests (tests/vm) on each
#                                            kernel, in a copy of the tree
#                                            (default: 5.10 6.12; 6.1 is what
#                                            `make test` boots); VMTESTS
#                                            picks test files (default tests/vm)
#
# SERIES is 5.10 (Debian 11 bullseye; the series of Alibaba Cloud Linux 3),
# 6.1 (Debian 12, the default kernel of the tests) or 6.12 (Debian 12's
# newer kernel, from bookworm-security).  Each resolves to the newest ABI the
# archive offers (override: KVER_5_10, KVER_6_1, KVER_6_12).  Each kit
# (kernel image + headers, scripts/setup-kit.sh) lands in build/kit/KVER; the
# sources are copied to build/kernels/KVER so the builds do not share objects
# with each other or with the developer's tree, and each build's log is kept
# in build/kernels/KVER/build.log.  The exit status is non-zero if any build
# failed; the failing compiler messages are printed.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
SERIES_ALL="5.10 6.1 6.12"

resolve() { # SERIES -> KVER
	case "$1" in
	5.10)
		[ -n "${KVER_5_10:-}" ] && { echo "$KVER_5_10"; return; }
		"$top/scripts/debian-apt.sh" bullseye apt-cache depends linux-headers-amd64 |
			sed -n 's/^ *Depends: linux-headers-\(5\.10\.[^ ]*-amd64\)$/\1/p' | head -n1
		;;
	6.1)
		[ -n "${KVER_6_1:-}" ] && { echo "$KVER_6_1"; return; }
		"$top/scripts/kver.sh"
		;;
	6.12)
		[ -n "${KVER_6_12:-}" ] && { echo "$KVER_6_12"; return; }
		apt-cache pkgnames linux-headers-6.12. |
			grep -E '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' |
			sed 's/^linux-headers-//' | sort -V | tail -n1
		;;
	*)
		echo "kernels: unknown series $1 (known: $SERIES_ALL)" >&2
		return 1
		;;
	esac
}

kver_of() {
	k=$(resolve "$1") || exit 2
	if [ -z "$k" ]; then
		echo "kernels: no kernel of series $1 found in the Debian archive" >&2
		exit 2
	fi
	echo "$k"
}

cmd=build
case "${1:-}" in
build | list | kits | vmtest) cmd=$1; shift ;;
esac
if [ "$cmd" = vmtest ]; then
	series=${*:-5.10 6.12}
else
	series=${*:-$SERIES_ALL}
fi

if [ "$cmd" = list ]; then
	for s in $series; do echo "$s $(kver_of "$s")"; done
	exit 0
fi

if [ "$cmd" = kits ]; then
	for s in $series; do "$top/scripts/setup-kit.sh" "$(kver_of "$s")"; done
	exit 0
fi

# The VM tests load kernel/multis/multis.ko and kernel/multic/multic.ko from
# the tree they run in.  So that the developer's tree (and its modules, built
# for the default kernel) is left alone, each kernel gets a copy of the
# working tree in build/vmtest/KVER (sharing build/kit and .venv), with the
# modules built for it, and the VM tests run there with KVER set.
if [ "$cmd" = vmtest ]; then
	failed=""
	for s in $series; do
		kver=$(kver_of "$s")
		echo "== VM tests on $s: $kver"
		"$top/scripts/setup-kit.sh" "$kver" || { failed="$failed $s"; continue; }
		copy="$top/build/vmtest/$kver"
		rm -rf "$copy"
		mkdir -p "$copy/build"
		(cd "$top" && git ls-files -co --exclude-standard) |
			(cd "$top" && while read -r f; do [ -f "$f" ] && echo "$f"; done) |
			tar -C "$top" -cf - -T - | tar -C "$copy" -xf -
		ln -s "$top/build/kit" "$copy/build/kit"
		ln -s "$top/.venv" "$copy/.venv"
		# the tools make setup installed (etcd for the agent's VM tests) and
		# the vendored wheels of the tools RPM: shared, like the kits
		for d in tools vendor; do
			[ ! -d "$top/build/$d" ] || ln -s "$top/build/$d" "$copy/build/$d"
		done
		if make -s -C "$copy/kernel" KDIR="$top/build/kit/$kver/build" CC=gcc &&
			(cd "$copy" && KVER=$kver .venv/bin/python -m pytest -q \
				-n "${VM_JOBS:-2}" --dist loadfile --no-loadscope-reorder --durations=20 ${VMTESTS:-tests/vm}); then
			echo "== $s $kver: VM tests passed"
		else
			echo "== $s $kver: VM tests FAILED"
			failed="$failed $s"
		fi
	done
	[ -z "$failed" ] || { echo "kernels: VM tests failed on:$failed" >&2; exit 1; }
	exit 0
fi

if [ ! -f "$top/kernel/Makefile" ]; then
	echo "kernels: kernel/Makefile is missing: nothing to build" >&2
	exit 2
fi

failed=""
summary=""
for s in $series; do
	kver=$(kver_of "$s")
	echo "== $s: $kver"
	if ! "$top/scripts/setup-kit.sh" "$kver"; then
		failed="$failed $s"
		summary="$summary$s $kver: NO KIT (see above)\n"
		continue
	fi
	out="$top/build/kernels/$kver"
	rm -rf "$out"
	mkdir -p "$out"
	# A clean copy of the sources, without the developer's build products.
	(cd "$top" && tar -cf - --exclude='*.o' --exclude='*.ko' --exclude='*.mod' \
		--exclude='*.mod.c' --exclude='.*.cmd' --exclude='*.order' \
		--exclude='*.symvers' --exclude='.*.d' kernel) | (cd "$out" && tar -xf -)
	# CC=gcc: Debian's headers name the compiler they were built with (gcc-10
	# for bullseye); this machine's gcc builds compatible modules.
	# (kernel/Makefile skips module BTF where pahole is missing.)
	# -k: a module that fails does not hide the other's result.
	if make -k -C "$out/kernel" KDIR="$top/build/kit/$kver/build" CC=gcc \
		>"$out/build.log" 2>&1; then
		status=ok
	else
		status=FAILED
		failed="$failed $s"
	fi
	mods=""
	for m in multis multic; do
		if [ -f "$out/kernel/$m/$m.ko" ]; then mods="$mods $m.ko"; else mods="$mods $m:MISSING"; fi
	done
	summary="${summary}$s $kver: $status ($mods )\n"
	if [ "$status" = FAILED ]; then
		echo "-- $s $kver: build failed; compiler messages (log: $out/build.log):"
		grep -E 'error|warning:|\*\*\*' "$out/build.log" | grep -v 'Error [0-9]$' | head -n 60
	fi
done
echo "== kernel matrix"
printf "%b" "$summary"
if [ -n "$failed" ]; then
	echo "kernels: build failed for:$failed" >&2
	exit 1
fi
