"""Guest side: a simulated VPC of network namespaces, and real UDP traffic over it.

Runs inside the test VM as root.  One Python process drives every namespace:
``Host.inside()`` switches the calling thread into a namespace with setns(2),
and a socket keeps the namespace it was created in, so sockets of the sender
and of every receiver live side by side in this process (Python under TCG is
slow; forking a new interpreter per host would cost seconds each).

Topology (the "switch" is a bridge in its own namespace whose nft rules drop
IPv4 multicast and broadcast, as a cloud VPC's virtual switch does; ARP
still passes)::

    sender 10.0.0.1 ──┐
    recv1  10.0.0.11 ─┤  vpc: bridge sw0, nft: ip daddr 224.0.0.0/4 drop,
    recv2  10.0.0.12 ─┤       IPv4 to ff:ff:ff:ff:ff:ff drop
    recv3  10.0.0.13 ─┘
"""

from __future__ import annotations

import contextlib
import ctypes
import dataclasses
import os
import select
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from ipaddress import IPv4Address

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

SWITCH_RULES = """
table bridge vpc {
    chain seen {
        type filter hook prerouting priority -10;
        ip protocol igmp counter comment "igmp"
        ip daddr 224.0.0.0/4 ip protocol udp counter comment "udp_multicast"
        ether daddr ff:ff:ff:ff:ff:ff ip protocol udp counter comment "udp_broadcast"
        ip dscp cs7 ip protocol udp counter comment "udp_marked"
    }
    chain drop_mcast {
        type filter hook forward priority 0;
        ip daddr 224.0.0.0/4 counter drop
        ether daddr ff:ff:ff:ff:ff:ff ether type ip counter drop
    }
}
"""
# The "seen" chain counts at the switch's ingress, once per frame whatever
# the number of ports it would be flooded to: UDP to a multicast group (the
# originals), UDP broadcast, UDP marked with the copies' TOS 0xE0 (DSCP
# CS7), and the receivers' IGMP reports apart from all of them.
SWITCH_COUNTERS = ("igmp", "udp_multicast", "udp_broadcast", "udp_marked")


def sh(cmd: str) -> str:
    """Run a shell command; raise with its output when it fails."""
    proc = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd!r} failed ({proc.returncode}): {proc.stdout}{proc.stderr}")
    return proc.stdout


def insmod(path: object, *params: str) -> None:
    """insmod a module of the build tree, after modprobe of the modules it needs."""
    for dep in sh(f"modinfo -F depends {path}").strip().split(","):
        if dep:
            sh(f"modprobe {dep}")
    sh(f"insmod {path} {' '.join(params)}")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """Run the block in network namespace ``netns`` (this thread only)."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        _setns(target)
        yield
    finally:
        _setns(home)
        os.close(target)
        os.close(home)


@dataclasses.dataclass
class Host:
    name: str
    addr: str

    def inside(self) -> contextlib.AbstractContextManager[None]:
        return inside(self.name)

    def sh(self, cmd: str) -> str:
        return sh(f"ip netns exec {self.name} {cmd}")


def named_counters(listing: str) -> dict[str, int]:
    """The packets of each commented counter in an `nft list` listing."""
    return {
        line.split('comment "')[1].split('"')[0]: int(line.split("counter packets")[1].split()[0])
        for line in listing.splitlines()
        if "counter packets" in line and 'comment "' in line
    }


@dataclasses.dataclass
class Vpc:
    sender: Host
    receivers: list[Host]
    switch: str = "vpc"

    def switch_counts(self) -> dict[str, int]:
        """Frames that entered the switch so far, by kind (SWITCH_COUNTERS)."""
        out = sh(f"ip netns exec {self.switch} nft list chain bridge vpc seen")
        counts = named_counters(out)
        if sorted(counts) != sorted(SWITCH_COUNTERS):
            raise RuntimeError(f"expected the counters {SWITCH_COUNTERS} in: {out}")
        return counts

    @contextlib.contextmanager
    def frames_seen(self) -> Iterator[dict[str, int]]:
        """The switch's frames by kind while the block runs (filled in when it ends)."""
        delta: dict[str, int] = {}
        before = self.switch_counts()
        yield delta
        after = self.switch_counts()
        delta.update({name: after[name] - before[name] for name in SWITCH_COUNTERS})


def build_vpc(receivers: int = 3, mtu: int = 1500) -> Vpc:
    """Create the namespaces, the switch and the hosts.  Idempotent per VM run."""
    sw = "vpc"
    sh(f"ip netns add {sw}")
    sh(f"ip -n {sw} link add sw0 type bridge")
    sh(f"ip -n {sw} link set sw0 up")
    sh(f"ip netns exec {sw} nft -f - <<'EOF'\n{SWITCH_RULES}\nEOF")
    hosts = [Host("sender", "10.0.0.1")]
    hosts += [Host(f"recv{i}", f"10.0.0.{10 + i}") for i in range(1, receivers + 1)]
    for host in hosts:
        sh(f"ip netns add {host.name}")
        sh(
            f"ip link add eth0 netns {host.name} mtu {mtu} type veth peer name p-{host.name} "
            f"netns {sw} mtu {mtu}"
        )
        sh(f"ip -n {sw} link set p-{host.name} master sw0 up")
        sh(f"ip -n {host.name} addr add {host.addr}/24 dev eth0")
        sh(f"ip -n {host.name} link set eth0 up")
        # A wrong checksum must be dropped here as on a VPC.  veth hands a
        # CHECKSUM_PARTIAL skb to its peer unverified, so the switch's ports
        # (the wire) run without offload: leaving the switch, every packet
        # gets its checksum computed from what the sender wrote, and the
        # receiving host, without rx offload, verifies it.  The hosts keep tx
        # offload, as a cloud NIC has it: their stack still sends
        # CHECKSUM_PARTIAL and UDP GSO skbs (UDP_SEGMENT needs it).
        sh(f"ip netns exec {sw} ethtool -K p-{host.name} tx off rx off")
        host.sh("ethtool -K eth0 rx off")
        sh(f"ip -n {host.name} link set lo up")
        # what a cloud host's default route gives multicast senders and receivers
        sh(f"ip -n {host.name} route add 224.0.0.0/4 dev eth0")
    return Vpc(hosts[0], hosts[1:], sw)


#: The switch's IPv6 table: a cloud VPC's switch drops IPv6 multicast but
#: neighbour discovery (which it answers itself); ``seen`` counts what enters.
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


def add_ipv6(vpc: Vpc, addresses: dict[str, str]) -> None:
    """IPv6 on the VPC: each host named in ``addresses`` gets its address
    (/64, no DAD) and a route for ff15::/16; the switch drops IPv6 multicast."""
    sh(f"ip netns exec {vpc.switch} nft -f - <<'EOF'\n{SWITCH6_RULES}\nEOF")
    for host in (vpc.sender, *vpc.receivers):
        if host.name in addresses:
            host.sh(f"ip -6 addr add {addresses[host.name]}/64 dev eth0 nodad")
            host.sh("ip -6 route add ff15::/16 dev eth0")


def switch6(vpc: Vpc) -> dict[str, int]:
    """The IPv6 frames that entered the switch so far, by kind (SWITCH6_RULES)."""
    return named_counters(sh(f"ip netns exec {vpc.switch} nft list chain bridge vpc6 seen"))


# --------------------------------------------------------------------------- traffic

IP_PKTINFO = 8
UDP_SEGMENT = 103


@dataclasses.dataclass
class Datagram:
    payload: bytes
    source: tuple[str, int]
    destination: str  # the IP header's destination address as delivered


class Receiver:
    """A UDP socket bound to group:port, joined to the group on eth0 (unless broadcast)."""

    def __init__(self, host: Host, group: str, port: int, bind_group: bool = True) -> None:
        self.host, self.group, self.port = host, group, port
        with host.inside():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.bind((group if bind_group else "", port))
        if IPv4Address(group).is_multicast:  # broadcast needs no joining
            mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton(host.addr))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
        self.sock = sock

    def drain(self, settle: float = 0.5) -> list[Datagram]:
        """Everything received, waiting until nothing arrives for ``settle`` s."""
        got: list[Datagram] = []
        while True:
            ready, _, _ = select.select([self.sock], [], [], settle)
            if not ready:
                return got
            while True:
                try:
                    data, anc, _flags, src = self.sock.recvmsg(65536, 1024)
                except BlockingIOError:
                    break
                dst = ""
                for level, kind, value in anc:
                    if level == socket.IPPROTO_IP and kind == IP_PKTINFO:
                        # struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
                        dst = socket.inet_ntoa(value[8:12])
                got.append(Datagram(data, src, dst))

    def close(self) -> None:
        self.sock.close()


class Sender:
    """A UDP socket of the sending host, multicast TTL 1 like most applications."""

    def __init__(self, host: Host, sport: int = 40000) -> None:
        self.host = host
        with host.inside():
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((host.addr, sport))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(host.addr))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        self.sock = sock
        self.source = (host.addr, sport)

    def send(self, group: str, port: int, payloads: list[bytes], gap: float = 0.0) -> None:
        for payload in payloads:
            self.sock.sendto(payload, (group, port))
            if gap:
                time.sleep(gap)

    def close(self) -> None:
        self.sock.close()


def payloads(tag: str, count: int, size: int = 64) -> list[bytes]:
    """Distinct, recognisable payloads of exactly ``size`` bytes."""
    out = []
    for i in range(count):
        head = f"{tag}:{i}:".encode()
        out.append((head + bytes((i * 7 + j) % 251 for j in range(size)))[:size])
    return out


ETH_P_ALL = 0x0003


class PortCapture:
    """The UDP frames the switch sends out through one host's port, as on the wire.

    A packet socket on the switch's side of the host's veth: it sees each
    frame's bytes as the switch forwards them, before the host's stack has
    looked at (or fixed, or refused) anything.
    """

    def __init__(self, vpc: Vpc, host: Host) -> None:
        with inside(vpc.switch):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        sock.bind((f"p-{host.name}", 0))
        sock.setblocking(False)
        self.sock = sock

    def udp(self, settle: float = 0.5) -> list[dict[str, int | str]]:
        """The UDP frames sent out so far (IP TOS, addresses, ports, UDP checksum field)."""
        frames: list[dict[str, int | str]] = []
        while select.select([self.sock], [], [], settle)[0]:
            while True:
                try:
                    data, addr = self.sock.recvfrom(65536)
                except BlockingIOError:
                    break
                if addr[2] != socket.PACKET_OUTGOING or data[12:14] != b"\x08\x00":
                    continue
                packet = data[14:]
                if packet[9] != socket.IPPROTO_UDP:
                    continue
                ihl = (packet[0] & 0xF) * 4
                sport, dport, _length, checksum = struct.unpack("!HHHH", packet[ihl : ihl + 8])
                frames.append(
                    {
                        "tos": packet[1],
                        "source": socket.inet_ntoa(packet[12:16]),
                        "destination": socket.inet_ntoa(packet[16:20]),
                        "sport": sport,
                        "dport": dport,
                        "checksum": checksum,
                    }
                )
        return frames

    def close(self) -> None:
        self.sock.close()


VRRP_GROUP = "224.0.0.18"
IPPROTO_VRRP = 112


def vrrp_exchange(sender_host: Host, receivers: list[Host], data: list[bytes]) -> dict:
    """VRRP-like raw IP protocol 112 to 224.0.0.18, TTL 255 as VRRP requires;
    what each receiver's raw socket reads (count, payloads, TTLs, addresses)."""
    socks = []
    for host in receivers:
        with host.inside():
            rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
        mreq = socket.inet_aton(VRRP_GROUP) + socket.inet_aton(host.addr)
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
        rx.settimeout(1.0)
        socks.append((host, rx))
    with sender_host.inside():
        tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, IPPROTO_VRRP)
    tx.bind((sender_host.addr, 0))
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 255)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    for payload in data:
        tx.sendto(payload, (VRRP_GROUP, 0))
    tx.close()
    out = {}
    for host, rx in socks:
        got = []
        with contextlib.suppress(TimeoutError):
            while True:
                packet = rx.recv(65536)
                ihl = (packet[0] & 0xF) * 4
                got.append(
                    {
                        "ttl": packet[8],
                        "source": socket.inet_ntoa(packet[12:16]),
                        "destination": socket.inet_ntoa(packet[16:20]),
                        "payload": packet[ihl:],
                    }
                )
        rx.close()
        out[host.name] = {
            "count": len(got),
            "intact": sorted(g["payload"] for g in got) == sorted(data),
            "ttls": sorted({g["ttl"] for g in got}),
            "sources": sorted({g["source"] for g in got}),
            "destinations": sorted({g["destination"] for g in got}),
        }
    return out
