"""Guest side of tests/vm/test_fuzz.py and `make fuzz`: both families fuzzed under traffic.

On the simulated VPC the sender fans 239.1.1.1 out to recv1 and recv2, and a
thread keeps sending to it while the fuzzer (tests/vm/guest/nlfuzz.py) sends
N messages to multis in the sender's namespace and N to multic in recv1's;
every 500 messages the traffic's group and entry are configured again (the
fuzzer's own CLEARs and DELs remove them).  Then the same as nobody (a forked
child, setuid 65534), dumps interleaved with changes, and frames the kernel
may ignore.  Afterwards the modules must still work: a clean configuration
delivers every datagram, and the listings agree with each other.

Arguments: N (messages per family, as root), SEED, N_USER (as nobody).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.vm.guest import nlfuzz
from tests.vm.guest.facts import Facts
from tests.vm.guest.installed import exchange
from tests.vm.guest.vpc import Sender, build_vpc, insmod, payloads, sh

REPO = Path(__file__).resolve().parents[3]
N, SEED, N_USER = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
GROUP, PORT = "239.1.1.1", 5000
TIMEOUT = 20.0  # seconds of silence before a message counts as unanswered (TCG is slow)

facts = Facts()
print(f"fuzz: seed {SEED}, {N} messages per family as root, {N_USER} as nobody", flush=True)
insmod(REPO / "kernel" / "multis" / "multis.ko")
insmod(REPO / "kernel" / "multic" / "multic.ko")
vpc = build_vpc(receivers=2)
sender = vpc.sender
recv1, recv2 = vpc.receivers


def configure() -> None:
    """The traffic's group and entries, through multicast_admin's netlink API (a CLI
    process costs seconds under TCG: the CLI's encoding is the same code)."""
    from ipaddress import IPv4Address

    from multicast_admin.netlink import MulticNetlink, MultisNetlink

    with sender.inside(), MultisNetlink.open() as nl:
        nl.clear()
        nl.join(IPv4Address(GROUP), [IPv4Address(h.addr) for h in vpc.receivers])
    for host in vpc.receivers:
        with host.inside(), MulticNetlink.open() as nl:
            nl.clear()
            nl.add(IPv4Address(sender.addr), PORT, IPv4Address(GROUP))


def open_family(host, name: str) -> tuple[nlfuzz.Family, object]:
    with host.inside():
        sock = nlfuzz.nl_socket()
    return nlfuzz.Family(name, nlfuzz.family_id(sock, name)), sock


configure()
# resolve ARP before counting anything
exchange(sender, vpc.receivers, GROUP, PORT, 3)


class Traffic(threading.Thread):
    """Datagrams to the group, one every 5 ms, until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        tx = Sender(sender, sport=40001)
        data = payloads("fuzz", 1, 200)[0]
        while not self.stop.is_set():
            tx.sock.sendto(data, (GROUP, PORT))
            self.sent += 1
            time.sleep(0.005)
        tx.close()


multis, s_sock = open_family(sender, "multis")
multic, c_sock = open_family(recv1, "multic")


def reconfigure(family: nlfuzz.Family, sock, body: bytes):
    def change(i: int) -> None:
        seq = 0x5000_0000 + i
        sock.send(nlfuzz.nlmsg(family.fid, nlfuzz.NLM_F_REQUEST | nlfuzz.NLM_F_ACK, seq, body))
        nlfuzz.answer(sock, seq, TIMEOUT)

    return change


def join_body() -> bytes:
    from ipaddress import IPv4Address

    from multicast_admin import memberarray, uapi

    members = [IPv4Address(h.addr) for h in vpc.receivers]
    return nlfuzz.genl(
        multis,
        uapi.MULTIS_CMD_JOIN,
        [("MULTIS_A_GROUP_ADDR", GROUP), ("MULTIS_A_MEMBERS", memberarray.encode(members))],
    )


def add_body() -> bytes:
    from multicast_admin import uapi

    return nlfuzz.genl(
        multic,
        uapi.MULTIC_CMD_ADD,
        [
            ("MULTIC_A_SERVER_ADDR", sender.addr),
            ("MULTIC_A_PORT", PORT),
            ("MULTIC_A_GROUP_ADDR", GROUP),
            ("MULTIC_A_ENTRY_FLAGS", 0),
        ],
    )


traffic = Traffic()
traffic.start()

with facts.step("root") as f:
    f["seed"] = SEED
    for family, sock, body in ((multis, s_sock, join_body()), (multic, c_sock, add_body())):
        fuzzer = nlfuzz.Fuzzer(SEED, family)
        f[family.name] = nlfuzz.run_family(
            sock, fuzzer, N, TIMEOUT, change=reconfigure(family, sock, body)
        )
        print(json.dumps(f[family.name]), flush=True)

with facts.step("interleaved") as f:
    rng = random.Random(f"{SEED}:interleaved")
    for family, host in ((multis, sender), (multic, recv1)):
        with host.inside():
            dumper, changer = nlfuzz.nl_socket(1 << 16), nlfuzz.nl_socket()
        f[family.name] = nlfuzz.interleaved(dumper, changer, family, rng, 40, TIMEOUT)
        dumper.close()
        changer.close()

with facts.step("ignored_frames") as f:
    rng = random.Random(f"{SEED}:frames")
    for family, sock in ((multis, s_sock), (multic, c_sock)):
        f[family.name] = nlfuzz.ignored_frames(sock, family, rng, 50)

with facts.step("unprivileged") as f:
    socks = []
    for family, host in ((multis, sender), (multic, recv1)):
        with host.inside():
            socks.append((family, nlfuzz.nl_socket()))
    rfd, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nobody, with the sockets of the sender's and recv1's namespaces
        os.close(rfd)
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            result: dict = {"uid": os.getuid()}
            for family, sock in socks:
                fuzzer = nlfuzz.Fuzzer(SEED + 1, family)
                result[family.name] = nlfuzz.run_family(sock, fuzzer, N_USER, TIMEOUT)
            code = 0
        except BaseException as err:  # noqa: BLE001 - reported through the pipe
            result = {"error": repr(err)}
        os.write(wfd, json.dumps(result).encode())
        os._exit(code)
    os.close(wfd)
    with os.fdopen(rfd) as pipe:
        text = pipe.read()
    _pid, status = os.waitpid(pid, 0)
    for _family, sock in socks:
        sock.close()
    f["status"] = status
    f.update(json.loads(text))

traffic.stop.set()
traffic.join()

with facts.step("after") as f:
    f["traffic_sent"] = traffic.sent
    # the traffic's datagrams (and whatever else) drained, then a clean start
    configure()  # -C, then the group and the entries again
    f["received"] = exchange(sender, vpc.receivers, GROUP, PORT, 20)
    from ipaddress import IPv4Address

    from multicast_admin.netlink import MulticNetlink, MultisNetlink

    with sender.inside(), MultisNetlink.open() as nl:
        groups = nl.groups()
        f["groups"] = [str(g.address) for g in groups]
        f["member_counts"] = {str(g.address): g.member_count for g in groups}
        f["members"] = {
            str(g.address): sorted(str(m.address) for m in nl.members(g.address)) for g in groups
        }
        f["group_count"] = nl.stats().group_count
        f["group_packets"] = nl.get_group(IPv4Address(GROUP)).stats.packets
    with recv1.inside(), MulticNetlink.open() as nl:
        entries = nl.entries()
        f["entries"] = [f"{e.server}:{e.port}>{e.group}" for e in entries]
        f["entry_count"] = nl.stats().entry_count
    f["live_stats"] = {
        m: int(Path(f"/sys/module/{m}/parameters/live_stats").read_text())
        for m in ("multis", "multic")
    }
    sh("rmmod multic")
    sh("rmmod multis")
    f["unloaded"] = True

print("guest: done", flush=True)
