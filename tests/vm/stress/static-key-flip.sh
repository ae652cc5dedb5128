#!/bin/sh
# Flip the kernel's IPv4 netfilter hook static keys 40 times while two
# processes send UDP on both vCPUs.  Run in the test VM, unpinned and with
# multi-threaded TCG to show the emulator's flaw (docs/kernels.md):
#
#   MCP_PIN_NF_KEYS=0 MCP_TCG_THREAD=multi KVER=6.12.117+deb12-amd64 \
#       tests/vm/vmrun -- sh tests/vm/stress/static-key-flip.sh nft
#
# MODE nft:     the kernel's own nf_tables adds and deletes an output chain
#               (no module of this project is involved);
# MODE modules: insmod/rmmod multis and multic (built for that kernel).
#
# It is a race: that way it usually dies within a minute with "Oops: int3"
# in __ip_local_out.  With the harness's defaults (single-threaded TCG, keys
# pinned by guest-init) all 40 cycles pass.
set -u
mode=${1:-modules}
cycles=${2:-40}
ip link set lo up
for cpu in 0 1; do
	taskset -c $cpu python3 -c '
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    s.sendto(b"x" * 100, ("127.0.0.1", 9))
' &
done
[ "$mode" = modules ] && modprobe nf_defrag_ipv4 && modprobe nf_defrag_ipv6
sleep 3
i=0
while [ $i -lt "$cycles" ]; do
	if [ "$mode" = nft ]; then
		nft add table ip flip
		nft add chain ip flip out '{ type filter hook output priority 0; }'
		sleep 0.2
		nft delete table ip flip
	else
		insmod kernel/multis/multis.ko && insmod kernel/multic/multic.ko
		sleep 0.2
		rmmod multis && rmmod multic
	fi
	sleep 0.2
	i=$((i + 1))
done
kill $(jobs -p) 2>/dev/null
echo "static-key-flip: $mode: $i cycles, no oops"
