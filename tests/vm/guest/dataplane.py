"""Guest side of tests/vm/test_dataplane.py: the modules on a simulated VPC.

Every step records what it observed; the host asserts.  The steps run in
order on one VM boot and build on each other (modules loaded, then
configured, then traffic, then limits, then unloading under traffic).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin import uapi
from multicast_admin.errors import MulticastProxyError
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.uapi import MULTIS_GROUP_F_BROADCAST as GROUP_F_BROADCAST
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import (
    VRRP_GROUP,
    PortCapture,
    Receiver,
    Sender,
    build_vpc,
    insmod,
    payloads,
    sh,
    vrrp_exchange,
)

REPO = Path(__file__).resolve().parents[3]
MULTIS_KO = REPO / "kernel" / "multis" / "multis.ko"
MULTIC_KO = REPO / "kernel" / "multic" / "multic.ko"

G1, G2, G3 = "239.1.1.1", "239.2.2.2", "239.3.3.3"
PORT = 5000
COUNT = 20

facts = Facts()
vpc = build_vpc(receivers=3)
sender_host = vpc.sender
receivers = vpc.receivers
A = IPv4Address


def ip(address: str) -> IPv4Address:
    return IPv4Address(address)


def multis() -> MultisNetlink:
    with sender_host.inside():
        return MultisNetlink.open()


def multic(host) -> MulticNetlink:
    with host.inside():
        return MulticNetlink.open()


def error_of(call) -> dict:
    """Run ``call``; what it raised (kind, errno, message), or {"ok": True}."""
    try:
        call()
    except MulticastProxyError as err:
        return {
            "kind": type(err).__name__,
            "errno": err.errno,
            "message": str(err),
            # the kernel's own words (None: the message is the Python layer's)
            "extack": err.extack,
        }
    return {"ok": True}


def exchange(group: str, port: int, data: list[bytes], bind_group: bool = True) -> dict:
    """Send ``data`` from the sender to group:port; what each receiver got."""
    socks = [Receiver(h, group, port, bind_group) for h in receivers]
    tx = Sender(sender_host)
    try:
        tx.send(group, port, data)
        out = {}
        for rx in socks:
            got = rx.drain()
            out[rx.host.name] = {
                "count": len(got),
                # UDP does not promise order (veth backlogs are per CPU and
                # the sender may migrate): the same datagrams, byte for byte.
                "intact": sorted(d.payload for d in got) == sorted(data),
                "sources": sorted({f"{d.source[0]}:{d.source[1]}" for d in got}),
                "destinations": sorted({d.destination for d in got}),
                "sizes": sorted({len(d.payload) for d in got}),
            }
        out["source"] = f"{tx.source[0]}:{tx.source[1]}"
        return out
    finally:
        tx.close()
        for rx in socks:
            rx.close()


def counters_json(stats) -> dict:
    return stats.to_json()


def rmmod(name: str) -> None:
    sh(f"rmmod {name}")


# --------------------------------------------------------------------------- steps

with facts.step("baseline") as f:
    # no modules: the switch drops multicast, nobody receives anything
    with vpc.frames_seen() as seen:
        f["received"] = exchange(G1, PORT, payloads("base", COUNT))
    f["switch"] = seen
    f["module_missing"] = error_of(multis)

with facts.step("load") as f:
    insmod(MULTIS_KO)
    insmod(MULTIC_KO)
    f["lsmod"] = sh("lsmod | grep -E '^multi[sc] ' | cut -d' ' -f1").split()
    f["params"] = {
        name: Path(f"/sys/module/{mod}/parameters/{name}").read_text().strip()
        for mod in ("multis",)
        for name in ("max_groups", "max_members")
    }
    f["client_max_groups"] = Path("/sys/module/multic/parameters/max_groups").read_text().strip()

server = multis()
clients = {h.name: multic(h) for h in receivers}

with facts.step("configure") as f:
    server.join(ip(G1), [ip(h.addr) for h in receivers])
    server.join(ip(G2), [ip(h.addr) for h in receivers])
    for client in clients.values():
        client.add(ip(sender_host.addr), PORT, ip(G1))
        client.add(ip(sender_host.addr), 0, ip(G2))  # any port
    f["groups"] = sorted(str(g.address) for g in server.groups())
    f["members"] = sorted(str(m.address) for m in server.members(ip(G1)))
    f["entries"] = {
        name: sorted(f"{e.server}:{e.port}>{e.group}" for e in c.entries())
        for name, c in clients.items()
    }

with facts.step("delivery") as f:
    server.reset_stats()
    for c in clients.values():
        c.reset_stats()
    data = payloads("g1", COUNT, 200)
    with vpc.frames_seen() as seen:
        f["received"] = exchange(G1, PORT, data)
    f["switch"] = seen  # the originals still leave the sender, next to the copies
    f["sent_bytes_ip"] = sum(len(p) + 28 for p in data)
    group = server.get_group(ip(G1))
    f["group_stats"] = counters_json(group.stats)
    f["member_stats"] = {str(m.address): m.stats.member_json() for m in server.members(ip(G1))}
    f["server_totals"] = server.stats().to_json()
    f["client_entry_stats"] = {
        name: c.get_entry(ip(sender_host.addr), PORT).stats.entry_json()
        for name, c in clients.items()
    }
    f["client_totals"] = {name: c.stats().to_json() for name, c in clients.items()}

with facts.step("any_port") as f:
    f["port_6000"] = exchange(G2, 6000, payloads("g2a", 5))
    f["port_6001"] = exchange(G2, 6001, payloads("g2b", 5))

with facts.step("untouched") as f:
    # a group nobody configured still hits the switch's drop rule
    with vpc.frames_seen() as seen:
        f["other_group"] = exchange(G3, PORT, payloads("g3", 5))
    f["other_group_switch"] = seen
    # ordinary unicast from the sender to a receiver's own address and a
    # configured port is not rewritten (no marker)
    host = receivers[0]
    with host.inside():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind((host.addr, PORT))
    rx.settimeout(3)
    with sender_host.inside():
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.sendto(b"plain unicast", (host.addr, PORT))
    data, src = rx.recvfrom(2048)
    f["unicast"] = {"payload": data.decode(), "source": src[0]}
    rx.close()
    tx.close()

with facts.step("big_datagram") as f:
    data = payloads("big", 3, 4000)
    f["received"] = exchange(G1, PORT, data)

with facts.step("udp_gso") as f:
    # one sendmsg, three 1000-byte segments: UDP_SEGMENT (GSO) skbs at LOCAL_OUT
    socks = [Receiver(h, G1, PORT) for h in receivers]
    with sender_host.inside():
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(sender_host.addr))
    tx.setsockopt(socket.SOL_UDP, 103, 1000)  # UDP_SEGMENT
    blob = b"".join(payloads("gso", 3, 1000))
    tx.sendto(blob, (G1, PORT))
    tx.close()
    f["received"] = {rx.host.name: [len(d.payload) for d in rx.drain()] for rx in socks}
    for rx in socks:
        rx.close()

with facts.step("no_checksum") as f:
    # UDP checksum 0 (SO_NO_CHECK): must stay 0 and still be delivered.  The
    # copies are caught on the wire, on the switch's port towards recv1.
    socks = [Receiver(h, G1, PORT) for h in receivers]
    wire = PortCapture(vpc, receivers[0])
    tx = Sender(sender_host, sport=40001)
    tx.sock.setsockopt(socket.SOL_SOCKET, 11, 1)  # SO_NO_CHECK
    data = payloads("nocsum", 5)
    tx.send(G1, PORT, data)
    f["received"] = {
        rx.host.name: sorted(d.payload for d in rx.drain()) == sorted(data) for rx in socks
    }
    f["on_the_wire"] = [frame for frame in wire.udp() if frame["sport"] == 40001]
    wire.close()
    tx.close()
    for rx in socks:
        rx.close()

BROADCASTS = {"255.255.255.255": 7000, "10.0.0.255": 7001}  # group: port


with facts.step("broadcast_and_vrrp") as f:
    members = [ip(h.addr) for h in receivers]
    # Without the proxy the switch drops broadcasts too.
    with vpc.frames_seen() as seen:
        f["broadcast_baseline"] = exchange("255.255.255.255", 7000, payloads("bb", 3))
    f["broadcast_baseline_switch"] = seen
    # multic refuses a group that is not multicast without the broadcast flag
    # (the Python API sets it only after the domain checks asked for it).
    f["client_flag_missing"] = error_of(
        lambda: clients["recv1"]._do(
            uapi.MULTIC_CMD_ADD,
            [
                ("MULTIC_A_SERVER_ADDR", sender_host.addr),
                ("MULTIC_A_PORT", 7001),
                ("MULTIC_A_GROUP_ADDR", "10.0.0.255"),
            ],
            "adding",
        )
    )
    for group, port in BROADCASTS.items():
        server.join(ip(group), members, flags=GROUP_F_BROADCAST)
        for c in clients.values():
            c.add(ip(sender_host.addr), port, ip(group))
    f["client_entries"] = {
        name: sorted(f"{e.port}>{e.group}:{e.broadcast}" for e in c.entries() if e.port >= 7000)
        for name, c in clients.items()
    }
    f["broadcast"] = {
        group: exchange(group, port, payloads(f"b{port}", 5)) for group, port in BROADCASTS.items()
    }
    # A broadcast group that is not a broadcast address of the receiver's
    # subnet: the copy is left alone (counted "not local"), never routed on.
    recv1 = clients["recv1"]
    recv1.add(ip(sender_host.addr), 7001, ip("10.0.1.255"), replace=True)
    before = recv1.get_entry(ip(sender_host.addr), 7001).stats.entry_json()
    f["foreign_broadcast"] = exchange("10.0.0.255", 7001, payloads("fb", 5))
    after = recv1.get_entry(ip(sender_host.addr), 7001).stats.entry_json()
    f["foreign_broadcast_entry"] = {key: after[key] - before[key] for key in after}
    # VRRP: the any-port entries (sender, 0) are the key VRRP is looked up
    # with, so they move to the VRRP group for this part.
    server.join(ip(VRRP_GROUP), members, flags=uapi.MULTIS_GROUP_F_VRRP)
    for c in clients.values():
        c.add(ip(sender_host.addr), 0, ip(VRRP_GROUP), replace=True)
    vrrp_data = payloads("vrrp", 5, 20)
    f["vrrp"] = vrrp_exchange(sender_host, receivers, vrrp_data)
    f["vrrp_group_stats"] = server.get_group(ip(VRRP_GROUP)).stats.to_json()
    # back to the configuration the later steps expect
    for c in clients.values():
        c.add(ip(sender_host.addr), 0, ip(G2), replace=True)
        for port in BROADCASTS.values():
            c.delete(ip(sender_host.addr), port)
    for group in (*BROADCASTS, VRRP_GROUP):
        server.delete_group(ip(group))

with facts.step("bad_members") as f:
    f["group_itself"] = error_of(lambda: server.join(ip(G1), [ip(G1)]))
    f["another_group"] = error_of(lambda: server.join(ip(G1), [ip(G2)]))
    # a broadcast group (explicitly asked for) can never be a member, and a
    # member can never become a group
    f["broadcast_group"] = error_of(
        lambda: server.join(ip("10.0.0.255"), [ip("10.0.0.11")], flags=GROUP_F_BROADCAST)
    )
    f["member_is_broadcast_group"] = error_of(lambda: server.join(ip(G1), [ip("10.0.0.255")]))
    f["group_is_member"] = error_of(
        lambda: server.join(ip("10.0.0.12"), [], flags=GROUP_F_BROADCAST)
    )
    f["multicast"] = error_of(lambda: server.join(ip(G1), [ip("224.5.5.5")]))
    f["loopback"] = error_of(lambda: server.join(ip(G1), [ip("127.0.0.1")]))
    f["unspecified"] = error_of(lambda: server.join(ip(G1), [ip("0.0.0.0")]))
    f["broadcast_member"] = error_of(lambda: server.join(ip(G1), [ip("255.255.255.255")]))
    f["mixed_batch"] = error_of(lambda: server.join(ip(G1), [ip("10.0.0.50"), ip("127.0.0.2")]))
    f["members_after"] = sorted(str(m.address) for m in server.members(ip(G1)))
    server.delete_group(ip("10.0.0.255"))
    f["group_not_multicast"] = error_of(lambda: server.join(ip("10.1.1.1"), []))
    f["quit_unknown_member"] = error_of(lambda: server.quit(ip(G1), [ip("10.0.0.99")]))
    f["delete_unknown_group"] = error_of(lambda: server.delete_group(ip("239.9.9.9")))

with facts.step("no_route") as f:
    # a member without a route must not hurt the others
    server.join(ip(G1), [ip("10.9.9.9")])
    server.reset_stats()
    data = payloads("noroute", 5)
    f["received"] = exchange(G1, PORT, data)
    f["member_stats"] = {str(m.address): m.stats.member_json() for m in server.members(ip(G1))}
    server.quit(ip(G1), [ip("10.9.9.9")])

with facts.step("unprivileged") as f:
    code = (
        f"import sys; sys.path.insert(0, {str(REPO)!r})\n"
        "from ipaddress import IPv4Address as A\n"
        "from multicast_admin.netlink import MultisNetlink, MulticNetlink\n"
        "from multicast_admin.errors import MulticastProxyError\n"
        "out = []\n"
        "s = MultisNetlink.open()\n"
        "out.append(len(s.groups()))\n"
        "for call in (lambda: s.join(A('239.7.7.7'), [A('10.0.0.11')]), s.clear,\n"
        "             lambda: s.delete_group(A('239.1.1.1')), s.reset_stats):\n"
        "    try:\n"
        "        call(); out.append('allowed')\n"
        "    except MulticastProxyError as e:\n"
        "        out.append(e.errno)\n"
        "c = MulticNetlink.open()\n"
        "for call in (lambda: c.add(A('10.0.0.1'), 9, A('239.7.7.7')), c.clear):\n"
        "    try:\n"
        "        call(); out.append('allowed')\n"
        "    except MulticastProxyError as e:\n"
        "        out.append(e.errno)\n"
        "print(out)\n"
    )
    proc = subprocess.run(
        [
            "ip",
            "netns",
            "exec",
            sender_host.name,
            "setpriv",
            "--reuid=nobody",
            "--regid=nogroup",
            "--clear-groups",
            "--inh-caps=-all",
            sys.executable,
            "-c",
            code,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": "/tmp"},
    )
    f["stdout"] = proc.stdout.strip()
    f["stderr"] = proc.stderr.strip()[-2000:]
    f["groups_after"] = sorted(str(g.address) for g in server.groups())

with facts.step("group_limit") as f:
    server.clear()
    results = [error_of(lambda i=i: server.join(ip(f"239.10.0.{i}"), [])) for i in range(1, 12)]
    f["accepted"] = sum(1 for r in results if r.get("ok"))
    f["eleventh"] = results[10]
    f["group_count"] = server.stats().group_count

with facts.step("member_limit") as f:
    server.clear()
    members = [ip(f"10.1.{i // 250}.{i % 250 + 1}") for i in range(129)]
    f["first_128"] = error_of(lambda: server.join(ip(G1), members[:128]))
    f["the_129th"] = error_of(lambda: server.join(ip(G1), members[128:]))
    f["count"] = len(server.members(ip(G1)))
    f["client_results"] = []
    client = clients[receivers[0].name]
    client.clear()
    for i in range(1, 12):
        f["client_results"].append(
            error_of(lambda i=i: client.add(ip(f"10.0.0.{i + 100}"), 5000, ip(f"239.20.0.{i}")))
        )
    f["client_entries"] = len(client.entries())

with facts.step("raised_limits") as f:
    server.close()
    for c in clients.values():
        c.close()
    rmmod("multis")
    rmmod("multic")
    insmod(MULTIS_KO, "max_groups=64", "max_members=5000")
    insmod(MULTIC_KO, "max_groups=40")
    server = multis()
    clients = {h.name: multic(h) for h in receivers}
    for i in range(1, 21):
        server.join(ip(f"239.10.0.{i}"), [])
    many = [ip(f"10.{2 + i // 60000}.{(i // 250) % 240}.{i % 250 + 1}") for i in range(3000)]
    server.join(ip(G1), many)
    listed = server.members(ip(G1))
    f["groups"] = len(server.groups())
    f["members"] = len(listed)
    f["members_equal"] = sorted(m.address for m in listed) == sorted(many)
    client = clients[receivers[0].name]
    for i in range(1, 31):
        client.add(ip(f"10.0.0.{i + 100}"), 5000, ip(f"239.20.0.{i}"))
    f["client_entries"] = len(client.entries())
    server.clear()


def blast(stop: threading.Event, counter: list[int]) -> None:
    tx = Sender(sender_host, sport=40002)
    try:
        while not stop.is_set():
            try:
                tx.sock.sendto(b"x" * 100, (G1, PORT))
                counter[0] += 1
            except OSError:
                time.sleep(0.001)
    finally:
        tx.close()


UNLOAD_CYCLES = 4


def loaded_and_configured(
    srv: MultisNetlink, cls: dict[str, MulticNetlink]
) -> tuple[MultisNetlink, dict[str, MulticNetlink]]:
    """The modules loaded (again) and configured for G1, and handles to them."""
    if not Path("/sys/module/multis").exists():
        insmod(MULTIS_KO)
        insmod(MULTIC_KO)
        srv = multis()
        cls = {h.name: multic(h) for h in receivers}
    if ip(G1) not in {g.address for g in srv.groups()}:
        srv.join(ip(G1), [ip(h.addr) for h in receivers])
    for c in cls.values():
        if not any(e.group == ip(G1) and e.port == PORT for e in c.entries()):
            c.add(ip(sender_host.addr), PORT, ip(G1))
    return srv, cls


with facts.step("rmmod_under_traffic") as f:
    # Load, configure and unload both modules several times while a thread
    # sends to the group without pause: each unload races the hook against
    # datagrams in flight on the other vCPU.
    socks = [Receiver(h, G1, PORT) for h in receivers]
    stop = threading.Event()
    sent = [0]
    thread = threading.Thread(target=blast, args=(stop, sent))
    thread.start()
    f["cycles"] = []
    try:
        for _ in range(UNLOAD_CYCLES):
            server, clients = loaded_and_configured(server, clients)
            time.sleep(1.0)
            server.close()
            for c in clients.values():
                c.close()
            rmmod("multis")
            rmmod("multic")
            f["cycles"].append(
                {
                    "received": {rx.host.name: len(rx.drain(0.3)) for rx in socks},
                    "lsmod_after": sh("lsmod | grep -cE '^multi[sc] ' || true").strip(),
                }
            )
    finally:
        stop.set()
        thread.join()
        for rx in socks:
            rx.close()
    f["sent"] = sent[0]
    # and back: load, configure, unload again with nothing flowing
    insmod(MULTIS_KO)
    insmod(MULTIC_KO)
    rmmod("multis")
    rmmod("multic")
    f["reload_ok"] = True

print("guest: done", flush=True)
