"""Guest side of tests/vm/test_ipv6.py: IPv6 fan-out (multis) on a simulated VPC.

The VPC of vpc.py with IPv6 addresses on every host; a second bridge table
drops IPv6 multicast except neighbour discovery, as a cloud VPC's switch
(which answers ND itself) does.  multic does not restore IPv6 yet, so the
receivers read the copies on a wildcard socket: each copy as it arrived,
with its Traffic Class, hop limit and destination, after the receiving
stack (rx checksum offload off) has verified its UDP checksum.
"""

from __future__ import annotations

import socket
import struct
import sys
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin.errors import MulticastProxyError
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import Receiver, Sender, build_vpc, insmod, payloads, sh

REPO = Path(__file__).resolve().parents[3]
MULTIS_KO = REPO / "kernel" / "multis" / "multis.ko"
MULTIC_KO = REPO / "kernel" / "multic" / "multic.ko"

G6 = "ff15::1:5"
G4 = "239.1.1.1"
PORT = 5000
COUNT = 20

SWITCH6_RULES = """
table bridge vpc6 {
    chain seen {
        type filter hook prerouting priority -10;
        ip6 daddr ff00::/8 meta l4proto udp counter comment "udp6_multicast"
        ip6 dscp cs7 meta l4proto udp counter comment "udp6_marked"
    }
    chain drop_mcast6 {
        type filter hook forward priority 0;
        ip6 daddr ff02::1:ff00:0/104 accept
        icmpv6 type nd-router-solicit accept
        icmpv6 type nd-router-advert accept
        icmpv6 type nd-neighbor-solicit accept
        icmpv6 type nd-neighbor-advert accept
        icmpv6 type nd-redirect accept
        ip6 daddr ff00::/8 counter drop
    }
}
"""

IPV6_RECVPKTINFO = 49
IPV6_PKTINFO = 50
IPV6_RECVHOPLIMIT = 51
IPV6_HOPLIMIT = 52
IPV6_RECVTCLASS = 66
IPV6_TCLASS = 67

facts = Facts()
vpc = build_vpc(receivers=3)
sender_host = vpc.sender
receivers = vpc.receivers
ADDR6 = {sender_host.name: "2001:db8::1"}
ADDR6.update({h.name: f"2001:db8::{10 + i}" for i, h in enumerate(receivers, 1)})
sh(f"ip netns exec {vpc.switch} nft -f - <<'EOF'\n{SWITCH6_RULES}\nEOF")
for host in (sender_host, *receivers):
    host.sh(f"ip -6 addr add {ADDR6[host.name]}/64 dev eth0 nodad")
    host.sh("ip -6 route add ff15::/16 dev eth0")


def switch6() -> dict[str, int]:
    out = sh(f"ip netns exec {vpc.switch} nft list chain bridge vpc6 seen")
    return {
        line.split('comment "')[1].split('"')[0]: int(line.split("counter packets")[1].split()[0])
        for line in out.splitlines()
        if "counter packets" in line
    }


class Receiver6:
    """A receiver joined to the IPv6 group, and a wildcard socket for the copies."""

    def __init__(self, host, group: str, port: int) -> None:
        self.host = host
        with host.inside():
            joined = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            wild = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            ifindex = socket.if_nametoindex("eth0")
        for sock in (joined, wild):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVPKTINFO, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVTCLASS, 1)
            sock.setblocking(False)
        joined.bind((group, port))
        mreq = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", ifindex)
        joined.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
        # the copies: unicast to this host, until multic restores IPv6
        wild.bind((ADDR6[host.name], port))
        self.joined, self.wild = joined, wild

    @staticmethod
    def _drain(sock, settle: float) -> list[dict]:
        import select

        got = []
        while select.select([sock], [], [], settle)[0]:
            while True:
                try:
                    data, anc, _flags, src = sock.recvmsg(65536, 1024)
                except BlockingIOError:
                    break
                item = {"payload": data, "source": f"[{src[0]}]:{src[1]}"}
                for level, kind, value in anc:
                    if level != socket.IPPROTO_IPV6:
                        continue
                    if kind == IPV6_PKTINFO:
                        item["destination"] = str(IPv6Address(value[:16]))
                    elif kind == IPV6_HOPLIMIT:
                        item["hop_limit"] = struct.unpack("@i", value[:4])[0]
                    elif kind == IPV6_TCLASS:
                        item["tclass"] = struct.unpack("@i", value[:4])[0]
                got.append(item)
        return got

    def drain(self, data: list[bytes], settle: float = 0.5) -> dict:
        out = {}
        for name, sock in (("joined", self.joined), ("copies", self.wild)):
            got = self._drain(sock, settle)
            out[name] = {
                "count": len(got),
                "intact": sorted(g["payload"] for g in got) == sorted(data),
                "sources": sorted({g["source"] for g in got}),
                "destinations": sorted({g.get("destination", "") for g in got}),
                "hop_limits": sorted({g.get("hop_limit", -1) for g in got}),
                "tclasses": sorted({g.get("tclass", -1) for g in got}),
                "sizes": sorted({len(g["payload"]) for g in got}),
            }
        return out

    def close(self) -> None:
        self.joined.close()
        self.wild.close()


class Sender6:
    def __init__(self, host, sport: int = 40000, hops: int = 1) -> None:
        with host.inside():
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            ifindex = socket.if_nametoindex("eth0")
        sock.bind((ADDR6[host.name], sport))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, hops)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
        self.sock = sock
        self.source = f"[{ADDR6[host.name]}]:{sport}"

    def send(self, group: str, port: int, data: list[bytes]) -> None:
        for payload in data:
            self.sock.sendto(payload, (group, port))

    def close(self) -> None:
        self.sock.close()


def exchange6(data: list[bytes], hops: int = 1) -> dict:
    socks = [Receiver6(h, G6, PORT) for h in receivers]
    tx = Sender6(sender_host, hops=hops)
    try:
        tx.send(G6, PORT, data)
        out = {rx.host.name: rx.drain(data) for rx in socks}
        out["source"] = tx.source
        return out
    finally:
        tx.close()
        for rx in socks:
            rx.close()


def udp6_errors() -> dict[str, dict[str, int]]:
    out = {}
    for host in receivers:
        text = host.sh("cat /proc/net/snmp6")
        values = dict(line.split() for line in text.splitlines() if line.strip())
        out[host.name] = {k: int(values[k]) for k in ("Udp6InErrors", "Udp6InCsumErrors")}
    return out


def error_of(call) -> dict:
    try:
        call()
    except MulticastProxyError as err:
        return {"kind": type(err).__name__, "errno": err.errno, "message": str(err)}
    return {"ok": True}


def multis() -> MultisNetlink:
    with sender_host.inside():
        return MultisNetlink.open()


A4, A6 = IPv4Address, IPv6Address
MEMBERS6 = [A6(ADDR6[h.name]) for h in receivers]

with facts.step("baseline") as f:
    before = switch6()
    f["received"] = exchange6(payloads("base", COUNT))
    after = switch6()
    f["switch"] = {k: after[k] - before[k] for k in after}

with facts.step("load") as f:
    insmod(MULTIS_KO)
    insmod(MULTIC_KO)
    f["lsmod"] = sh("lsmod | grep -E '^multi[sc] ' | cut -d' ' -f1").split()

server = multis()

with facts.step("configure") as f:
    server.join(A6(G6), MEMBERS6)
    f["groups"] = [str(g.address) for g in server.groups()]
    f["members"] = [str(m.address) for m in server.members(A6(G6))]
    f["group"] = str(server.get_group(A6(G6)).address)

with facts.step("delivery") as f:
    server.reset_stats()
    errors_before = udp6_errors()
    before = switch6()
    data = payloads("six", COUNT, size=200)
    f["received"] = exchange6(data)
    after = switch6()
    f["switch"] = {k: after[k] - before[k] for k in after}
    f["group_stats"] = server.get_group(A6(G6)).stats.to_json()
    f["member_stats"] = {str(m.address): m.stats.member_json() for m in server.members(A6(G6))}
    f["wire_size"] = 40 + 8 + 200
    errors_after = udp6_errors()
    f["udp6_errors"] = {
        name: {k: errors_after[name][k] - errors_before[name][k] for k in errors_after[name]}
        for name in errors_after
    }

with facts.step("big_datagram") as f:
    server.reset_stats()
    data = payloads("big", 2, size=8000)
    f["received"] = exchange6(data)
    f["group_stats"] = server.get_group(A6(G6)).stats.to_json()

with facts.step("udp_gso") as f:
    # UDP_SEGMENT: one GSO skb (CHECKSUM_PARTIAL) of 4 segments per copy
    server.reset_stats()
    socks = [Receiver6(h, G6, PORT) for h in receivers]
    tx = Sender6(sender_host)
    try:
        tx.sock.setsockopt(socket.SOL_UDP, 103, 500)  # UDP_SEGMENT
        blob = payloads("gso", 1, size=2000)[0]
        tx.sock.sendto(blob, (G6, PORT))
        segments = [blob[i : i + 500] for i in range(0, 2000, 500)]
        f["received"] = {rx.host.name: rx.drain(segments) for rx in socks}
    finally:
        tx.close()
        for rx in socks:
            rx.close()
    f["group_stats"] = server.get_group(A6(G6)).stats.to_json()

with facts.step("hop_limit_zero") as f:
    server.reset_stats()
    f["received"] = exchange6(payloads("zero", 5), hops=0)
    f["group_stats"] = server.get_group(A6(G6)).stats.to_json()

with facts.step("refusals") as f:
    server.join(A4(G4), [A4(h.addr) for h in receivers])
    f["ipv6_member_in_ipv4_group"] = error_of(lambda: server.join(A4(G4), [MEMBERS6[0]]))
    f["ipv4_member_in_ipv6_group"] = error_of(lambda: server.join(A6(G6), [A4("10.0.0.11")]))
    f["interface_local_group"] = error_of(lambda: server.join(A6("ff01::1"), MEMBERS6))
    f["unicast_group"] = error_of(lambda: server.join(A6("2001:db8::99"), MEMBERS6))
    f["loopback_member"] = error_of(lambda: server.join(A6(G6), [A6("::1")]))
    f["multicast_member"] = error_of(lambda: server.join(A6(G6), [A6("ff02::1")]))
    f["mapped_member"] = error_of(lambda: server.join(A6(G6), [A6("::ffff:10.0.0.11")]))
    f["group_as_member"] = error_of(lambda: server.join(A6("ff15::1:6"), [A6(G6)]))
    f["members_after"] = [str(m.address) for m in server.members(A6(G6))]
    f["groups_after"] = [str(g.address) for g in server.groups()]
    # max_groups (10) counts both families: 2 exist, 8 more fit, the 11th does not
    for i in range(8):
        server.join(A6(f"ff15::2:{i}"), MEMBERS6[:1])
    f["eleventh"] = error_of(lambda: server.join(A4("239.9.9.9"), [A4("10.0.0.11")]))
    f["group_count"] = server.stats().group_count
    for i in range(8):
        server.delete_group(A6(f"ff15::2:{i}"))

with facts.step("both_families") as f:
    clients = {}
    for h in receivers:
        with h.inside():
            clients[h.name] = MulticNetlink.open()
        clients[h.name].add(A4(sender_host.addr), PORT, A4(G4))
    server.reset_stats()
    socks4 = [Receiver(h, G4, PORT) for h in receivers]
    socks6 = [Receiver6(h, G6, PORT) for h in receivers]
    tx4, tx6 = Sender(sender_host), Sender6(sender_host)
    data4, data6 = payloads("four", COUNT), payloads("six2", COUNT)
    for a, b in zip(data4, data6):
        tx4.send(G4, PORT, [a])
        tx6.send(G6, PORT, [b])
    f["ipv4"] = {
        rx.host.name: {
            "count": len(got := rx.drain()),
            "intact": sorted(d.payload for d in got) == sorted(data4),
            "destinations": sorted({d.destination for d in got}),
        }
        for rx in socks4
    }
    f["ipv6"] = {rx.host.name: rx.drain(data6) for rx in socks6}
    f["stats4"] = server.get_group(A4(G4)).stats.to_json()
    f["stats6"] = server.get_group(A6(G6)).stats.to_json()
    for s in (tx4, tx6, *socks4, *socks6):
        s.close()

with facts.step("multic_refuses_ipv6") as f:
    # multic has no IPv6 yet: its strict policy refuses the attributes
    with receivers[0].inside():
        client = MulticNetlink.open()
    before = [(str(e.server), e.port, str(e.group)) for e in client.entries()]
    f["refused"] = error_of(lambda: client.add(A6(ADDR6[sender_host.name]), PORT, A6(G6)))
    f["unchanged"] = before == [(str(e.server), e.port, str(e.group)) for e in client.entries()]
    client.close()

with facts.step("unload") as f:
    server.clear()
    server.close()
    sh("rmmod multis")
    sh("rmmod multic")
    f["ok"] = True

print("guest: done", flush=True)
