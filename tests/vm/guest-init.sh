#!/bin/sh
# PID 1 of the test VM, after switch_root onto the host's root (read-only 9p).
# Gives the guest the writable places it needs, runs the command the host
# wrote to the results share, brings back its output, exit status and the
# kernel log, then powers off.  Environment from the kernel command line:
# MCP_REPO, MCP_KIT, MCP_KVER.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
res=/run/results

off() {
	sync
	echo o > /proc/sysrq-trigger
	# wait for the power-off in the shell itself: the 9p root may be gone
	# already, and an init that cannot exec sleep exits, and panics the kernel
	while :; do :; done
}

mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /dev/shm /dev/pts "$res"
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t devpts devpts /dev/pts
# what udev makes on a real system: bash's <(...) needs /dev/fd (dkms uses it)
[ -e /dev/fd ] || ln -s /proc/self/fd /dev/fd
for n in 0:stdin 1:stdout 2:stderr; do
	[ -e "/dev/${n#*:}" ] || ln -s "/proc/self/fd/${n%%:*}" "/dev/${n#*:}"
done
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results "$res" || off

# The kit's modules, whatever the host has under /lib/modules.
mount -t tmpfs tmpfs /lib/modules
mkdir -p "/lib/modules/$MCP_KVER"
mount --bind "$MCP_KIT/lib/modules/$MCP_KVER" "/lib/modules/$MCP_KVER"

# Writable /etc, /var/lib (state files, netns, nft) and /tmp over the
# read-only root.  Overlays, not empty tmpfs: the repository or the kit may
# live under one of them (a CI clone in /tmp), and must stay visible.
modprobe overlay
for d in /etc /var/lib /var/log /var/tmp /root /tmp; do
	[ -d "$d" ] || continue
	w="/run/overlay$d"
	mkdir -p "$w/up" "$w/work"
	chmod --reference="$d" "$w/up"
	mount -t overlay overlay -o "lowerdir=$d,upperdir=$w/up,workdir=$w/work" "$d"
done

# Tests run the repository's code as nobody too (setpriv): every directory
# above the repository and above the venv's interpreter must be searchable.
# mktemp -d makes 0700 directories (a CI clone in /tmp/tmp.XXXX): open them
# here, in the overlays' upper layers, never on the host (where the
# read-only root refuses and nothing changes).
for p in "$MCP_REPO" "$(readlink -f "$MCP_REPO/.venv/bin/python3" 2>/dev/null)"; do
	while [ -n "$p" ] && [ "$p" != / ]; do
		p=$(dirname "$p")
		chmod o+x "$p" 2>/dev/null
	done
done

# Pin the IPv4 and IPv6 netfilter static keys on: an empty base chain on
# every hook of both families, in this (the initial) namespace only, where
# no test traffic flows.  Loading and unloading multis, multic,
# nf_defrag_ipv4 and nf_defrag_ipv6 (and multic's per-family hooks coming
# and going) then never patches the kernel's hook call sites, which
# multi-threaded TCG mis-emulates (docs/kernels.md).  MCP_PIN_NF_KEYS=0
# leaves them unpinned.
if [ "${MCP_PIN_NF_KEYS:-1}" = 1 ]; then
	nft -f - <<-'EOF' || echo "guest-init: could not pin the netfilter keys" >&2
	table ip mcp_pin {
		chain c_pre { type filter hook prerouting priority 0; }
		chain c_in { type filter hook input priority 0; }
		chain c_fwd { type filter hook forward priority 0; }
		chain c_out { type filter hook output priority 0; }
		chain c_post { type filter hook postrouting priority 0; }
	}
	table ip6 mcp_pin {
		chain c_pre { type filter hook prerouting priority 0; }
		chain c_in { type filter hook input priority 0; }
		chain c_fwd { type filter hook forward priority 0; }
		chain c_out { type filter hook output priority 0; }
		chain c_post { type filter hook postrouting priority 0; }
	}
	EOF
fi

ip link set lo up
cd "$MCP_REPO" || off
MCP_RESULTS=$res sh "$res/command.sh" > "$res/output" 2>&1 < /dev/null
rc=$?
# What the command left queued (RCU callbacks, work items, timers of the
# modules it unloaded) runs after it returned: give it time to run, and to
# oops, before the kernel log and the taint flags are taken.  A grace period
# takes milliseconds even under TCG; ${MCP_SETTLE:-2} s is plenty.  Anything
# later still reaches the console, which the host checks too.
sleep "${MCP_SETTLE:-2}"
dmesg > "$res/dmesg" 2>&1
cat /proc/sys/kernel/tainted > "$res/tainted" 2>&1
echo "$rc" > "$res/rc.tmp" && mv "$res/rc.tmp" "$res/rc"
off
