"""Guest side of tests/vm/test_soak.py and `make soak`: load cycles, namespaces, a dead member.

All of it under traffic: a thread sends a datagram to 239.1.1.1 every 5 ms
from the sender of the simulated VPC, whether the modules are loaded or not.

* ``cycles``: CYCLES times insmod both modules, configure the group and the
  entries, a tagged burst that every receiver must get whole, ``-C`` (clear)
  on every namespace, then each module's ``live_stats`` (its per-CPU counter
  blocks alive) must be back to its value right after insmod, and rmmod
  (which WARNs if any block is left: the harness fails on a WARNING).
* ``namespaces``: NAMESPACES network namespaces created, configured (a group
  with two members behind a dummy device, an entry), sent through (the
  group's counters must show every copy), and deleted with their
  configuration in place; then ``live_stats`` back to its value before.
* ``dead_member``: a group of recv1, 10.0.0.99 (nobody answers its ARP) and
  recv2; the two live members get every datagram, as fast as without it.

Arguments: CYCLES NAMESPACES DATAGRAMS (for the dead member).
"""

from __future__ import annotations

import contextlib
import dataclasses
import select
import socket
import sys
import threading
import time
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin.netlink import MulticNetlink, MultisNetlink
from tests.vm.guest import vpc as vpcmod
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import Receiver, Sender, build_vpc, inside, payloads, sh

REPO = Path(__file__).resolve().parents[3]
KO = {m: REPO / "kernel" / m / f"{m}.ko" for m in ("multis", "multic")}
CYCLES, NAMESPACES, DATAGRAMS = (int(a) for a in sys.argv[1:4])
GROUP, PORT = "239.1.1.1", 5000
DEAD = "10.0.0.99"

facts = Facts()
vpc = build_vpc(receivers=2)
sender = vpc.sender
receivers = vpc.receivers
for dep in ("multis", "multic"):  # their dependencies, once (nf_defrag_ipv4, nf_defrag_ipv6)
    vpcmod.insmod(KO[dep])
sh("rmmod multic multis")


def live() -> dict[str, int]:
    return {m: int(Path(f"/sys/module/{m}/parameters/live_stats").read_text()) for m in KO}


def settle(want: dict[str, int], seconds: float = 30.0) -> dict[str, int]:
    """live_stats once it equals ``want`` (RCU callbacks and netns cleanup are
    asynchronous), or what it is after ``seconds``."""
    deadline = time.monotonic() + seconds
    while (now := live()) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return now


def configure(group: str = GROUP, port: int = PORT, members: list[str] | None = None) -> None:
    members = members or [h.addr for h in receivers]
    with sender.inside(), MultisNetlink.open() as nl:
        nl.join(IPv4Address(group), [IPv4Address(a) for a in members])
    for host in receivers:
        with host.inside(), MulticNetlink.open() as nl:
            nl.add(IPv4Address(sender.addr), port, IPv4Address(group))


def clear_all() -> None:
    for host in [sender, *receivers]:
        with host.inside(), MultisNetlink.open() as nl:
            nl.clear()
        with host.inside(), MulticNetlink.open() as nl:
            nl.clear()


class Traffic(threading.Thread):
    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        tx = Sender(sender, sport=40001)
        data = b"background" * 10
        while not self.stop.is_set():
            tx.sock.sendto(data, (GROUP, PORT))
            self.sent += 1
            time.sleep(0.005)
        tx.close()


rx = {h.name: Receiver(h, GROUP, PORT) for h in receivers}
burst_tx = Sender(sender)


def burst(tag: str, count: int = 10, seconds: float = 10.0) -> dict[str, int]:
    """``count`` tagged datagrams; how many of them each receiver got (intact).

    The background traffic never stops arriving, so each receiver reads until
    it has every tagged datagram, or for ``seconds``."""
    data = payloads(tag, count, 100)
    for r in rx.values():  # the backlog first: a full buffer would drop the burst
        with contextlib.suppress(BlockingIOError):
            while True:
                r.sock.recv(65536)
    burst_tx.send(GROUP, PORT, data)
    want = set(data)
    out = {}
    for name, r in rx.items():
        seen: set[bytes] = set()
        deadline = time.monotonic() + seconds
        while len(seen) < count and time.monotonic() < deadline:
            if select.select([r.sock], [], [], 0.2)[0]:
                with contextlib.suppress(BlockingIOError):
                    while True:
                        payload = r.sock.recv(65536)
                        if payload in want:
                            seen.add(payload)
        out[name] = len(seen)
    return out


traffic = Traffic()
traffic.start()

with facts.step("cycles") as f:
    bad: list[dict] = []
    started = time.monotonic()
    for cycle in range(CYCLES):
        sh(f"insmod {KO['multis']} && insmod {KO['multic']}")
        base = live()
        configure()
        if cycle == 0:  # the first: resolve ARP before counting
            burst("warmup", 2)
        configured = live()
        got = burst(f"cycle{cycle}")
        clear_all()
        cleared = settle(base)
        sh("rmmod multic && rmmod multis")
        record = {"cycle": cycle, "base": base, "configured": configured, "cleared": cleared}
        record["received"] = got
        if cleared != base or set(got.values()) != {10} or configured == base:
            bad.append(record)
        if cycle == 0:
            f["first"] = record
    f["cycles"] = CYCLES
    f["bad"] = bad[:10]
    f["bad_count"] = len(bad)
    f["per_cycle_seconds"] = round((time.monotonic() - started) / max(CYCLES, 1), 2)

sh(f"insmod {KO['multis']} && insmod {KO['multic']}")
loaded = live()
configure()
burst("warmup2", 2)

with facts.step("namespaces") as f:
    before = live()
    bad = []
    started = time.monotonic()
    for i in range(NAMESPACES):
        ns = f"soak{i}"
        sh(f"ip netns add {ns}")
        sh(
            f"ip -n {ns} link set lo up && ip -n {ns} link add d0 type dummy && "
            f"ip -n {ns} addr add 10.9.0.254/24 dev d0 && ip -n {ns} link set d0 up && "
            f"ip -n {ns} route add 224.0.0.0/4 dev d0"
        )
        with inside(ns), MultisNetlink.open() as nl:
            nl.join(IPv4Address(GROUP), [IPv4Address("10.9.0.1"), IPv4Address("10.9.0.2")])
            with inside(ns):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("10.9.0.254", 0))
            s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton("10.9.0.254"))
            for _ in range(5):
                s.sendto(b"ns", (GROUP, PORT))
            s.close()
            packets = nl.get_group(IPv4Address(GROUP)).stats.packets
        with inside(ns), MulticNetlink.open() as nl:
            nl.add(IPv4Address("10.9.0.1"), PORT, IPv4Address(GROUP))
        sh(f"ip netns del {ns}")  # with its configuration in place
        if packets != 10:
            bad.append({"ns": ns, "packets": packets})
    f["namespaces"] = NAMESPACES
    f["bad"] = bad[:10]
    f["per_namespace_seconds"] = round((time.monotonic() - started) / max(NAMESPACES, 1), 2)
    f["before"] = before
    f["after"] = settle(before, 120.0)
    f["received_after"] = burst("after-namespaces")

with facts.step("dead_member") as f:
    dead_group, dead_port = "239.1.1.7", 5007
    clear_all()
    members = [receivers[0].addr, DEAD, receivers[1].addr]
    dead_rx = {h.name: Receiver(h, dead_group, dead_port) for h in receivers}

    def run(tag: str, with_dead: bool) -> dict:
        with sender.inside(), MultisNetlink.open() as nl:
            nl.clear()
            nl.join(
                IPv4Address(dead_group), [IPv4Address(a) for a in members if with_dead or a != DEAD]
            )
        for host in receivers:
            with host.inside(), MulticNetlink.open() as nl:
                nl.clear()
                nl.add(IPv4Address(sender.addr), dead_port, IPv4Address(dead_group))
        data = payloads(tag, DATAGRAMS, 200)
        started = time.monotonic()
        burst_tx.send(dead_group, dead_port, data, gap=0.002)
        sent = time.monotonic() - started
        out: dict = {"send_seconds": round(sent, 2)}
        for name, r in dead_rx.items():
            got = r.drain(settle=1.0)
            out[name] = {
                "count": len(got),
                "intact": sorted(d.payload for d in got) == sorted(data),
            }
        with sender.inside(), MultisNetlink.open() as nl:
            out["members"] = {
                str(m.address): {"packets": m.stats.packets, "drops": dataclasses.asdict(m.stats)}
                for m in nl.members(IPv4Address(dead_group))
            }
        return out

    f["without"] = run("live", False)
    ntable = "ip -s ntable show name arp_cache | grep -E 'res_failed|discards'"
    f["arp_cache_before"] = sender.sh(ntable)
    f["with"] = run("dead", True)
    # the resolution fails 3 unanswered probes (1 s apart) after the first
    # copy: on a fast run that is after the receivers were drained
    waited = time.monotonic()
    while "FAILED" not in sender.sh(f"ip neigh show {DEAD}") and time.monotonic() - waited < 15:
        time.sleep(0.2)
    f["arp_cache_after"] = sender.sh(ntable)
    f["neigh"] = sender.sh(f"ip -s neigh show {DEAD}")

traffic.stop.set()
traffic.join()

with facts.step("end") as f:
    f["traffic_sent"] = traffic.sent
    clear_all()
    f["loaded"] = loaded
    f["live_cleared"] = settle(loaded)
    sh("rmmod multic && rmmod multis")
    f["unloaded"] = True

print("guest: done", flush=True)
