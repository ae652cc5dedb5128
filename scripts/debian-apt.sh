#!/bin/sh
# Run apt-get or apt-cache against one Debian suite without touching the
# machine's apt setup:  scripts/debian-apt.sh SUITE apt-get|apt-cache ARGS...
#
# SUITE "system" is the machine's own configuration (bookworm here, with
# bookworm-security, which also carries the 6.12 kernels).  Any other suite
# (bullseye: the 5.10 kernels) gets a private configuration under
# build/apt/SUITE: its own sources.list (the Debian mirror the machine already
# uses, plus SUITE-security), lists, cache and an empty dpkg status, refreshed
# once a day.  Only for downloading packages (apt-get download), never for
# installing them.
set -eu
suite=$1
tool=$2
shift 2
top=$(cd "$(dirname "$0")/.." && pwd)

if [ "$suite" = system ]; then
	exec "$tool" "$@"
fi

dir="$top/build/apt/$suite"
opts="-o Dir::Etc::SourceList=$dir/sources.list -o Dir::Etc::SourceParts=$dir/none
-o Dir::State::Lists=$dir/lists -o Dir::Cache=$dir/cache -o Dir::State::status=$dir/status
-o Dir::Etc::Preferences=$dir/none -o Dir::Etc::PreferencesParts=$dir/none
-o APT::Sandbox::User=root"

if [ ! -f "$dir/.updated" ] || [ -n "$(find "$dir/.updated" -mmin +1440)" ]; then
	mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial" "$dir/none"
	: > "$dir/status"
	m=$("$top/scripts/debian-mirror.sh")
	key=/usr/share/keyrings/debian-archive-keyring.gpg
	cat > "$dir/sources.list" <<-LIST
	deb [signed-by=$key] $m $suite main
	deb [signed-by=$key] ${m%/debian*}/debian-security $suite-security main
	LIST
	# shellcheck disable=SC2086
	if ! apt-get $opts -q update > "$dir/update.log" 2>&1; then
		echo "debian-apt: apt-get update for $suite failed:" >&2
		cat "$dir/update.log" >&2
		exit 1
	fi
	touch "$dir/.updated"
fi
# shellcheck disable=SC2086
exec "$tool" $opts "$@"
