"""``multicast-proxy diagnose``: the troubleshooting table, walked for one group.

A diagnosis is a list of :class:`Finding` s, one per check, in the order an
operator would check by hand (README, "Troubleshooting"); it stops at the
first check that fails, whose finding says what is wrong, in words, and the
command that fixes it.  What the kernel decides (whether a copy could be
routed, was refused by the output path, arrived marked, was addressed to
this host) is read from the kernel's own counters, watched for ``wait``
seconds; no check asks the kernel a question it has already answered.  The
one lookup before any traffic is each member's route, so that a member with
no route is named even when nothing is being sent.

What is not the kernel modules' (routes, IGMP memberships, the firewall's
rules, the datagrams on the wire) comes from :class:`HostProbe`, the one
place that touches the host: tests give a fake one.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from enum import Enum
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from typing import Any, Protocol

from .addresses import parse_ipv4, parse_port
from .client import Client
from .errors import InvalidArgument, ModuleNotLoaded, NotFound
from .models import ClientCounters, Member, ServerCounters
from .server import Server

DEFAULT_WAIT = 3.0
"""Seconds the counters (and, on a receiver, the wire) are watched."""


class Side(Enum):
    """Which host is diagnosed; the values are ``--side``'s."""

    SENDER = "server"
    RECEIVER = "client"


@dataclass(frozen=True)
class Finding:
    """One check: what was checked, whether it passed, the words, and the fix."""

    check: str
    """The check's name (stable, for scripts): module, restored, group, ..."""
    ok: bool
    text: str
    """What was found, in words."""
    fix: str | None = None
    """The command (or step) that fixes it, for a failed check."""

    def to_json(self) -> dict[str, Any]:
        return {"check": self.check, "ok": self.ok, "text": self.text, "fix": self.fix}


@dataclass(frozen=True)
class Diagnosis:
    side: Side
    group: IPv4Address
    findings: tuple[Finding, ...]
    server: IPv4Address | None = None
    port: int | None = None
    wait: float = DEFAULT_WAIT

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    @property
    def problem(self) -> Finding | None:
        return next((f for f in self.findings if not f.ok), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.side.value,
            "group": str(self.group),
            "server": None if self.server is None else str(self.server),
            "port": self.port,
            "wait": self.wait,
            "ok": self.ok,
            "checks": [f.to_json() for f in self.findings],
        }


# --------------------------------------------------------------------------- the host


@dataclass(frozen=True)
class Route:
    """What ``ip route get ADDRESS`` says, or why there is none."""

    interface: str | None = None
    gateway: IPv4Address | None = None
    source: IPv4Address | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def __str__(self) -> str:
        if self.error:
            return self.error
        via = f" via {self.gateway}" if self.gateway else ""
        return f"dev {self.interface}{via}"


@dataclass(frozen=True)
class Seen:
    """A UDP datagram from the server, as it arrived (before multic saw it)."""

    tos: int
    destination: IPv4Address


@dataclass(frozen=True)
class Rule:
    """A firewall rule that drops what matches it (a hint, not a verdict)."""

    where: str
    """``nft: table inet filter, chain input`` or ``iptables: filter OUTPUT``."""
    text: str


class Capture(Protocol):
    def collect(self, seconds: float) -> list[Seen] | None:
        """Wait ``seconds``; the datagrams seen meanwhile (None: capturing was not possible)."""


class HostProbe:
    """The host's side of a diagnosis, in this network namespace."""

    def __init__(self, sys_module: Path = Path("/sys/module")) -> None:
        self.sys_module = sys_module

    def module_loaded(self, name: str) -> bool:
        return (self.sys_module / name).is_dir()

    def route(self, address: IPv4Address) -> Route:
        return self.routes([address])[0]

    def routes(self, addresses: Sequence[IPv4Address]) -> list[Route]:
        """``ip route get`` of each address, over one rtnetlink socket."""
        # the full pyroute2 package: not the lean one the CLIs import (lean.py)
        from pyroute2.iproute.linux import IPRoute  # noqa: PLC0415
        from pyroute2.netlink.exceptions import NetlinkError  # noqa: PLC0415

        names: dict[int, str] = {}
        found = []
        with IPRoute() as ip:
            for address in addresses:
                try:
                    answer = ip.route("get", dst=str(address))[0]
                except NetlinkError as error:
                    found.append(Route(error=os.strerror(error.code)))
                    continue
                oif = answer.get_attr("RTA_OIF")
                if oif is not None and oif not in names:
                    links = ip.link("get", index=oif)
                    names[oif] = links[0].get_attr("IFLA_IFNAME") if links else str(oif)
                gateway = answer.get_attr("RTA_GATEWAY")
                source = answer.get_attr("RTA_PREFSRC")
                found.append(
                    Route(
                        interface=names.get(oif),
                        gateway=IPv4Address(gateway) if gateway else None,
                        source=IPv4Address(source) if source else None,
                    )
                )
        return found

    def joined(self, group: IPv4Address) -> list[str]:
        """The interfaces on which ``group`` is joined (/proc/net/igmp of this namespace)."""
        try:
            text = Path("/proc/net/igmp").read_text()
        except OSError:
            return []
        return igmp_interfaces(text, group)

    def rulesets(self) -> list[tuple[str, str]]:
        """(tool, text) of ``nft list ruleset`` and ``iptables-save``, where they answer."""
        out = []
        for tool, argv in (("nft", ["nft", "list", "ruleset"]), ("iptables", ["iptables-save"])):
            if shutil.which(argv[0]) is None:
                continue
            try:
                proc = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=20)
            except (OSError, subprocess.TimeoutExpired):
                continue
            if proc.returncode == 0:
                out.append((tool, proc.stdout))
        return out

    def capture(self, server: IPv4Address, port: int) -> Capture:
        return PacketCapture(server, port)

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def igmp_interfaces(text: str, group: IPv4Address) -> list[str]:
    """The interfaces /proc/net/igmp lists ``group`` on.

    The kernel prints each group as ``%08X`` of the address in network byte
    order read as a host integer.
    """
    found, device = [], None
    for line in text.splitlines():
        if not line.strip() or line.startswith("Idx"):
            continue
        if not line[0].isspace():
            parts = line.split()
            device = parts[1] if len(parts) > 1 else None
            continue
        word = line.split()[0]
        try:
            value = int(word, 16)
        except ValueError:
            continue
        if IPv4Address(struct.pack("=I", value)) == group and device and device not in found:
            found.append(device)
    return found


ETH_P_IP = 0x0800


class PacketCapture:
    """UDP datagrams from ``server`` to ``port`` (0: any), as they arrive on any interface.

    An AF_PACKET socket sees a frame before netfilter (and multic) do: its
    TOS and destination as the network delivered them.
    """

    def __init__(self, server: IPv4Address, port: int) -> None:
        self.server, self.port = server, port
        try:
            self.sock: socket.socket | None = socket.socket(
                socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP)
            )
        except OSError:  # no CAP_NET_RAW
            self.sock = None
            return
        # Only UDP from the server reaches this process (a busy host's other
        # traffic stays in the kernel); what slips in before is filtered below.
        program = udp_from_filter(server)
        code = ctypes.create_string_buffer(program)
        fprog = struct.pack("HL", len(program) // 8, ctypes.addressof(code))
        with contextlib.suppress(OSError):
            self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)

    def collect(self, seconds: float) -> list[Seen] | None:
        if self.sock is None:
            time.sleep(seconds)
            return None
        seen: list[Seen] = []
        deadline = time.monotonic() + seconds
        source = self.server.packed
        with self.sock:
            self.sock.setblocking(False)
            while (left := deadline - time.monotonic()) > 0:
                if not select.select([self.sock], [], [], left)[0]:
                    continue
                with contextlib.suppress(BlockingIOError):
                    data, address = self.sock.recvfrom(256)
                    if address[2] != socket.PACKET_OUTGOING:
                        found = parse_udp(data, source, self.port)
                        if found is not None:
                            seen.append(found)
        return seen


SO_ATTACH_FILTER = 26


def udp_from_filter(server: IPv4Address) -> bytes:
    """A classic BPF program (for an AF_PACKET SOCK_DGRAM socket: offsets from the
    IP header): accept UDP from ``server``, drop the rest."""
    op = struct.Struct("=HBBI")
    return b"".join(
        (
            op.pack(0x30, 0, 0, 9),  # ldb [9]           protocol
            op.pack(0x15, 0, 3, socket.IPPROTO_UDP),  # jeq #17, -, drop
            op.pack(0x20, 0, 0, 12),  # ld [12]           source address
            op.pack(0x15, 0, 1, int(server)),  # jeq #server, -, drop
            op.pack(0x06, 0, 0, 256),  # ret #256         accept (the headers)
            op.pack(0x06, 0, 0, 0),  # drop:  ret #0
        )
    )


def parse_udp(packet: bytes, source: bytes, port: int) -> Seen | None:
    """The datagram's TOS and destination if ``packet`` is UDP from ``source`` to ``port``."""
    if len(packet) < 20 or packet[0] >> 4 != 4 or packet[9] != socket.IPPROTO_UDP:
        return None
    ihl = (packet[0] & 0xF) * 4
    fragment = struct.unpack("!H", packet[6:8])[0] & 0x1FFF
    if packet[12:16] != source or fragment or len(packet) < ihl + 4:
        return None
    dport = struct.unpack("!H", packet[ihl + 2 : ihl + 4])[0]
    if port and dport != port:
        return None
    return Seen(packet[1], IPv4Address(packet[16:20]))


# --------------------------------------------------------------------------- firewall hints

_ADDRESS = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(/\d{1,2})?(?![\d.])")
_NFT_DROP = re.compile(r"\b(drop|reject)\b")
_IPT_DROP = re.compile(r"-j (DROP|REJECT)\b")


def mentions(line: str, addresses: Iterable[IPv4Address], port: int | None) -> bool:
    """Whether a rule names one of ``addresses`` (or a network holding one) or ``port``."""
    wanted = list(addresses)
    for match in _ADDRESS.finditer(line):
        try:
            network = IPv4Network(match.group(0), strict=False)
        except ValueError:
            continue
        if any(a in network for a in wanted):
            return True
    return bool(port) and re.search(rf"dport {port}\b", line) is not None


def dropping_rules(
    rulesets: Iterable[tuple[str, str]],
    hooks: Iterable[str],
    addresses: Iterable[IPv4Address],
    port: int | None = None,
) -> list[Rule]:
    """The rules, in chains of ``hooks`` (nft hook names: output, input...), that
    drop or reject and name one of ``addresses`` or ``port``."""
    hooks, addresses = set(hooks), list(addresses)
    found = []
    for tool, text in rulesets:
        if tool == "nft":
            table = chain = hook = None
            for raw in text.splitlines():
                line = raw.strip()
                if line.startswith("table "):
                    table, chain, hook = line.removeprefix("table ").rstrip(" {"), None, None
                elif line.startswith("chain "):
                    chain, hook = line.removeprefix("chain ").rstrip(" {"), None
                elif (m := re.search(r"\bhook (\w+)", line)) and line.startswith("type "):
                    hook = m.group(1)
                elif hook in hooks and _NFT_DROP.search(line) and mentions(line, addresses, port):
                    found.append(Rule(f"nft: table {table}, chain {chain}", line))
        else:
            table = None
            chains = {h.upper() for h in hooks}
            for raw in text.splitlines():
                line = raw.strip()
                if line.startswith("*"):
                    table = line[1:]
                elif line.startswith("-A "):
                    chain = line.split()[1]
                    if (
                        chain in chains
                        and _IPT_DROP.search(line)
                        and mentions(line, addresses, port)
                    ):
                        found.append(Rule(f"iptables: table {table}, chain {chain}", line))
    return found


def rule_words(rules: list[Rule]) -> str:
    return "; ".join(f"{r.where}: `{r.text}`" for r in rules)


# --------------------------------------------------------------------------- checks


class _Stop(Exception):
    """A check failed: its finding is the last one."""


class _Walk:
    """The findings so far; ``fail`` ends the walk."""

    def __init__(self) -> None:
        self.findings: list[Finding] = []

    def ok(self, check: str, text: str) -> None:
        self.findings.append(Finding(check, True, text))

    def fail(self, check: str, text: str, fix: str | None) -> None:
        self.findings.append(Finding(check, False, text, fix))
        raise _Stop


def _delta(before: ServerCounters | ClientCounters, after: object) -> dict[str, int]:
    return {f.name: getattr(after, f.name) - getattr(before, f.name) for f in fields(after)}


def _seconds(wait: float) -> str:
    return f"{wait:g} s"


#: Words for each drop counter of multis, as the troubleshooting table has them.
SENDER_DROPS = {
    "drop_no_route": "no route to the member",
    "drop_too_big": "DF set and larger than the MTU towards the member",
    "drop_xmit": "the host's output path (OUTPUT policy, qdisc or device) refused them",
    "drop_nomem": "out of memory",
    "drop_no_member": "the group had no member",
}


@contextlib.contextmanager
def _opened(opener: Callable[[], Any], walk: _Walk, module: str) -> Iterator[Any]:
    try:
        handle = opener()
    except ModuleNotLoaded:
        walk.fail(
            "module",
            f"{module} is loaded (/sys/module/{module}) but its generic netlink family "
            f"{module} does not answer",
            f"service {module} restart",
        )
    with handle:
        yield handle


def _module(walk: _Walk, probe: HostProbe, module: str) -> None:
    if not probe.module_loaded(module):
        walk.fail(
            "module",
            f"the {module} kernel module is not loaded",
            f"service {module} start",
        )


def _restored(walk: _Walk, module: str, restored: bool) -> None:
    if not restored:
        walk.fail(
            "restored",
            f"{module} was loaded without its saved state (not by `service {module} start`): "
            "its configuration is not the saved one, and changes are refused",
            f"service {module} start",
        )
    walk.ok("restored", f"{module} holds its saved state")


def _check_wait(wait: float) -> None:
    if not wait > 0:
        raise InvalidArgument(f"--wait {wait:g}: give a number of seconds above 0")


def diagnose_sender(
    group: str | IPv4Address,
    *,
    wait: float = DEFAULT_WAIT,
    probe: HostProbe | None = None,
    open_server: Callable[[], Server] = Server.open,
) -> Diagnosis:
    """The sending host's checks for ``group`` (multis)."""
    address = parse_ipv4(group, "group")
    _check_wait(wait)
    walk = _SenderWalk(probe or HostProbe(), address, wait)
    with contextlib.suppress(_Stop):
        _module(walk, walk.probe, "multis")
        with _opened(open_server, walk, "multis") as server:
            walk.ok("module", "multis is loaded")
            _restored(walk, "multis", server.stats().restored)
            walk.run(server)
    return Diagnosis(Side.SENDER, address, tuple(walk.findings), wait=wait)


class _SenderWalk(_Walk):
    def __init__(self, probe: HostProbe, group: IPv4Address, wait: float) -> None:
        super().__init__()
        self.probe, self.group, self.wait = probe, group, wait

    def run(self, server: Server) -> None:
        group = self.group
        join = f"multis_admin -A -m {group} -j MEMBER[,MEMBER...]"
        try:
            before = server.group(group)
        except NotFound:
            self.fail("group", f"group {group} is not configured", join)
        self.ok("group", f"group {group} is configured")
        if before.member_count == 0:
            self.fail("members", f"group {group} has no member", join)
        members = server.members(group)
        listed = ", ".join(str(m.address) for m in members)
        self.ok("members", f"{len(members)} member(s): {listed}")

        for member, route in zip(members, self.probe.routes([m.address for m in members])):
            if not route.ok:
                self.fail(
                    "routes",
                    f"no route to member {member.address} ({route.error}): its copies are dropped",
                    f"ip route add {member.address} via GATEWAY (or remove it: "
                    f"multis_admin -A -m {group} -q {member.address})",
                )
        self.ok("routes", "every member has a route")

        self.probe.sleep(self.wait)
        after = server.group(group)
        moved = _delta(before.stats, after.stats)
        if moved["datagrams"] <= 0:
            self.nothing_sent()
        drops = {name: moved[name] for name in SENDER_DROPS if moved.get(name, 0) > 0}
        if drops:
            self.dropped(server, members, moved, drops)
        self.ok(
            "traffic",
            f"{moved['datagrams']} datagram(s) to {group} in {_seconds(self.wait)}, "
            f"{moved['packets']} copies sent, none dropped",
        )
        self.ok("firewall", "the host's output path let every copy out")

    def nothing_sent(self) -> None:
        group, wait = self.group, _seconds(self.wait)
        rules = dropping_rules(self.probe.rulesets(), ("output",), [group])
        if rules:
            self.fail(
                "traffic",
                f"no datagram to {group} was fanned out in {wait}, and the host "
                f"firewall drops the group before multis sees it: {rule_words(rules)}",
                "delete that rule, or accept UDP to the group before it",
            )
        self.fail(
            "traffic",
            f"no application is sending to {group} (no datagram in {wait}, "
            "from this host's network namespace)",
            f"start the sending application; it must send to {group} from this host "
            f"(`ip route get {group}` shows the interface it leaves by)",
        )

    def dropped(
        self, server: Server, before: list[Member], moved: dict[str, int], drops: dict[str, int]
    ) -> None:
        group = self.group
        worst = max(drops, key=lambda name: drops[name])
        who: list[IPv4Address] = []
        if worst in ServerCounters.MEMBER_FIELDS:
            after = {m.address: m.stats for m in server.members(group)}
            who = [
                m.address
                for m in before
                if m.address in after and getattr(after[m.address], worst) > getattr(m.stats, worst)
            ]
        counts = ", ".join(f"{name} +{count}" for name, count in drops.items())
        text = (
            f"{moved['datagrams']} datagram(s) to {group} sent, but copies are dropped "
            f"({counts}): {SENDER_DROPS[worst]}"
        )
        if who:
            text += f", member(s) {', '.join(str(w) for w in who)}"
        fix = {
            "drop_no_route": "add a route to the member (`ip route get MEMBER` says none)",
            "drop_too_big": "send smaller datagrams, or let the stack fragment (no IP_PMTUDISC_DO)",
            "drop_nomem": "free memory on the host",
            "drop_no_member": f"multis_admin -A -m {group} -j MEMBER[,MEMBER...]",
            "drop_xmit": "accept the copies in the host's OUTPUT policy (`nft list ruleset`)",
        }[worst]
        if worst == "drop_xmit":
            addresses = who or [m.address for m in before]
            rules = dropping_rules(self.probe.rulesets(), ("output", "postrouting"), addresses)
            if rules:
                text += f"; the host firewall drops them: {rule_words(rules)}"
                fix = "delete that rule, or accept UDP to the members before it"
        self.fail("traffic", text, fix)


def diagnose_receiver(
    group: str | IPv4Address,
    server: str | IPv4Address,
    port: int | str,
    *,
    wait: float = DEFAULT_WAIT,
    probe: HostProbe | None = None,
    open_client: Callable[[], Client] = Client.open,
) -> Diagnosis:
    """The receiving host's checks for copies of ``group`` from ``server`` to ``port`` (multic)."""
    address = parse_ipv4(group, "group")
    source = parse_ipv4(server, "server")
    port = parse_port(port)
    _check_wait(wait)
    walk = _ReceiverWalk(probe or HostProbe(), address, source, port, wait)
    with contextlib.suppress(_Stop):
        _module(walk, walk.probe, "multic")
        with _opened(open_client, walk, "multic") as client:
            walk.ok("module", "multic is loaded")
            status = client.stats()
            _restored(walk, "multic", status.restored)
            walk.marker = status.marker_tos
            walk.run(client)
    return Diagnosis(Side.RECEIVER, address, tuple(walk.findings), source, port, wait)


class _ReceiverWalk(_Walk):
    def __init__(
        self, probe: HostProbe, group: IPv4Address, server: IPv4Address, port: int, wait: float
    ) -> None:
        super().__init__()
        self.probe, self.group, self.server, self.port, self.wait = (
            probe, group, server, port, wait,
        )  # fmt: skip
        self.marker = 0
        self.route = Route()

    def run(self, client: Client) -> None:
        group, server, port = self.group, self.server, self.port
        add = f"multic_admin -A -i {server} -p {port} -m {group}"
        entry = None
        for key in dict.fromkeys((port, 0)):
            with contextlib.suppress(NotFound):
                entry = client.entry(server, key)
                break
        if entry is None:
            self.fail("entry", f"no entry for copies from {server} to port {port}", add)
        if entry.group != group:
            self.fail(
                "entry",
                f"copies from {server} to port {entry.port} are restored to "
                f"{entry.group}, not {group}",
                add,
            )
        self.ok("entry", f"copies from {server} to port {entry.port} are restored to {group}")
        self.joined()
        capture = self.probe.capture(server, port)
        seen = capture.collect(self.wait)
        after = client.entry(server, entry.port).stats
        self.traffic(_delta(entry.stats, after), seen)

    def joined(self) -> None:
        group, server = self.group, self.server
        joined = self.probe.joined(group)
        if not joined:
            self.fail(
                "joined",
                f"no application on this host (network namespace) has joined {group}",
                f"start the receiving application; it must join {group} (IP_ADD_MEMBERSHIP)",
            )
        route = self.route = self.probe.route(server)
        if not route.ok:
            self.fail(
                "interface",
                f"no route to the sender {server} ({route.error}): the copies' interface "
                "is unknown and the host cannot answer it",
                f"ip route add {server} via GATEWAY",
            )
        dev = route.interface
        if dev not in joined:
            self.fail(
                "interface",
                f"{group} is joined on {', '.join(joined)}, but copies from {server} arrive "
                f"on {dev}: the application joined on the wrong interface",
                f"make the application join {group} on {dev} (the address of {dev} in "
                f"IP_ADD_MEMBERSHIP; for INADDR_ANY: ip route replace 224.0.0.0/4 dev {dev})",
            )
        self.ok("joined", f"{group} is joined on {dev}, where copies from {server} arrive")

    def traffic(self, moved: dict[str, int], seen: list[Seen] | None) -> None:
        group, server, marker = self.group, self.server, self.marker
        wait = _seconds(self.wait)
        if moved["packets"] > 0:
            self.ok("copies", f"{moved['packets']} copies restored to {group} in {wait}")
            self.ok("marker", f"the copies keep the marker TOS {marker:#04x}")
            self.firewall()
            return
        if moved["not_local"] > 0:
            targets = sorted({str(s.destination) for s in seen or () if s.tos == marker})
            to = f"to {', '.join(targets)} " if targets else ""
            here = self.route.source or "THIS_HOST_ADDRESS"
            self.fail(
                "local",
                f"{moved['not_local']} copies from {server} {to}are addressed to an address "
                "that is not one of this host: multic leaves them alone",
                f"on the sender {server}: multis_admin -A -m {group} -j {here} "
                "(and quit the wrong member)",
            )
        if moved["drop_nomem"] > 0:
            self.fail("copies", f"{moved['drop_nomem']} copies dropped: out of memory", None)
        if seen is None:
            self.fail(
                "copies",
                f"no copy from {server} was restored in {wait} (capturing the wire, to tell "
                "more, needs root)",
                f"on the sender {server}: multicast-proxy diagnose -m {group}",
            )
        self.wire(seen)

    def wire(self, seen: list[Seen]) -> None:
        group, server, port, marker = self.group, self.server, self.port, self.marker
        what = f"datagrams from {server}:* to port {port or 'any'}"
        rewritten = Counter(s.tos for s in seen if s.tos != marker)
        if rewritten:
            tos = ", ".join(f"{t:#04x}" for t in sorted(rewritten))
            self.fail(
                "marker",
                f"the network rewrites the marker: {what} arrive with TOS {tos}, multic "
                f"expects {marker:#04x}",
                "keep DSCP/TOS unchanged between the hosts (the network's QoS policy), or "
                "set the marker_tos module parameter to the same value on both sides",
            )
        if seen:
            self.fail(
                "copies",
                f"{len(seen)} marked {what} arrived but none was restored",
                f"multic_admin -P (and check that -i is the sender's address as this host "
                f"sees it: {server})",
            )
        self.fail(
            "copies",
            f"no {what} arrived in {_seconds(self.wait)}",
            f"on the sender {server}: multicast-proxy diagnose -m {group}; and let UDP to "
            f"port {port or 'the group port'} from {server} through the network "
            "(security group, ACL)",
        )

    def firewall(self) -> None:
        group = self.group
        rules = dropping_rules(self.probe.rulesets(), ("prerouting", "input"), [group], self.port)
        if rules:
            self.fail(
                "firewall",
                f"copies are restored to {group}, but the host firewall drops them: "
                f"{rule_words(rules)}",
                f"delete that rule, or accept UDP to {group} before it",
            )
        self.ok("firewall", f"no host firewall rule drops {group}")
