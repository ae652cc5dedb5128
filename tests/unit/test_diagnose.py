"""`multicast-proxy diagnose` against the fake kernels and a fake host.

Each finding's logic: the situation is set up in the fake kernel (counters
that move "while diagnose watches", by the probe's wait) and in the fake host
(routes, IGMP memberships, firewall rules, what the wire carried), and the
diagnosis must stop at the right check with the right words and fix.  The
real kernel and a real network are tests/vm/test_diagnose.py.
"""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from ipaddress import IPv4Address

import pytest
from click.testing import CliRunner
from fakes import FakeMulticKernel, FakeMultisKernel

from multicast_admin import cli_diagnose, cli_proxy, uapi
from multicast_admin.cli_common import Env
from multicast_admin.client import Client
from multicast_admin.diagnose import (
    HostProbe,
    PacketCapture,
    Route,
    Rule,
    Seen,
    diagnose_receiver,
    diagnose_sender,
    dropping_rules,
    igmp_interfaces,
    parse_udp,
)
from multicast_admin.errors import InvalidArgument, ModuleNotLoaded
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.server import Server

G = IPv4Address("239.1.1.1")
S = IPv4Address("10.0.0.1")
M1, M2 = IPv4Address("10.0.0.11"), IPv4Address("10.0.0.12")


class FakeCapture:
    def __init__(self, probe: FakeProbe) -> None:
        self.probe = probe

    def collect(self, seconds: float) -> list[Seen] | None:
        self.probe.sleep(seconds)
        return self.probe.seen


class FakeProbe(HostProbe):
    """The host as a test sets it up; ``traffic`` runs while diagnose watches."""

    def __init__(self) -> None:
        self.loaded = {"multis", "multic"}
        self.route_table: dict[IPv4Address, Route] = {}
        self.memberships: dict[IPv4Address, list[str]] = {}
        self.rules: list[tuple[str, str]] = []
        self.seen: list[Seen] | None = []
        self.traffic: Callable[[], None] = lambda: None
        self.waited: list[float] = []

    def module_loaded(self, name: str) -> bool:
        return name in self.loaded

    def routes(self, addresses) -> list[Route]:
        return [self.route_table.get(a, Route("eth0", source=M1)) for a in addresses]

    def joined(self, group: IPv4Address) -> list[str]:
        return self.memberships.get(group, [])

    def rulesets(self) -> list[tuple[str, str]]:
        return self.rules

    def capture(self, server: IPv4Address, port: int) -> FakeCapture:
        return FakeCapture(self)

    def sleep(self, seconds: float) -> None:
        self.waited.append(seconds)
        self.traffic()


def add(stats: dict, **counts: int) -> None:
    for name, value in counts.items():
        stats[name.upper()] = stats.get(name.upper(), 0) + value


# --------------------------------------------------------------------------- sender


@pytest.fixture
def multis() -> FakeMultisKernel:
    kernel = FakeMultisKernel()
    kernel.set_group(str(G), [str(M1), str(M2)])
    return kernel


@pytest.fixture
def probe() -> FakeProbe:
    return FakeProbe()


def sender(kernel: FakeMultisKernel, probe: FakeProbe, **kwargs):
    return diagnose_sender(
        G, probe=probe, open_server=lambda: Server(MultisNetlink(kernel)), **kwargs
    )


def sending(kernel: FakeMultisKernel, datagrams: int = 5, **member_drops: int) -> Callable:
    """Traffic: ``datagrams`` to G, each copied to both members, except the drops of M2."""

    def run() -> None:
        group = kernel.groups[G]
        dropped = sum(member_drops.values())
        add(group.stats, datagrams=datagrams, packets=2 * datagrams - dropped, **member_drops)
        add(group.member_stats.setdefault(M1, {}), packets=datagrams)
        add(group.member_stats.setdefault(M2, {}), packets=datagrams - dropped, **member_drops)

    return run


def checks(diagnosis) -> list[tuple[str, bool]]:
    return [(f.check, f.ok) for f in diagnosis.findings]


def test_sender_healthy_passes_every_check(multis, probe):
    probe.traffic = sending(multis)
    got = sender(multis, probe, wait=2)
    assert got.ok
    assert checks(got) == [
        ("module", True),
        ("restored", True),
        ("group", True),
        ("members", True),
        ("routes", True),
        ("traffic", True),
        ("firewall", True),
    ]
    assert "5 datagram(s) to 239.1.1.1 in 2 s, 10 copies sent" in got.findings[5].text
    assert probe.waited == [2]


def test_sender_asks_the_kernel_nothing_twice(multis, probe):
    probe.traffic = sending(multis)
    sender(multis, probe)
    asked = [r.cmd for r in multis.requests]
    # stats (restored), the group before, its members, the group after: nothing more
    assert asked == [
        uapi.MULTIS_CMD_GET_STATS,
        uapi.MULTIS_CMD_GET_GROUP,
        uapi.MULTIS_CMD_GET_MEMBERS,
        uapi.MULTIS_CMD_GET_GROUP,
    ]
    assert multis.changes() == []


def test_sender_module_not_loaded(multis, probe):
    probe.loaded = set()
    got = sender(multis, probe)
    assert checks(got) == [("module", False)]
    assert got.problem.text == "the multis kernel module is not loaded"
    assert got.problem.fix == "service multis start"


def test_sender_module_loaded_but_family_missing(probe):
    def unanswered() -> Server:
        raise ModuleNotLoaded("multis")

    got = diagnose_sender(G, probe=probe, open_server=unanswered)
    assert checks(got) == [("module", False)]
    assert "generic netlink family multis does not answer" in got.problem.text
    assert got.problem.fix == "service multis restart"


def test_sender_not_restored(probe):
    kernel = FakeMultisKernel(restored=False)
    got = sender(kernel, probe)
    assert checks(got) == [("module", True), ("restored", False)]
    assert "loaded without its saved state" in got.problem.text
    assert got.problem.fix == "service multis start"


def test_sender_group_not_configured(probe):
    got = sender(FakeMultisKernel(), probe)
    assert checks(got)[-1] == ("group", False)
    assert got.problem.text == "group 239.1.1.1 is not configured"
    assert got.problem.fix == "multis_admin -A -m 239.1.1.1 -j MEMBER[,MEMBER...]"
    assert probe.waited == []  # stopped before watching anything


def test_sender_group_without_members(probe):
    kernel = FakeMultisKernel()
    kernel.set_group(str(G), [])
    got = sender(kernel, probe)
    assert checks(got)[-1] == ("members", False)
    assert got.problem.text == "group 239.1.1.1 has no member"


def test_sender_member_without_route(multis, probe):
    probe.route_table[M2] = Route(error="Network is unreachable")
    got = sender(multis, probe)
    assert checks(got)[-1] == ("routes", False)
    assert got.problem.text == (
        "no route to member 10.0.0.12 (Network is unreachable): its copies are dropped"
    )
    assert "ip route add 10.0.0.12 via GATEWAY" in got.problem.fix
    assert "multis_admin -A -m 239.1.1.1 -q 10.0.0.12" in got.problem.fix


def test_sender_nothing_sending(multis, probe):
    got = sender(multis, probe)
    assert checks(got)[-1] == ("traffic", False)
    assert got.problem.text.startswith("no application is sending to 239.1.1.1")
    assert "start the sending application" in got.problem.fix


def test_sender_nothing_fanned_out_because_output_drops_the_group(multis, probe):
    probe.rules = [("nft", NFT_OUTPUT_GROUP)]
    got = sender(multis, probe)
    assert checks(got)[-1] == ("traffic", False)
    assert "the host firewall drops the group before multis sees it" in got.problem.text
    assert "chain output: `ip daddr 239.1.1.0/24 counter drop`" in got.problem.text


def test_sender_copies_refused_by_output_names_xmit_the_member_and_the_rule(multis, probe):
    probe.traffic = sending(multis, drop_xmit=5)
    probe.rules = [("nft", NFT_OUTPUT_MEMBER)]
    got = sender(multis, probe)
    assert checks(got)[-1] == ("traffic", False)
    text = got.problem.text
    assert "copies are dropped (drop_xmit +5)" in text
    assert "the host's output path (OUTPUT policy, qdisc or device) refused them" in text
    assert "member(s) 10.0.0.12" in text
    assert "nft: table inet host, chain output: `ip daddr 10.0.0.12 udp dport 5000 drop`" in text
    assert got.problem.fix == "delete that rule, or accept UDP to the members before it"


@pytest.mark.parametrize(
    ("reason", "words"),
    [
        ("drop_no_route", "no route to the member"),
        ("drop_too_big", "DF set and larger than the MTU"),
        ("drop_nomem", "out of memory"),
    ],
)
def test_sender_each_drop_reason_is_named(multis, probe, reason, words):
    probe.traffic = sending(multis, **{reason: 2})
    got = sender(multis, probe)
    assert f"({reason} +2): {words}" in got.problem.text
    assert "member(s) 10.0.0.12" in got.problem.text


def test_sender_bad_input_is_refused_before_anything(multis, probe):
    with pytest.raises(InvalidArgument):
        sender(multis, probe, wait=0)
    with pytest.raises(InvalidArgument):
        diagnose_sender("239.1.1", probe=probe)
    assert multis.requests == []


# --------------------------------------------------------------------------- receiver


@pytest.fixture
def multic() -> FakeMulticKernel:
    kernel = FakeMulticKernel()
    kernel.set_entry(str(S), 5000, str(G))
    return kernel


def receiver(kernel: FakeMulticKernel, probe: FakeProbe, port: int = 5000, **kwargs):
    return diagnose_receiver(
        G, S, port, probe=probe, open_client=lambda: Client(MulticNetlink(kernel)), **kwargs
    )


def arriving(kernel: FakeMulticKernel, key=(S, 5000), **counts: int) -> Callable:
    return lambda: add(kernel.entries[key].stats, **counts)


@pytest.fixture
def joined(probe) -> FakeProbe:
    probe.memberships[G] = ["eth0"]
    return probe


def test_receiver_healthy_passes_every_check(multic, joined):
    joined.traffic = arriving(multic, packets=7, bytes=700)
    got = receiver(multic, joined)
    assert got.ok, got.findings
    assert checks(got) == [
        ("module", True),
        ("restored", True),
        ("entry", True),
        ("joined", True),
        ("copies", True),
        ("marker", True),
        ("firewall", True),
    ]
    assert got.findings[4].text == "7 copies restored to 239.1.1.1 in 3 s"


def test_receiver_asks_the_kernel_nothing_twice(multic, joined):
    joined.traffic = arriving(multic, packets=1)
    receiver(multic, joined)
    assert [r.cmd for r in multic.requests] == [
        uapi.MULTIC_CMD_GET_STATS,
        uapi.MULTIC_CMD_GET_ENTRY,
        uapi.MULTIC_CMD_GET_ENTRY,
    ]


def test_receiver_module_not_loaded(multic, probe):
    probe.loaded = {"multis"}
    got = receiver(multic, probe)
    assert checks(got) == [("module", False)]
    assert got.problem.fix == "service multic start"


def test_receiver_entry_missing(probe):
    got = receiver(FakeMulticKernel(), probe)
    assert checks(got)[-1] == ("entry", False)
    assert got.problem.text == "no entry for copies from 10.0.0.1 to port 5000"
    assert got.problem.fix == "multic_admin -A -i 10.0.0.1 -p 5000 -m 239.1.1.1"


def test_receiver_entry_of_another_group(joined):
    kernel = FakeMulticKernel()
    kernel.set_entry(str(S), 5000, "239.9.9.9")
    got = receiver(kernel, joined)
    assert checks(got)[-1] == ("entry", False)
    assert "are restored to 239.9.9.9, not 239.1.1.1" in got.problem.text


def test_receiver_any_port_entry_counts(joined):
    kernel = FakeMulticKernel()
    kernel.set_entry(str(S), 0, str(G))
    joined.traffic = arriving(kernel, key=(S, 0), packets=3)
    got = receiver(kernel, joined)
    assert got.ok, got.findings
    assert "to port 0 are restored" in got.findings[2].text


def test_receiver_application_not_joined(multic, probe):
    got = receiver(multic, probe)
    assert checks(got)[-1] == ("joined", False)
    assert "no application on this host (network namespace) has joined 239.1.1.1" in (
        got.problem.text
    )


def test_receiver_joined_on_the_wrong_interface(multic, probe):
    probe.memberships[G] = ["eth1"]
    got = receiver(multic, probe)
    assert checks(got)[-1] == ("interface", False)
    assert got.problem.text == (
        "239.1.1.1 is joined on eth1, but copies from 10.0.0.1 arrive on eth0: "
        "the application joined on the wrong interface"
    )
    assert "ip route replace 224.0.0.0/4 dev eth0" in got.problem.fix


def test_receiver_marker_rewritten(multic, joined):
    joined.seen = [Seen(0x00, M1), Seen(0x00, M1)]
    got = receiver(multic, joined)
    assert checks(got)[-1] == ("marker", False)
    assert got.problem.text == (
        "the network rewrites the marker: datagrams from 10.0.0.1:* to port 5000 arrive "
        "with TOS 0x00, multic expects 0xe0"
    )


def test_receiver_not_local(multic, joined):
    joined.traffic = arriving(multic, not_local=4)
    joined.seen = [Seen(0xE0, IPv4Address("10.0.0.99"))] * 4
    got = receiver(multic, joined)
    assert checks(got)[-1] == ("local", False)
    assert got.problem.text == (
        "4 copies from 10.0.0.1 to 10.0.0.99 are addressed to an address that is not one "
        "of this host: multic leaves them alone"
    )
    assert "multis_admin -A -m 239.1.1.1 -j 10.0.0.11" in got.problem.fix


def test_receiver_nothing_arrives(multic, joined):
    got = receiver(multic, joined)
    assert checks(got)[-1] == ("copies", False)
    assert got.problem.text == "no datagrams from 10.0.0.1:* to port 5000 arrived in 3 s"
    assert "on the sender 10.0.0.1: multicast-proxy diagnose -m 239.1.1.1" in got.problem.fix


def test_receiver_without_capture_says_so(multic, joined):
    joined.seen = None
    got = receiver(multic, joined)
    assert checks(got)[-1] == ("copies", False)
    assert "needs root" in got.problem.text


def test_receiver_input_firewall_drops_the_group(multic, joined):
    joined.traffic = arriving(multic, packets=2)
    joined.rules = [("iptables", IPTABLES_INPUT)]
    got = receiver(multic, joined)
    assert checks(got)[-1] == ("firewall", False)
    assert "iptables: table filter, chain INPUT: `-A INPUT -d 239.1.1.1/32 -p udp -j DROP`" in (
        got.problem.text
    )


# --------------------------------------------------------------------------- parsers

IGMP = """\
Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter
1\tlo        :     1      V3
\t\t\t\t010000E0     1 0:00000000\t\t0
2\teth0      :     2      V3
\t\t\t\t010101EF     1 0:00000000\t\t0
\t\t\t\t010000E0     1 0:00000000\t\t0
3\tdummy0    :     2      V3
\t\t\t\t010101EF     1 0:00000000\t\t0
"""


def test_igmp_interfaces():
    if sys.byteorder != "little":
        pytest.skip("the sample is a little-endian host's /proc/net/igmp")
    assert igmp_interfaces(IGMP, G) == ["eth0", "dummy0"]
    assert igmp_interfaces(IGMP, IPv4Address("224.0.0.1")) == ["lo", "eth0"]
    assert igmp_interfaces(IGMP, IPv4Address("239.1.1.2")) == []


def packet(tos: int, src: str, dst: str, dport: int, frag: int = 0) -> bytes:
    ip = struct.pack(
        "!BBHHHBBH4s4s", 0x45, tos, 28, 0, frag, 64, socket.IPPROTO_UDP, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )  # fmt: skip
    return ip + struct.pack("!HHHH", 40000, dport, 8, 0)


def test_parse_udp():
    src = S.packed
    assert parse_udp(packet(0xE0, "10.0.0.1", "10.0.0.11", 5000), src, 5000) == Seen(0xE0, M1)
    assert parse_udp(packet(0, "10.0.0.1", "10.0.0.11", 5000), src, 0) == Seen(0, M1)
    assert parse_udp(packet(0, "10.0.0.1", "10.0.0.11", 5001), src, 5000) is None
    assert parse_udp(packet(0, "10.0.0.2", "10.0.0.11", 5000), src, 5000) is None
    assert parse_udp(packet(0, "10.0.0.1", "10.0.0.11", 5000, frag=100), src, 5000) is None
    assert parse_udp(b"\x45\x00", src, 5000) is None


NFT_OUTPUT_MEMBER = """\
table inet host {
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\tip daddr 10.0.0.12 udp dport 5000 drop
\t\tip daddr 10.0.0.121 drop
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy accept;
\t\tip saddr 10.0.0.12 drop
\t}
}
"""
NFT_OUTPUT_GROUP = """\
table ip filter {
\tchain output {
\t\ttype filter hook output priority filter; policy accept;
\t\tip daddr 239.1.1.0/24 counter drop
\t}
}
"""
IPTABLES_INPUT = """\
*filter
:INPUT ACCEPT [0:0]
-A INPUT -d 239.1.1.1/32 -p udp -j DROP
-A INPUT -d 239.1.1.1/32 -p udp -j ACCEPT
-A OUTPUT -d 239.1.1.1/32 -j DROP
COMMIT
"""


def test_dropping_rules_nft():
    found = dropping_rules([("nft", NFT_OUTPUT_MEMBER)], ("output",), [M2])
    # exactly the member, not 10.0.0.121; not the input chain's rule
    assert found == [
        Rule("nft: table inet host, chain output", "ip daddr 10.0.0.12 udp dport 5000 drop")
    ]
    assert dropping_rules([("nft", NFT_OUTPUT_MEMBER)], ("output",), [M1]) == []
    # a network holding the address counts
    assert len(dropping_rules([("nft", NFT_OUTPUT_GROUP)], ("output",), [G])) == 1
    assert dropping_rules([("nft", NFT_OUTPUT_GROUP)], ("input",), [G]) == []


def test_dropping_rules_iptables_and_ports():
    found = dropping_rules([("iptables", IPTABLES_INPUT)], ("input",), [G])
    assert found == [Rule("iptables: table filter, chain INPUT", "-A INPUT -d 239.1.1.1/32 "
                                                                 "-p udp -j DROP")]  # fmt: skip
    by_port = dropping_rules([("nft", NFT_OUTPUT_MEMBER)], ("output",), [M1], port=5000)
    assert [r.text for r in by_port] == ["ip daddr 10.0.0.12 udp dport 5000 drop"]


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_env(multis, multic, monkeypatch) -> tuple[Env, FakeProbe]:
    probe = FakeProbe()
    monkeypatch.setattr(cli_diagnose, "make_probe", lambda: probe)
    env = Env(
        open_server=lambda: Server(MultisNetlink(multis)),
        open_client=lambda: Client(MulticNetlink(multic)),
    )
    return env, probe


def invoke(env: Env, *args: str):
    return CliRunner().invoke(cli_proxy.cli, ["diagnose", *args], obj=env)


def test_cli_sender_passes_with_exit_0(cli_env, multis):
    env, probe = cli_env
    probe.traffic = sending(multis)
    result = invoke(env, "-m", str(G), "--wait", "1")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 8  # one line per passed check and the verdict
    assert lines[0].split() == ["ok", "module", "multis", "is", "loaded"]
    assert lines[-1] == "sender: copies of 239.1.1.1: every check passed"


def test_cli_receiver_is_inferred_from_i_and_p_and_fails_with_exit_1(cli_env):
    env, _probe = cli_env
    result = invoke(env, "-m", str(G), "-i", str(S), "-p", "5000")
    assert result.exit_code == cli_diagnose.PROBLEM_EXIT == 1
    lines = result.output.splitlines()
    assert lines[-2].split()[:2] == ["FAIL", "joined"]
    assert lines[-1].split()[0] == "fix:"
    assert [line.split()[0] for line in lines[:-2]] == ["ok"] * 3


def test_cli_json(cli_env):
    env, _probe = cli_env
    result = invoke(env, "-m", str(G), "-i", str(S), "-p", "5000", "--json")
    assert result.exit_code == 1
    data = json.loads(result.output)
    assert data["version"] == 1
    assert (data["side"], data["group"], data["server"], data["port"]) == (
        "client", "239.1.1.1", "10.0.0.1", 5000,
    )  # fmt: skip
    assert data["ok"] is False
    assert data["checks"][-1] == {
        "check": "joined",
        "ok": False,
        "text": "no application on this host (network namespace) has joined 239.1.1.1",
        "fix": "start the receiving application; it must join 239.1.1.1 (IP_ADD_MEMBERSHIP)",
    }
    assert set(data["checks"][0]) == {"check", "ok", "text", "fix"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-m", "239.1.1.1", "-i", "10.0.0.1"], "needs -i SERVER and -p PORT"),
        (["-m", "239.1.1.1", "--side", "client"], "needs -i SERVER and -p PORT"),
        (["-m", "239.1.1.1", "-p", "5000", "--side", "server"], "not with --side server"),
        (["-m", "239.1.1.1", "--wait", "0"], "--wait 0: give a number of seconds above 0"),
        (["-m", "239.1.1.300"], "239.1.1.300"),
        (["-m", "239.1.1.1", "-i", "10.0.0.1", "-p", "70000"], "70000"),
        ([], "Missing option"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "multicast_admin.cli_proxy", "diagnose", *args],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert proc.stdout == ""


def _packet_socket_allowed() -> bool:
    try:
        socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0).close()
    except (OSError, AttributeError):
        return False
    return True


@pytest.mark.skipif(not _packet_socket_allowed(), reason="AF_PACKET needs CAP_NET_RAW")
def test_packet_capture_on_loopback_sees_the_tos_and_filters_in_the_kernel():
    def send(port: int, tos: int) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as tx:
            tx.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, tos)
            tx.sendto(b"x", ("127.0.0.1", port))

    loopback = IPv4Address("127.0.0.1")
    capture = PacketCapture(loopback, 5999)
    other = PacketCapture(IPv4Address("127.0.0.2"), 0)  # nobody sends from there
    send(5999, 0x20)
    send(6000, 0x20)  # another port: filtered in Python
    assert capture.collect(0.5) == [Seen(0x20, loopback)]
    # the BPF program keeps everything else out of the socket
    other.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        other.sock.recv(256)
    other.sock.close()
