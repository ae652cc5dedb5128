"""Guest side of tests/vm/test_ipv6.py: IPv6 fan-out (multis) and restore (multic).

The VPC of vpc.py with IPv6 addresses on every host; a second bridge table
drops IPv6 multicast except neighbour discovery, as a cloud VPC's switch
(which answers ND itself) does.  Each receiver has a socket bound to the
group and joined to it, and one bound to its own address.  Before multic
has IPv6 entries, the copies arrive on the second, as multis made them;
once it has, they arrive on the first, restored, with the Traffic Class,
hop limit and destination of each datagram as delivered, after the
receiving stack (rx checksum offload off) has verified its UDP checksum.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from click.testing import CliRunner

from multicast_admin import cli_client, config, uapi
from multicast_admin.cli_common import Env
from multicast_admin.errors import MulticastProxyError
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import (
    Host,
    Receiver,
    Sender,
    add_ipv6,
    build_vpc,
    insmod,
    payloads,
    sh,
    switch6,
)

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / ".venv" / "bin"
TRACEFS = Path("/sys/kernel/tracing")
MULTIS_KO = REPO / "kernel" / "multis" / "multis.ko"
MULTIC_KO = REPO / "kernel" / "multic" / "multic.ko"

G6 = "ff15::1:5"
G4 = "239.1.1.1"
PORT = 5000
COUNT = 20

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
add_ipv6(vpc, ADDR6)


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
        # the copies as multis made them: unicast to this host (no multic entry)
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
    before = switch6(vpc)
    f["received"] = exchange6(payloads("base", COUNT))
    after = switch6(vpc)
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
    before = switch6(vpc)
    data = payloads("six", COUNT, size=200)
    f["received"] = exchange6(data)
    after = switch6(vpc)
    f["switch"] = {k: after[k] - before[k] for k in after}
    f["group_stats"] = server.get_group(A6(G6)).stats.to_json()
    f["member_stats"] = {str(m.address): m.stats.member_json() for m in server.members(A6(G6))}
    f["wire_size"] = 40 + 8 + 200
    errors_after = udp6_errors()
    f["udp6_errors"] = {
        name: {k: errors_after[name][k] - errors_before[name][k] for k in errors_after[name]}
        for name in errors_after
    }

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


def multic_stats(client: MulticNetlink) -> dict:
    return client.stats().stats.to_json()


def entry_stats(client: MulticNetlink, server: str, port: int = PORT) -> dict:
    return client.get_entry(ip(server), port).stats.entry_json()


def ip(text: str):
    return IPv6Address(text) if ":" in text else IPv4Address(text)


def entries_of(client: MulticNetlink) -> list[tuple[str, int, str]]:
    return [(str(e.server), e.port, str(e.group)) for e in client.entries()]


def state_dir(host) -> Path:
    return Path(f"/tmp/state-{host.name}")


def tool_env(host) -> dict[str, str]:
    """The tools' state (and lock) in a directory of the guest's tmpfs."""
    env = {**os.environ, "HOME": "/tmp", config.ENV_CONFIG_DIR: str(state_dir(host))}
    for name in dir(config):
        if name.startswith("ENV_") and "LOCK" in name:
            env[getattr(config, name)] = str(state_dir(host))
    return env


def process(host, tool: str, *args: str) -> dict:
    """The installed console script as a real process in ``host``'s namespace."""
    cmd = ["ip", "netns", "exec", host.name, str(BIN / tool), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=tool_env(host))
    return {"code": proc.returncode, "out": proc.stdout, "err": proc.stderr}


def cli_in(host, *args: str) -> dict:
    """One multic_admin call in ``host``'s namespace, in-process (the same CLI code)."""
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        runner = CliRunner(mix_stderr=False)
    else:
        runner = CliRunner()
    with host.inside():
        result = runner.invoke(cli_client.cli, list(args), obj=Env(state_dir=state_dir(host)))
    return {"code": result.exit_code, "out": result.stdout, "err": result.stderr}


def state_file(host) -> str:
    path = state_dir(host) / "multic.json"
    return path.read_text() if path.exists() else ""


FRAG_PROBE6 = """table ip6 probe {
    chain pre {
        type filter hook prerouting priority -300; policy accept;
        exthdr frag exists counter
    }
}"""


def fragments_seen(host) -> int:
    """IPv6 fragments recv1's probe chain (after defrag's priority, -400) saw."""
    out = host.sh("nft list chain ip6 probe pre")
    return int(re.search(r"counter packets (\d+)", out).group(1))


SENDER6 = ADDR6[sender_host.name]
recv1 = receivers[0]
clients: dict[str, MulticNetlink] = {}

with facts.step("multic_configure") as f:
    # recv1 through the real multic_admin, as an operator would; the others directly
    state_dir(recv1).mkdir(parents=True, exist_ok=True)
    f["cli_add"] = process(recv1, "multic_admin", "-A", "-i", SENDER6, "-p", str(PORT), "-m", G6)
    for h in receivers:
        with h.inside():
            clients[h.name] = MulticNetlink.open()
        if h is not recv1:
            clients[h.name].add(A6(SENDER6), PORT, A6(G6))
    f["entries"] = {h.name: entries_of(clients[h.name]) for h in receivers}
    f["cli_list"] = json.loads(cli_in(recv1, "-L", "--json")["out"])["entries"]
    f["state_file"] = json.loads(state_file(recv1) or "{}")
    recv1.sh(f"nft -f - <<'EOF'\n{FRAG_PROBE6}\nEOF")

with facts.step("restore") as f:
    server.reset_stats()
    for c in clients.values():
        c.reset_stats()
    errors_before = udp6_errors()
    data = payloads("rest", COUNT, size=200)
    f["received"] = exchange6(data)
    f["wire_size"] = 40 + 8 + 200
    f["multic"] = {n: multic_stats(c) for n, c in clients.items()}
    f["entry"] = {n: entry_stats(c, SENDER6) for n, c in clients.items()}
    f["group_stats"] = server.get_group(A6(G6)).stats.to_json()
    errors_after = udp6_errors()
    f["udp6_errors"] = {
        name: {k: errors_after[name][k] - errors_before[name][k] for k in errors_after[name]}
        for name in errors_after
    }

with facts.step("big_datagram") as f:
    # 8000 bytes over MTU 1500: the copies are fragmented, multic restores them reassembled
    server.reset_stats()
    for c in clients.values():
        c.reset_stats()
    frags_before = fragments_seen(recv1)
    data = payloads("big", 2, size=8000)
    f["received"] = exchange6(data)
    f["group_stats"] = server.get_group(A6(G6)).stats.to_json()
    f["multic"] = {n: multic_stats(c) for n, c in clients.items()}
    f["fragments_after_defrag"] = fragments_seen(recv1) - frags_before

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

MARKER = 0xE0
IPPROTO_EXPERIMENT = 253  # RFC 3692: no stack knows it


def raw6(proto: int, payload: bytes, count: int) -> None:
    """Marked (Traffic Class 0xE0) raw IPv6 packets from the sender to recv1."""
    with sender_host.inside():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, proto)
    try:
        sock.setsockopt(socket.IPPROTO_IPV6, IPV6_TCLASS, MARKER)
        for _ in range(count):
            sock.sendto(payload, (ADDR6[recv1.name], 0))
    finally:
        sock.close()


with facts.step("not_ours") as f:
    for c in clients.values():
        c.reset_stats()
    # marked copies to a port no entry has: NO_ENTRY on every receiver
    tx = Sender6(sender_host)
    tx.send(G6, PORT + 1, payloads("port", 5))
    tx.close()
    # marked IPv6 that is not UDP: an ICMPv6 echo request, an unknown next header
    raw6(socket.IPPROTO_ICMPV6, struct.pack("!BBHHH", 128, 0, 0, 7, 1) + b"ping", 3)
    raw6(IPPROTO_EXPERIMENT, b"\x11" * 40, 2)
    time.sleep(1)
    f["multic"] = {n: multic_stats(c) for n, c in clients.items()}
    f["cli_stats"] = json.loads(cli_in(recv1, "-P", "--json")["out"])["stats"]


def add_raw(client: MulticNetlink, group: str) -> None:
    """ADD of an IPv6 group without entry flags (what add() sends for a multicast one)."""
    client._do(
        uapi.MULTIC_CMD_ADD,
        [
            ("MULTIC_A_SERVER_ADDR6", SENDER6),
            ("MULTIC_A_PORT", 5001),
            ("MULTIC_A_GROUP_ADDR6", group),
        ],
        "adding",
    )


with facts.step("multic_refusals") as f:
    client = clients[recv1.name]
    before, file_before = entries_of(client), state_file(recv1)
    add = client.add
    f["kernel"] = {
        "ipv4_server_ipv6_group": error_of(lambda: add(A4(sender_host.addr), PORT, A6(G6))),
        "ipv6_server_ipv4_group": error_of(lambda: add(A6(SENDER6), 5001, A4(G4))),
        # add() flags a group that is not multicast as broadcast: refused so
        "broadcast_group": error_of(lambda: add(A6(SENDER6), 5001, A6("2001:db8::99"))),
        "unicast_group": error_of(lambda: add_raw(client, "2001:db8::99")),
        "interface_local_group": error_of(lambda: add(A6(SENDER6), 5001, A6("ff01::1"))),
        "mapped_server": error_of(lambda: add(A6("::ffff:10.0.0.1"), 5001, A4(G4))),
        "multicast_server": error_of(lambda: add(A6("ff02::1"), 5001, A6(G6))),
        "loopback_server": error_of(lambda: add(A6("::1"), 5001, A6(G6))),
        "duplicate": error_of(lambda: add(A6(SENDER6), PORT, A6("ff15::1:6"))),
        "missing": error_of(lambda: client.delete(A6("2001:db8::2"), PORT)),
    }
    # the tools check first, with the same rules, one line each
    f["cli"] = {
        "ipv4_server_ipv6_group": cli_in(
            recv1, "-A", "-i", sender_host.addr, "-p", "5001", "-m", G6
        ),
        "unicast_group": cli_in(recv1, "-A", "-i", SENDER6, "-p", "5001", "-m", "2001:db8::99"),
        "mapped_server": cli_in(recv1, "-A", "-i", "::ffff:10.0.0.1", "-p", "5001", "-m", G4),
    }
    f["unchanged"] = entries_of(client) == before
    f["file_unchanged"] = state_file(recv1) == file_before
    # max_groups (10) counts both families: 1 group, 9 more fit (IPv4 and IPv6), not an 11th
    for i in range(1, 10):
        if i % 2:
            add(A4(f"10.0.9.{i}"), PORT, A4(f"239.9.0.{i}"))
        else:
            add(A6(f"2001:db8:9::{i}"), PORT, A6(f"ff15::9:{i}"))
    f["eleventh6"] = error_of(lambda: add(A6("2001:db8:9::99"), PORT, A6("ff15::9:99")))
    f["eleventh4"] = error_of(lambda: add(A4("10.0.9.99"), PORT, A4("239.9.0.99")))
    f["same_group_fits"] = error_of(lambda: add(A6("2001:db8:9::98"), PORT, A6("ff15::9:2")))
    f["group_count"] = client.stats().group_count
    for i in range(1, 10):
        client.delete(A4(f"10.0.9.{i}") if i % 2 else A6(f"2001:db8:9::{i}"), PORT)
    client.delete(A6("2001:db8:9::98"), PORT)
    f["after"] = entries_of(client) == before

with facts.step("both_families") as f:
    for h in receivers:
        clients[h.name].add(A4(sender_host.addr), PORT, A4(G4))
        clients[h.name].reset_stats()
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
    f["entry4"] = {n: entry_stats(c, sender_host.addr) for n, c in clients.items()}
    f["entry6"] = {n: entry_stats(c, SENDER6) for n, c in clients.items()}
    for s in (tx4, tx6, *socks4, *socks6):
        s.close()

# An encapsulated datagram over IPv6: a VXLAN overlay whose underlay is the
# IPv6 group ff15::100 (its outer UDP checksum computed, or left zero with
# udp6zerocsumtx, which the receivers then accept with udp6zerocsumrx).  An
# inner UDP broadcast from the sender's overlay address reaches every
# receiver's overlay only if multis's copies and multic's restores keep the
# outer checksum right: a zero one stays zero.
VXLAN6_GROUP, VXLAN6_PORT, VNI6 = "ff15::100", 4789, 46
OVERLAY6_PREFIX, OVERLAY6_BROADCAST, INNER_PORT = "192.168.106.", "192.168.106.255", 8000


def overlay(host) -> Host:
    """The same namespace, seen from its VXLAN overlay (IPv4) address."""
    return Host(host.name, OVERLAY6_PREFIX + host.addr.rsplit(".", 1)[1])


def vxlan6_exchange(tag: str, zero_csum: bool) -> dict:
    mode = "udp6zerocsumtx udp6zerocsumrx" if zero_csum else ""
    hosts = (sender_host, *receivers)
    for h in hosts:
        h.sh(
            f"ip link add vx6 type vxlan id {VNI6} group {VXLAN6_GROUP} local {ADDR6[h.name]}"
            f" dev eth0 dstport {VXLAN6_PORT} {mode}"
        )
        h.sh("ip link set vx6 addrgenmode none")  # nothing but the test's datagrams on it
        h.sh(f"ip addr add {overlay(h).addr}/24 dev vx6")
        h.sh("ip link set vx6 up")
    try:
        before = udp6_errors()
        data = payloads(tag, 5, 300)
        socks = [
            Receiver(overlay(h), OVERLAY6_BROADCAST, INNER_PORT, bind_group=False)
            for h in receivers
        ]
        tx = Sender(overlay(sender_host))
        tx.send(OVERLAY6_BROADCAST, INNER_PORT, data)
        tx.close()
        out: dict = {}
        for rx in socks:
            got = rx.drain()
            out[rx.host.name] = {
                "count": len(got),
                "intact": sorted(d.payload for d in got) == sorted(data),
            }
            rx.close()
        after = udp6_errors()
        out["udp6_errors"] = {n: {k: after[n][k] - before[n][k] for k in after[n]} for n in after}
        out["details"] = sender_host.sh("ip -d link show vx6")
        return out
    finally:
        for h in hosts:
            h.sh("ip link del vx6")


with facts.step("vxlan6") as f:
    server.join(A6(VXLAN6_GROUP), [A6(ADDR6[h.name]) for h in receivers])
    for c in clients.values():
        c.add(A6(SENDER6), VXLAN6_PORT, A6(VXLAN6_GROUP))
    for zero_csum in (False, True):
        name = "zero_csum" if zero_csum else "csum"
        server.reset_stats()
        for c in clients.values():
            c.reset_stats()
        f[name] = vxlan6_exchange(f"vx6{name}", zero_csum)
        f[name]["group_stats"] = server.get_group(A6(VXLAN6_GROUP)).stats.to_json()
        f[name]["entry"] = {n: entry_stats(c, SENDER6, VXLAN6_PORT) for n, c in clients.items()}
    server.delete_group(A6(VXLAN6_GROUP))
    for c in clients.values():
        c.delete(A6(SENDER6), VXLAN6_PORT)

IPERF_LOAD = ("-T", "32", "-t", "2", "-b", "400K", "-l", "1000")


def IN_NS(host) -> list[str]:  # noqa: N802
    return ["ip", "netns", "exec", host.name]


IPERF_LOSS = re.compile(r"\s(\d+)/\s*(\d+)\s+\(")

with facts.step("iperf") as f:
    # iperf2 as a real application: a multicast client, a server bound to the group
    recv2 = receivers[1]
    srv = subprocess.Popen(
        [*IN_NS(recv2), "stdbuf", "-oL", "iperf", "-s", "-u", "-V", "-B", G6, "-p", str(PORT)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    time.sleep(2)  # the server joins the group
    cli = subprocess.run(
        [*IN_NS(sender_host), "iperf", "-V", "-u", "-c", G6, "-p", str(PORT), *IPERF_LOAD],
        capture_output=True,
        text=True,
        timeout=60,
    )
    time.sleep(2)
    srv.send_signal(signal.SIGINT)
    try:
        out, _ = srv.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        srv.kill()
        out, _ = srv.communicate()
    f["client"] = cli.stdout[-1500:] + cli.stderr[-500:]
    f["server"] = out[-2500:]
    sent = re.search(r"Sent (\d+) datagrams", cli.stdout)
    f["sent"] = int(sent.group(1)) if sent else -1
    reports = IPERF_LOSS.findall(out)
    f["lost_total"] = [int(x) for x in reports[-1]] if reports else None
    f["peer"] = bool(re.search(rf"local {re.escape(G6)} port {PORT} connected with {SENDER6}", out))

with facts.step("removal") as f:
    # an IPv6 entry's removal stops delivery; the last one takes the IPv6 hook out
    if not (TRACEFS / "trace").exists():
        sh(f"mount -t tracefs nodev {TRACEFS}")
    (TRACEFS / "set_ftrace_filter").write_text("multic_hook6 multic_hook\n")
    f["filter"] = sorted(
        line.split()[0] for line in (TRACEFS / "set_ftrace_filter").read_text().splitlines()
    )
    (TRACEFS / "current_tracer").write_text("function\n")

    def observe(tag: str) -> dict:
        (TRACEFS / "trace").write_text("")
        frags = fragments_seen(recv1)
        got = exchange6(payloads(tag, 5))
        four = [Receiver(h, G4, PORT) for h in receivers]
        tx4 = Sender(sender_host)
        tx4.send(G4, PORT, payloads(tag + "4", 5))
        tx4.close()
        got4 = {rx.host.name: len(rx.drain()) for rx in four}
        for rx in four:
            rx.close()
        tx = Sender6(sender_host)
        tx.send(G6, PORT, payloads(tag + "big", 1, size=3000))  # fragmented copies
        tx.close()
        time.sleep(0.5)
        trace = (TRACEFS / "trace").read_text()
        return {
            "joined": {n: got[n]["joined"]["count"] for n in ADDR6 if n in got},
            "copies": {n: got[n]["copies"]["count"] for n in ADDR6 if n in got},
            "ipv4": got4,
            "calls6": len(re.findall(r"\smultic_hook6 <-", trace)),
            "calls4": len(re.findall(r"\smultic_hook <-", trace)),
            "fragments": fragments_seen(recv1) - frags,
        }

    f["with_entries"] = observe("with")
    clients[recv1.name].delete(A6(SENDER6), PORT)
    f["one_deleted"] = observe("one")
    for h in receivers[1:]:
        clients[h.name].delete(A6(SENDER6), PORT)
    f["all_deleted"] = observe("none")
    f["entries"] = {n: entries_of(c) for n, c in clients.items()}
    (TRACEFS / "current_tracer").write_text("nop\n")
    f["kernel"] = os.uname().release

with facts.step("unload") as f:
    for c in clients.values():
        c.clear()
        c.close()
    server.clear()
    server.close()
    sh("rmmod multis")
    sh("rmmod multic")
    f["ok"] = True

print("guest: done", flush=True)
