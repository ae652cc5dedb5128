"""Guest side of tests/vm/test_dataplane_edges.py: the data path's edge cases.

On the simulated VPC of tests/vm/guest/vpc.py (no checksum offload on the
switch's ports nor on the hosts' receive side, so a wrong checksum is
dropped as on a VPC):

- a Linux VXLAN overlay whose underlay is multicast, carried by multis and
  multic, with and without outer UDP checksums (``udpcsum``): the outer
  header of an encapsulated CHECKSUM_PARTIAL skb;
- a multicast datagram sent with TTL 0 stays on the sending host;
- a "broadcast group" that is a unicast address is not a broadcast: unicast
  to it is never fanned out;
- a copy whose route leads into a tunnel over a configured group comes back
  to the hook inside multis's own transmission, and is not fanned out again;
- a restored copy is a multicast (or broadcast) packet to the receiver's
  stack (nft's ``meta pkttype`` after multic's hook and in input), and a
  VRRP advert whose TTL a hop lowered on the way arrives with TTL 255.
- safety against any local user: neither module declares a generic netlink
  alias (no autoload by an unprivileged request); a namespace without
  configuration has neither module's hook nor multic's defragmentation
  (seen with ftrace and with an nft chain that sees fragments only where
  nothing reassembles them); what a request creates is charged to its
  memory cgroup; an unprivileged user in the initial user namespace cannot
  list members or entries (the CLIs say so in one line), one in a user
  namespace of its own configures and lists its own network namespace;
- the sender's egress policy: an OUTPUT rule dropping the group stops every
  copy, a rule on the socket's owner (``meta skuid``) drops that sender's
  copies only;
- a sender using IP_PMTUDISC_DO with a member behind a smaller MTU: the copies
  too big for it are counted (DROP_TOO_BIG), a default sender's are fragmented;
- a sender in a VRF (bound to it, or only multicasting out of one of its
  devices): the copies are routed in the VRF's table.
- a member's route changes (another device, a gateway, back, the device
  down): the copies follow at once; while nothing changes they take the
  member's cached route, not a lookup each.

Every step records what it observed; the host asserts.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import socket
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin import config
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.uapi import MULTIS_GROUP_F_BROADCAST as GROUP_F_BROADCAST
from multicast_admin.uapi import MULTIS_GROUP_F_VRRP as GROUP_F_VRRP
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import (
    IPPROTO_VRRP,
    VRRP_GROUP,
    Host,
    Receiver,
    Sender,
    build_vpc,
    inside,
    insmod,
    named_counters,
    payloads,
    sh,
    vrrp_exchange,
)

REPO = Path(__file__).resolve().parents[3]
MULTIS_KO = REPO / "kernel" / "multis" / "multis.ko"
MULTIC_KO = REPO / "kernel" / "multic" / "multic.ko"

G1 = "239.1.1.1"
PORT = 5000
VXLAN_GROUP, VXLAN_PORT, VNI = "239.1.1.100", 4789, 42
OVERLAY_PREFIX = "192.168.100."
OVERLAY_BROADCAST = "192.168.100.255"
INNER_PORT = 8000

facts = Facts()
vpc = build_vpc(receivers=3)
sender_host = vpc.sender
receivers = vpc.receivers
hosts = [sender_host, *receivers]


def ip(address: str) -> IPv4Address:
    return IPv4Address(address)


def udp_snmp(host: Host) -> dict[str, int]:
    """The namespace's Udp counters from /proc/net/snmp (InCsumErrors...)."""
    with host.inside():
        lines = [
            line.split()
            for line in Path("/proc/thread-self/net/snmp").read_text().splitlines()
            if line.startswith("Udp:")
        ]
    return dict(zip(lines[0][1:], map(int, lines[1][1:]), strict=True))


def collect(socks: list[Receiver], data: list[bytes]) -> dict:
    out = {}
    for rx in socks:
        got = rx.drain()
        out[rx.host.name] = {
            "count": len(got),
            "intact": sorted(d.payload for d in got) == sorted(data),
            "sources": sorted({f"{d.source[0]}:{d.source[1]}" for d in got}),
            "destinations": sorted({d.destination for d in got}),
        }
        rx.close()
    return out


def send_and_collect(
    tx_host: Host, rx_hosts: list[Host], group: str, port: int, data: list[bytes], ttl: int = 1
) -> dict:
    """``data`` from tx_host to group:port; what each host of rx_hosts got (bound to any)."""
    socks = [Receiver(h, group, port, bind_group=False) for h in rx_hosts]
    tx = Sender(tx_host)
    tx.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    try:
        tx.send(group, port, data)
    finally:
        tx.close()
    return collect(socks, data)


def error_of_call(call) -> dict:
    """{"ok": True}, or the refusal's errno and message."""
    try:
        call()
    except Exception as error:  # noqa: BLE001 - recorded for the host to assert
        return {"errno": getattr(error, "errno", None), "message": str(error)}
    return {"ok": True}


# --------------------------------------------------------------------------- steps


def checksum_offload(netns: str, dev: str) -> dict[str, str]:
    out = sh(f"ip netns exec {netns} ethtool -k {dev}")
    return {
        line.split(":")[0].strip(): line.split(":")[1].split()[0]
        for line in out.splitlines()
        if line.startswith(("tx-checksumming", "rx-checksumming"))
    }


with facts.step("offloads") as f:
    # what build_vpc() set up: the switch's ports compute checksums in
    # software, the hosts verify them in software
    f["hosts"] = {host.name: checksum_offload(host.name, "eth0") for host in hosts}
    f["switch_ports"] = {
        host.name: checksum_offload(vpc.switch, f"p-{host.name}") for host in hosts
    }

with facts.step("load") as f:
    insmod(MULTIS_KO)
    insmod(MULTIC_KO)
    f["lsmod"] = sh("lsmod | grep -E '^multi[sc] ' | cut -d' ' -f1").split()

with sender_host.inside():
    server = MultisNetlink.open()
clients = {}
for h in receivers:
    with h.inside():
        clients[h.name] = MulticNetlink.open()

members = [ip(h.addr) for h in receivers]


def overlay(host: Host) -> Host:
    """The same namespace, seen from its VXLAN overlay address."""
    return Host(host.name, OVERLAY_PREFIX + host.addr.rsplit(".", 1)[1])


def vxlan_up(udpcsum: bool) -> None:
    mode = "udpcsum" if udpcsum else "noudpcsum"
    for host in hosts:
        host.sh(
            f"ip link add vx0 type vxlan id {VNI} group {VXLAN_GROUP} dev eth0 "
            f"dstport {VXLAN_PORT} {mode}"
        )
        # no IPv6 on the overlay: nothing but the test's datagrams on it
        host.sh("ip link set vx0 addrgenmode none")
        host.sh(f"ip addr add {overlay(host).addr}/24 dev vx0")
        host.sh("ip link set vx0 up")


def vxlan_down() -> None:
    for host in hosts:
        host.sh("ip link del vx0")


def vxlan_exchange(tag: str) -> dict:
    """Inner UDP broadcast from the sender's overlay address; what each overlay got."""
    before = {h.name: udp_snmp(h) for h in receivers}
    data = payloads(tag, 5, 300)
    out = {
        "received": send_and_collect(
            overlay(sender_host),
            [overlay(h) for h in receivers],
            OVERLAY_BROADCAST,
            INNER_PORT,
            data,
        )
    }
    out["udp_in_csum_errors"] = {
        h.name: udp_snmp(h)["InCsumErrors"] - before[h.name]["InCsumErrors"] for h in receivers
    }
    return out


with facts.step("vxlan_baseline") as f:
    # without the proxy the switch drops the underlay's multicast
    vxlan_up(udpcsum=False)
    try:
        f.update(vxlan_exchange("vxbase"))
        f["vxlan_details"] = sender_host.sh("ip -d link show vx0")
    finally:
        vxlan_down()

server.join(ip(VXLAN_GROUP), members)
for c in clients.values():
    c.add(ip(sender_host.addr), VXLAN_PORT, ip(VXLAN_GROUP))

for udpcsum in (False, True):
    name = "vxlan_udpcsum" if udpcsum else "vxlan_noudpcsum"
    with facts.step(name) as f:
        server.reset_stats()
        for c in clients.values():
            c.reset_stats()
        vxlan_up(udpcsum)
        try:
            f.update(vxlan_exchange(name))
        finally:
            vxlan_down()
        f["group_stats"] = server.get_group(ip(VXLAN_GROUP)).stats.to_json()
        f["entry_stats"] = {
            n: c.get_entry(ip(sender_host.addr), VXLAN_PORT).stats.entry_json()
            for n, c in clients.items()
        }

server.delete_group(ip(VXLAN_GROUP))
for c in clients.values():
    c.delete(ip(sender_host.addr), VXLAN_PORT)

with facts.step("ttl_zero") as f:
    server.join(ip(G1), members)
    for c in clients.values():
        c.add(ip(sender_host.addr), PORT, ip(G1))
    for ttl in (0, 1):
        server.reset_stats()
        data = payloads(f"ttl{ttl}", 5)
        socks = [Receiver(h, G1, PORT) for h in receivers]
        local = Receiver(sender_host, G1, PORT)  # the sender's own loopback copy
        tx = Sender(sender_host)
        tx.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        tx.sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
        tx.send(G1, PORT, data)
        tx.close()
        f[f"ttl_{ttl}"] = {
            "received": collect(socks, data),
            "local": collect([local], data)[sender_host.name],
            "group_stats": server.get_group(ip(G1)).stats.to_json(),
        }
    server.delete_group(ip(G1))
    for c in clients.values():
        c.delete(ip(sender_host.addr), PORT)

# No multic entries for these ports: a copy arrives as unicast to the
# receiver's own address, so every copy made is seen.
UNICAST_GROUP, SUBNET_BROADCAST = "10.0.0.50", "10.0.0.255"

with facts.step("unicast_group") as f:
    f["join"] = {}
    for group in (UNICAST_GROUP, SUBNET_BROADCAST):
        server.join(ip(group), members, flags=GROUP_F_BROADCAST)
        f["join"][group] = sorted(str(m.address) for m in server.members(ip(group)))
    server.reset_stats()
    f["unicast"] = send_and_collect(
        sender_host, receivers, UNICAST_GROUP, 7002, payloads("ucast", 5)
    )
    f["unicast_group_stats"] = server.get_group(ip(UNICAST_GROUP)).stats.to_json()
    f["broadcast"] = send_and_collect(
        sender_host, receivers, SUBNET_BROADCAST, 7003, payloads("bcast", 5)
    )
    f["broadcast_group_stats"] = server.get_group(ip(SUBNET_BROADCAST)).stats.to_json()
    server.clear()

# A member reached through a tunnel whose underlay is a configured group:
# the copy to it, encapsulated, comes back to the hook as UDP to the group,
# from inside multis's own transmission.  It must pass untouched, not be
# fanned out again (and again, until the tunnel's recursion limit).
TUNNEL_GROUP, TUNNEL_MEMBER, TUNNEL_PORT = "239.4.4.4", "172.16.0.2", 7004

with facts.step("tunnel_recursion") as f:
    sender_host.sh(f"ip link add vx1 type vxlan id 43 group {TUNNEL_GROUP} dev eth0 dstport 4790")
    sender_host.sh("ip link set vx1 addrgenmode none")
    sender_host.sh("ip addr add 172.16.0.1/24 dev vx1")
    sender_host.sh("ip link set vx1 up")
    # no ARP on the way: the copy goes straight into the tunnel
    sender_host.sh(f"ip neigh add {TUNNEL_MEMBER} lladdr 02:00:00:00:00:02 dev vx1 nud permanent")
    server.join(ip(TUNNEL_GROUP), [ip(receivers[0].addr), ip(TUNNEL_MEMBER)])
    server.reset_stats()
    data = payloads("tunnel", 5)
    f["received"] = send_and_collect(sender_host, receivers[:1], TUNNEL_GROUP, TUNNEL_PORT, data)
    f["group_stats"] = server.get_group(ip(TUNNEL_GROUP)).stats.to_json()
    f["member_stats"] = {
        str(m.address): m.stats.member_json() for m in server.members(ip(TUNNEL_GROUP))
    }
    server.delete_group(ip(TUNNEL_GROUP))
    sender_host.sh("ip link del vx1")

# What a receiver's stack sees of a restored copy.  multic hooks at
# prerouting priority -399 (right after defragmentation): the "pre" chain
# (-300) and the "in" chain run after it.  The "hop" chain (-450, before
# multic) plays the router between the hosts that lowered a VRRP advert's
# TTL to 200; "wire" (-420) counts what multic is then handed.
RESTORED_GROUP, RESTORED_PORT = "239.5.5.5", 7005
RESTORED_BROADCAST, RESTORED_BROADCAST_PORT = "255.255.255.255", 7006
HOP_TTL = 200
PROBE_RULES = f"""
table ip probe {{
    chain hop {{
        type filter hook prerouting priority -450;
        ip protocol {IPPROTO_VRRP} ip ttl set {HOP_TTL}
    }}
    chain wire {{
        type filter hook prerouting priority -420;
        ip protocol {IPPROTO_VRRP} ip ttl {HOP_TTL} counter comment "wire_vrrp_ttl_{HOP_TTL}"
    }}
    chain pre {{
        type filter hook prerouting priority -300;
        ip daddr {RESTORED_GROUP} meta pkttype multicast counter comment "pre_mcast"
        ip daddr {RESTORED_GROUP} meta pkttype host counter comment "pre_mcast_as_host"
        ip daddr {RESTORED_BROADCAST} meta pkttype broadcast counter comment "pre_bcast"
        ip daddr {RESTORED_BROADCAST} meta pkttype host counter comment "pre_bcast_as_host"
        ip protocol {IPPROTO_VRRP} meta pkttype multicast counter comment "pre_vrrp_mcast"
    }}
    chain in {{
        type filter hook input priority 0;
        ip daddr {RESTORED_GROUP} meta pkttype multicast counter comment "in_mcast"
        ip daddr {RESTORED_BROADCAST} meta pkttype broadcast counter comment "in_bcast"
    }}
}}
"""


def probe_counts(host: Host) -> dict[str, int]:
    return named_counters(host.sh("nft list table ip probe"))


with facts.step("restored_packet") as f:
    for host in receivers:
        host.sh(f"nft -f - <<'EOF'\n{PROBE_RULES}\nEOF")
    server.join(ip(RESTORED_GROUP), members)
    server.join(ip(RESTORED_BROADCAST), members, flags=GROUP_F_BROADCAST)
    server.join(ip(VRRP_GROUP), members, flags=GROUP_F_VRRP)
    for c in clients.values():
        c.add(ip(sender_host.addr), RESTORED_PORT, ip(RESTORED_GROUP))
        c.add(ip(sender_host.addr), RESTORED_BROADCAST_PORT, ip(RESTORED_BROADCAST))
        c.add(ip(sender_host.addr), 0, ip(VRRP_GROUP))
    socks = [Receiver(h, RESTORED_GROUP, RESTORED_PORT) for h in receivers]
    mdata = payloads("restored", 5)
    tx = Sender(sender_host)
    tx.send(RESTORED_GROUP, RESTORED_PORT, mdata)
    tx.close()
    f["multicast"] = collect(socks, mdata)
    bdata = payloads("restoredb", 5)
    f["broadcast"] = send_and_collect(
        sender_host, receivers, RESTORED_BROADCAST, RESTORED_BROADCAST_PORT, bdata
    )
    f["vrrp"] = vrrp_exchange(sender_host, receivers, payloads("vrrp", 5, 20))
    f["counts"] = {h.name: probe_counts(h) for h in receivers}
    f["entry_stats"] = {
        n: {
            str(port): c.get_entry(ip(sender_host.addr), port).stats.entry_json()
            for port in (RESTORED_PORT, RESTORED_BROADCAST_PORT, 0)
        }
        for n, c in clients.items()
    }
    for host in receivers:
        host.sh("nft delete table ip probe")
    server.clear()
    for c in clients.values():
        c.clear()
# --------------------------------------------------------------- safety against any local user

with facts.step("aliases") as f:
    # MODULE_ALIAS_GENL_FAMILY would let any user load the module by asking for the family
    f["aliases"] = {ko.name: sh(f"modinfo -F alias {ko}").split() for ko in (MULTIS_KO, MULTIC_KO)}

server.clear()
for c in clients.values():
    c.clear()

TRACEFS = Path("/sys/kernel/tracing")
HOOK_FUNCTIONS = ("multis_local_out", "multic_hook")
FRAGMENT_PROBE_RULES = """table ip probe {
	chain pre {
		type filter hook prerouting priority -300; policy accept;
		ip frag-off & 0x3fff != 0 counter
	}
}"""


def fragments_seen() -> int:
    """Fragments the probe chain (after defrag's priority, -400) saw in "bare"."""
    out = sh("ip netns exec bare nft list chain ip probe pre")
    return int(re.search(r"counter packets (\d+)", out).group(1))


def udp_send(netns: str, dst: str, size: int, count: int = 1) -> None:
    with inside(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for _ in range(count):
                sock.sendto(b"x" * size, (dst, 9))
        finally:
            sock.close()


def observe() -> dict:
    """Traffic out of and into "bare": the hooks' calls, the fragments nothing reassembled."""
    (TRACEFS / "trace").write_text("")
    before = fragments_seen()
    udp_send("bare", "10.99.0.2", 100, 3)  # LOCAL_OUT in bare
    udp_send("peer", "10.99.0.1", 100, 3)  # PRE_ROUTING in bare
    udp_send("peer", "10.99.0.1", 3000)  # 3 fragments over MTU 1280
    time.sleep(0.5)
    trace = (TRACEFS / "trace").read_text()
    calls = {fn: len(re.findall(rf"\s{fn} <-", trace)) for fn in HOOK_FUNCTIONS}
    return {"calls": calls, "fragments": fragments_seen() - before}


with facts.step("hooks_per_namespace") as f:
    if not (TRACEFS / "trace").exists():
        sh(f"mount -t tracefs nodev {TRACEFS}")
    (TRACEFS / "set_ftrace_filter").write_text(" ".join(HOOK_FUNCTIONS) + "\n")
    f["filter"] = (TRACEFS / "set_ftrace_filter").read_text().splitlines()
    (TRACEFS / "current_tracer").write_text("function\n")
    for ns in ("bare", "peer", "other"):
        sh(f"ip netns add {ns}")
        sh(f"ip -n {ns} link set lo up")
    sh("ip link add v-bare netns bare mtu 1280 type veth peer name v-peer netns peer mtu 1280")
    sh("ip -n bare addr add 10.99.0.1/24 dev v-bare")
    sh("ip -n peer addr add 10.99.0.2/24 dev v-peer")
    sh("ip -n bare link set v-bare up")
    sh("ip -n peer link set v-peer up")
    # every port unreachable error counted is sent: without this, bare's
    # per-peer ICMP rate limit (one a second, after a burst) let through only
    # some of a later observe()'s errors on a fast run
    sh("ip netns exec bare sysctl -qw net.ipv4.icmp_ratelimit=0")
    sh(f"ip netns exec bare nft -f - <<'EOF'\n{FRAGMENT_PROBE_RULES}\nEOF")
    # another namespace, without interfaces (no traffic), has configuration
    with inside("other"):
        other_server, other_client = MultisNetlink.open(), MulticNetlink.open()
    other_server.join(ip("239.9.0.1"), [ip("10.99.9.9")])
    other_client.add(ip("10.99.9.1"), 5000, ip("239.9.0.1"))
    f["unconfigured"] = observe()
    with inside("bare"):
        bare_server, bare_client = MultisNetlink.open(), MulticNetlink.open()
    bare_server.join(ip("239.9.0.2"), [ip("10.99.0.2")])
    bare_client.add(ip("10.99.0.2"), 5000, ip("239.9.0.2"))
    f["configured"] = observe()
    # multis_admin -C, multic_admin -C: CLEAR
    bare_server.clear()
    bare_client.clear()
    f["cleared"] = observe()
    # a first entry refused after the hook came in takes it out again
    max_groups = Path("/sys/module/multic/parameters/max_groups")
    saved = max_groups.read_text()
    max_groups.write_text("0\n")
    try:
        f["refused_first"] = error_of_call(
            lambda: bare_client.add(ip("10.99.0.2"), 5000, ip("239.9.0.2"))
        )
    finally:
        max_groups.write_text(saved)
    f["after_refused"] = observe()
    # the last entry deleted (not cleared) takes the hook out too
    bare_client.add(ip("10.99.0.2"), 5000, ip("239.9.0.2"))
    bare_client.delete(ip("10.99.0.2"), 5000)
    bare_server.join(ip("239.9.0.2"), [])
    bare_server.delete_group(ip("239.9.0.2"))
    f["deleted"] = observe()
    f["kernel"] = os.uname().release
    (TRACEFS / "current_tracer").write_text("nop\n")
    for obj in (other_server, other_client, bare_server, bare_client):
        obj.close()
    sh("ip netns del other")

MEMCG = Path("/run/mcp-cgroup2")  # a cgroup2 mount of our own
MEMCG_CODE = """
import json, os, sys, time
sys.path.insert(0, {repo!r})
from ipaddress import IPv4Address as A
from multicast_admin.netlink import MulticNetlink, MultisNetlink
cg = {cg!r}
with open(cg + "/cgroup.procs", "w") as procs:
    procs.write(str(os.getpid()))
CPU1 = "/sys/devices/system/cpu/cpu1/online"
os.sched_setaffinity(0, {{0}})  # every request, and what it charges, on CPU 0
def fold():
    # A CPU keeps up to 32 pages of each statistic before the memcg's total
    # shows them.  5.10 folds them in when a CPU goes offline, but those of
    # the CPU that runs the offline (this one), not the dead one's; later
    # kernels flush on read or every 2 s (hence the sleep) and need neither.
    for state in ("0", "1"):
        with open(CPU1, "w") as online:
            online.write(state)
def stat():
    fold()
    time.sleep(2.5)
    with open(cg + "/memory.stat") as f:
        values = dict(line.split() for line in f)
    return {{k: int(values[k]) for k in ("percpu", "slab_unreclaimable")}}
s, c = MultisNetlink.open(), MulticNetlink.open()
s.stats(), c.stats()
out = {{"before": stat()}}
for g in range(10):
    s.join(A(f"239.50.0.{{g + 1}}"), [A(f"10.50.{{g}}.{{i + 1}}") for i in range(128)])
out["groups"] = stat()
for i in range(300):
    c.add(A(f"10.60.{{i // 250}}.{{i % 250 + 1}}"), 5000, A(f"239.60.0.{{i % 10 + 1}}"))
out["entries"] = stat()
members = sum(g.member_count for g in s.groups())
out["counts"] = [s.stats().group_count, members, c.stats().entry_count]
s.clear()
c.clear()
print(json.dumps(out))
"""

with facts.step("memcg") as f:
    MEMCG.mkdir(exist_ok=True)
    if not (MEMCG / "cgroup.controllers").exists():
        sh(f"mount -t cgroup2 none {MEMCG}")
    f["controllers"] = (MEMCG / "cgroup.controllers").read_text().split()
    if "memory" not in (MEMCG / "cgroup.subtree_control").read_text().split():
        (MEMCG / "cgroup.subtree_control").write_text("+memory\n")
    cg = MEMCG / "mcp-requests"
    cg.mkdir(exist_ok=True)
    sh("ip netns add memtest")
    proc = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            "memtest",
            sys.executable,
            "-c",
            MEMCG_CODE.format(repo=str(REPO), cg=str(cg)),
        ],
        capture_output=True,
        text=True,
    )
    f["stderr"] = proc.stderr[-2000:]
    f.update(json.loads(proc.stdout))
    f["possible_cpus"] = os.sysconf("SC_NPROCESSORS_CONF")
    sh("ip netns del memtest")

NOBODY_CODE = """
import json, sys
sys.path.insert(0, {repo!r})
from ipaddress import IPv4Address as A
from multicast_admin.errors import MulticastProxyError
from multicast_admin.netlink import MulticNetlink, MultisNetlink
s, c = MultisNetlink.open(), MulticNetlink.open()
calls = {{
    "groups": lambda: [str(g.address) for g in s.groups()],
    "group": lambda: s.get_group(A("239.8.8.8")).member_count,
    "server_stats": lambda: s.stats().group_count,
    "members": lambda: [str(m.address) for m in s.members(A("239.8.8.8"))],
    "client_stats": lambda: c.stats().entry_count,
    "entries": lambda: [str(e.server) for e in c.entries()],
    "entry": lambda: str(c.get_entry(A("10.0.0.1"), 5000).group),
}}
if {own!r}:
    calls = {{
        "join": lambda: s.join(A("239.8.8.8"), [A("10.0.0.11"), A("10.0.0.12")]),
        "add": lambda: c.add(A("10.0.0.1"), 5000, A("239.8.8.8")),
        **calls,
        "clear": lambda: (s.clear(), c.clear()),
        "after_clear": lambda: (s.stats().group_count, c.stats().entry_count),
    }}
out = {{}}
for name, call in calls.items():
    try:
        out[name] = {{"ok": call()}}
    except MulticastProxyError as e:
        out[name] = {{"errno": e.errno, "message": str(e)}}
print(json.dumps(out, default=str))
"""
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=-all"]
BIN = REPO / ".venv" / "bin"


def as_nobody(cmd: list[str]) -> dict:
    state = Path("/tmp/state-nobody-edges")
    state.mkdir(mode=0o755, exist_ok=True)
    user = pwd.getpwnam("nobody")
    os.chown(state, user.pw_uid, user.pw_gid)
    env = {**os.environ, "HOME": "/tmp", config.ENV_CONFIG_DIR: str(state)}
    for name in dir(config):
        if name.startswith("ENV_") and "LOCK" in name:
            env[getattr(config, name)] = str(state)
    proc = subprocess.run(NOBODY + cmd, capture_output=True, text=True, env=env)
    return {"code": proc.returncode, "out": proc.stdout, "err": proc.stderr}


with facts.step("unprivileged_lists") as f:
    # the initial namespaces, owned by the initial user namespace
    init_server, init_client = MultisNetlink.open(), MulticNetlink.open()
    init_server.join(ip("239.8.8.8"), [ip("10.0.0.11")])
    init_client.add(ip("10.0.0.1"), 5000, ip("239.8.8.8"))
    run = as_nobody([sys.executable, "-c", NOBODY_CODE.format(repo=str(REPO), own=False)])
    f["init"] = json.loads(run["out"]) if run["code"] == 0 else run
    f["cli"] = {
        "multis -L": as_nobody([str(BIN / "multis_admin"), "-L", "-m", "239.8.8.8"]),
        "multis -S": as_nobody([str(BIN / "multis_admin"), "-S"]),
        "multic -L": as_nobody([str(BIN / "multic_admin"), "-L"]),
        "multic -P": as_nobody([str(BIN / "multic_admin"), "-P"]),
    }
    f["init_after"] = {
        "members": [str(m.address) for m in init_server.members(ip("239.8.8.8"))],
        "entries": [str(e.server) for e in init_client.entries()],
    }
    init_server.clear()
    init_client.clear()
    init_server.close()
    init_client.close()
    # a user namespace of its own, with a network namespace of its own
    userns = Path("/proc/sys/kernel/unprivileged_userns_clone")
    if userns.exists():
        userns.write_text("1\n")
    run = as_nobody(
        [
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            sys.executable,
            "-c",
            NOBODY_CODE.format(repo=str(REPO), own=True),
        ]
    )
    f["own"] = json.loads(run["out"]) if run["code"] == 0 else run


# --------------------------------------------------------------------------- egress

# The sender's own egress policy applies to the copies: the hook runs after
# every OUTPUT chain, and each copy is owned by the sending socket.
EGRESS_PORT = 7005
OWNER_UID = 1234
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2


def copies_to(rx: Receiver, addr: str, data: list[bytes]) -> dict:
    """What ``rx`` got addressed to ``addr`` (a copy), not the multicast original."""
    got = [d for d in rx.drain() if d.destination == addr]
    rx.close()
    return {"count": len(got), "intact": sorted(d.payload for d in got) == sorted(data)}


def uid_socket(host: Host, uid: int) -> socket.socket:
    """A UDP socket of ``host`` created (so owned) by ``uid``."""
    with host.inside():
        os.seteuid(uid)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        finally:
            os.seteuid(0)
    return sock


def group_and_members(group: str) -> dict:
    return {
        "group_stats": server.get_group(ip(group)).stats.to_json(),
        "member_stats": {str(m.address): m.stats.member_json() for m in server.members(ip(group))},
    }


server.join(ip(G1), members)
for c in clients.values():
    c.add(ip(sender_host.addr), EGRESS_PORT, ip(G1))

with facts.step("egress_filter") as f:
    # an OUTPUT rule that drops the group stops every copy; removed, they flow
    sender_host.sh(
        "nft -f - <<'EOF'\n"
        "table ip egress {\n"
        " chain o {\n"
        "  type filter hook output priority 0;\n"
        f"  ip daddr {G1} counter drop\n"
        " }\n"
        "}\n"
        "EOF"
    )
    server.reset_stats()
    try:
        data = payloads("egdrop", 5)
        socks = [Receiver(h, G1, EGRESS_PORT, bind_group=False) for h in receivers]
        tx = Sender(sender_host)
        refused = 0
        for payload in data:
            try:
                tx.sock.sendto(payload, (G1, EGRESS_PORT))
            except PermissionError:  # what OUTPUT's drop tells the sender
                refused += 1
        tx.close()
        f["dropped"] = {
            "received": collect(socks, data),
            "refused": refused,
            **group_and_members(G1),
            "rule": sender_host.sh("nft list table ip egress"),
        }
    finally:
        sender_host.sh("nft delete table ip egress")
    server.reset_stats()
    f["allowed"] = {
        "received": send_and_collect(
            sender_host, receivers, G1, EGRESS_PORT, payloads("egpass", 5)
        ),
        **group_and_members(G1),
    }

with facts.step("egress_owner") as f:
    # a rule on the copies' owner: uid 1234's copies to recv1 are dropped,
    # root's pass, and uid 1234's copies to the other members pass
    sender_host.sh(
        "nft -f - <<'EOF'\n"
        "table ip egress {\n"
        " chain o {\n"
        "  type filter hook output priority 0;\n"
        f"  ip daddr {receivers[0].addr} meta skuid {OWNER_UID} counter drop\n"
        " }\n"
        "}\n"
        "EOF"
    )
    try:
        for who, uid in (("uid", OWNER_UID), ("root", 0)):
            server.reset_stats()
            data = payloads(f"owner{uid}", 5)
            socks = [Receiver(h, G1, EGRESS_PORT, bind_group=False) for h in receivers]
            sock = uid_socket(sender_host, uid)
            sock.bind((sender_host.addr, 40010 + uid % 10))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
            for payload in data:
                sock.sendto(payload, (G1, EGRESS_PORT))
            sock.close()
            f[who] = {"received": collect(socks, data), **group_and_members(G1)}
        f["rule"] = sender_host.sh("nft list table ip egress")
    finally:
        sender_host.sh("nft delete table ip egress")

# The sender's members behind a smaller MTU: a route to recv3 with MTU 1000.
with facts.step("egress_df") as f:
    sender_host.sh(f"ip route add {receivers[2].addr}/32 dev eth0 mtu 1000")
    try:
        for mode in ("do", "want"):
            server.reset_stats()
            data = payloads(f"df{mode}", 5, 1200)
            socks = [Receiver(h, G1, EGRESS_PORT, bind_group=False) for h in receivers]
            tx = Sender(sender_host)
            if mode == "do":
                tx.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
            tx.send(G1, EGRESS_PORT, data)
            tx.close()
            f[mode] = {"received": collect(socks, data), **group_and_members(G1)}
    finally:
        sender_host.sh(f"ip route del {receivers[2].addr}/32 dev eth0 mtu 1000")

server.delete_group(ip(G1))
for c in clients.values():
    c.delete(ip(sender_host.addr), EGRESS_PORT)

# A VRF on the sender: eth1 in vrf "blue" (table 10) to a side host that is
# reachable only in that VRF.  A member of the group there, and recv1, which
# is reachable only outside it.
VRF_GROUP, SIDE_ADDR, SENDER_VRF_ADDR = "239.5.5.5", "10.0.1.2", "10.0.1.1"
side = Host("side", SIDE_ADDR)

with facts.step("egress_vrf") as f:
    sh("ip netns add side")
    sh("ip link add eth1 netns sender type veth peer name eth0 netns side")
    side.sh(f"ip addr add {SIDE_ADDR}/24 dev eth0")
    side.sh("ip link set eth0 up")
    side.sh("ip link set lo up")
    sender_host.sh("ip link add blue type vrf table 10")
    sender_host.sh("ip link set blue up")
    sender_host.sh("ip link set eth1 master blue")
    sender_host.sh(f"ip addr add {SENDER_VRF_ADDR}/24 dev eth1")
    sender_host.sh("ip link set eth1 up")
    sender_host.sh("ip route add 224.0.0.0/4 dev eth1 table 10")
    # what a VRF is configured with: a lookup that fails in its table stops
    # there instead of falling through to the main table's rules
    sender_host.sh("ip route add unreachable default metric 4278198272 table 10")
    f["main_routes"] = sender_host.sh("ip route show table main")
    f["vrf_routes"] = sender_host.sh("ip route show table 10")
    server.join(ip(VRF_GROUP), [ip(SIDE_ADDR), ip(receivers[0].addr)])
    for how in ("bound", "mcast_if"):
        server.reset_stats()
        data = payloads(f"vrf{how}", 5)
        side_rx = Receiver(side, VRF_GROUP, EGRESS_PORT, bind_group=False)
        recv1_rx = Receiver(receivers[0], VRF_GROUP, EGRESS_PORT, bind_group=False)
        with sender_host.inside():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if how == "bound":
            # SO_BINDTODEVICE to the VRF, as `ip vrf exec blue` does
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"blue")
        # the multicast interface eth1 (not bound: only the original's
        # route says which L3 domain it is in)
        sock.setsockopt(
            socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(SENDER_VRF_ADDR)
        )
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        for payload in data:
            sock.sendto(payload, (VRF_GROUP, EGRESS_PORT))
        sock.close()
        f[how] = {
            "side": copies_to(side_rx, SIDE_ADDR, data),
            "recv1": copies_to(recv1_rx, receivers[0].addr, data),
            **group_and_members(VRF_GROUP),
        }
    server.delete_group(ip(VRF_GROUP))
    sender_host.sh("ip link del eth1")
    sender_host.sh("ip link del blue")
    sh("ip netns del side")

# A member's route changes under traffic: copies follow it at once (the
# per-member route cache must not pin the old route), and while nothing
# changes they take the cached route instead of a lookup each.  The member
# 10.0.9.9 is an address of recv1 (behind the VPC, eth0) and of host "alt"
# (behind the sender's eth2); the sender's route to it says which one.
REROUTE_GROUP, REROUTE_PORT, REROUTE_MEMBER = "239.6.6.6", 7006, "10.0.9.9"
ALT_ADDR, SENDER_ALT_ADDR = "10.0.3.2", "10.0.3.1"
ROUTE_LOOKUP = "ip_route_output_flow"
alt = Host("alt", ALT_ADDR)


def reroute_socket() -> socket.socket:
    """The one sender of every phase: the same flow key, so its copies can use the cache."""
    with sender_host.inside():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((sender_host.addr, 40020))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    return sock


def reroute_send(sock: socket.socket, tag: str, count: int = 5) -> dict:
    """``count`` datagrams to the group: who got the copies, how many route lookups were made."""
    data = payloads(tag, count)
    rx = {
        "recv1": Receiver(receivers[0], REROUTE_GROUP, REROUTE_PORT, bind_group=False),
        "recv2": Receiver(receivers[1], REROUTE_GROUP, REROUTE_PORT, bind_group=False),
        "alt": Receiver(alt, REROUTE_GROUP, REROUTE_PORT, bind_group=False),
    }
    server.reset_stats()
    (TRACEFS / "trace").write_text("")
    for payload in data:
        sock.sendto(payload, (REROUTE_GROUP, REROUTE_PORT))
    trace = (TRACEFS / "trace").read_text()
    lookups = len(re.findall(rf"\s{ROUTE_LOOKUP} <-", trace))
    return {
        # made by multis (the copies'), not by udp_sendmsg (the originals') or
        # by whatever else the VM sends meanwhile (an IGMP report's timer)
        "copy_lookups": len(re.findall(rf"\s{ROUTE_LOOKUP} <-multis_", trace)),
        "recv1": copies_to(rx["recv1"], REROUTE_MEMBER, data),
        "alt": copies_to(rx["alt"], REROUTE_MEMBER, data),
        "recv2": copies_to(rx["recv2"], receivers[1].addr, data),
        "lookups": lookups,
        "route": sender_host.sh(f"ip route get {REROUTE_MEMBER}").strip(),
        **group_and_members(REROUTE_GROUP),
    }


with facts.step("member_reroute") as f:
    sh("ip netns add alt")
    sh("ip link add eth2 netns sender type veth peer name eth0 netns alt")
    alt.sh(f"ip addr add {ALT_ADDR}/24 dev eth0")
    alt.sh(f"ip addr add {REROUTE_MEMBER}/32 dev eth0")
    alt.sh("ip link set eth0 up")
    alt.sh("ip link set lo up")
    alt.sh("ip route add default dev eth0")
    receivers[0].sh(f"ip addr add {REROUTE_MEMBER}/32 dev eth0")
    sender_host.sh(f"ip addr add {SENDER_ALT_ADDR}/24 dev eth2")
    sender_host.sh("ip link set eth2 up")
    sender_host.sh(f"ip route add {REROUTE_MEMBER}/32 dev eth0")
    server.join(ip(REROUTE_GROUP), [ip(REROUTE_MEMBER), ip(receivers[1].addr)])
    # count the route lookups made while the datagrams are sent
    (TRACEFS / "set_ftrace_filter").write_text(ROUTE_LOOKUP + "\n")
    f["filter"] = (TRACEFS / "set_ftrace_filter").read_text().splitlines()
    (TRACEFS / "current_tracer").write_text("function\n")
    sock = reroute_socket()
    try:
        f["warm"] = reroute_send(sock, "rr-warm")  # neighbours resolved, routes cached
        f["cached"] = reroute_send(sock, "rr-cached", 20)
        sender_host.sh(f"ip route replace {REROUTE_MEMBER}/32 dev eth2")
        f["moved"] = reroute_send(sock, "rr-moved")
        sender_host.sh(f"ip route replace {REROUTE_MEMBER}/32 via {ALT_ADDR} dev eth2")
        f["via"] = reroute_send(sock, "rr-via")
        sender_host.sh(f"ip route replace {REROUTE_MEMBER}/32 dev eth0")
        f["back"] = reroute_send(sock, "rr-back")
        # the device the cached route leads to goes down: a lookup, not the dead route
        sender_host.sh(f"ip route replace {REROUTE_MEMBER}/32 dev eth2")
        f["moved_again"] = reroute_send(sock, "rr-again")
        sender_host.sh("ip link set eth2 down")
        sender_host.sh(f"ip route replace {REROUTE_MEMBER}/32 dev eth0")
        f["device_down"] = reroute_send(sock, "rr-down")
    finally:
        sock.close()
        (TRACEFS / "current_tracer").write_text("nop\n")
    server.delete_group(ip(REROUTE_GROUP))
    receivers[0].sh(f"ip addr del {REROUTE_MEMBER}/32 dev eth0")
    sender_host.sh("ip link del eth2")
    sh("ip netns del alt")

# The application names its output interface (IP_MULTICAST_IF, as iperf and
# most multicast applications do), and the members are reached by a route
# with the same nexthop as the host's 224.0.0.0/4 dev eth0: the kernel shares
# one nexthop (and its route cache) between the two, and hands the group's
# datagrams the unicast route a lookup for a member left there.  Every
# datagram must still be fanned out: multis knows a multicast destination by
# its address, not by its route's type.
SHARED_GROUP, SHARED_PORT = "239.6.6.7", 7007
SHARED_MEMBERS = ["10.0.8.1", "10.0.8.2"]

with facts.step("shared_nexthop") as f:
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})  # every send and copy uses one CPU's cache
    for host, member in zip(receivers, SHARED_MEMBERS, strict=False):
        host.sh(f"ip addr add {member}/32 dev eth0")
        clients[host.name].add(ip(sender_host.addr), SHARED_PORT, ip(SHARED_GROUP))
    sender_host.sh("ip route add 10.0.8.0/24 dev eth0")
    server.join(ip(SHARED_GROUP), [ip(m) for m in SHARED_MEMBERS])
    with sender_host.inside():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((sender_host.addr, 40030))
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sender_host.addr))
    socks = [Receiver(h, SHARED_GROUP, SHARED_PORT) for h in receivers[:2]]
    data = payloads("shared", 20)
    try:
        for member in SHARED_MEMBERS:  # fills the nexthop's route cache, as a copy does
            sock.sendto(b"unicast", (member, SHARED_PORT + 1))
        server.reset_stats()
        for payload in data:
            sock.sendto(payload, (SHARED_GROUP, SHARED_PORT))
        f["received"] = collect(socks, data)
        f.update(group_and_members(SHARED_GROUP))
    finally:
        sock.close()
        os.sched_setaffinity(0, cpus)
    server.delete_group(ip(SHARED_GROUP))
    sender_host.sh("ip route del 10.0.8.0/24 dev eth0")
    for host, member in zip(receivers, SHARED_MEMBERS, strict=False):
        clients[host.name].delete(ip(sender_host.addr), SHARED_PORT)
        host.sh(f"ip addr del {member}/32 dev eth0")

server.close()
for c in clients.values():
    c.close()
sh("rmmod multis")
sh("rmmod multic")

print("guest: done", flush=True)
