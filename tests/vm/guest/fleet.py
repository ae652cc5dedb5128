"""Guest side of tests/vm/test_fleet.py: a fleet configured by agents and etcd alone.

Arguments: CYCLES (joins and leaves timed for the convergence figure) and
OUTAGE (seconds etcd is down while traffic flows).

The simulated VPC (tests/vm/guest/vpc.py) with a fifth host, ``etcd``
(10.0.0.5), running a real etcd (tests/vm/guest/etcd.py).  The sender and the
three receivers each run ``multicast-proxy agent`` in their namespace, with a
state directory and a run directory of their own (as separate machines
would have: MULTICAST_PROXY_CONFIG_DIR, MULTICAST_PROXY_RUN_DIR).  The only
configuration command is ``multicast-proxy group add``; no multis_admin or
multic_admin runs.  The modules are loaded once for the VM (one kernel for
all hosts), so every agent sees both modules and every host is a sender and a
receiver: each namespace's state is restored first (what ``service multis
start`` / ``service multic start`` do on a real host, here through the
service's own code in this process).  The applications are real sockets of
this process (IP_ADD_MEMBERSHIP on the receivers).  The guest measures;
the host asserts.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.service import ROLES, ConfigStateStore, Kmod, Service
from tests.vm.guest.etcd import GuestEtcd
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import (
    Host,
    PortCapture,
    Receiver,
    Sender,
    add_ipv6,
    build_vpc,
    inside,
    insmod,
    payloads,
    sh,
    switch6,
)

CYCLES = int(sys.argv[1]) if len(sys.argv) > 1 else 10
OUTAGE = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
REPO = Path(__file__).resolve().parents[3]
PYTHON = REPO / ".venv" / "bin" / "python"
KO_DIR = Path(os.environ.get("MULTICAST_PROXY_KO_DIR") or REPO / "kernel")
GROUP, PORT = "239.1.1.1", 5000
GROUP6, PORT6 = "ff15::1:7", 5001  # an IPv6 group, learned from MLD
TTL = 10  # the default: a shorter lease lapses under TCG when the VM is busy
DOMAIN = "vm"
ETCD_ADDR = "10.0.0.5"

facts = Facts()


# --------------------------------------------------------------------------- the VPC


def add_host(name: str, addr: str) -> Host:
    """One more host on the VPC's switch (as build_vpc makes them)."""
    sh(f"ip netns add {name}")
    sh(f"ip link add eth0 netns {name} type veth peer name p-{name} netns vpc")
    sh(f"ip -n vpc link set p-{name} master sw0 up")
    sh(f"ip -n {name} addr add {addr}/24 dev eth0")
    sh(f"ip -n {name} link set eth0 up")
    sh(f"ip -n {name} link set lo up")
    return Host(name, addr)


vpc = build_vpc(receivers=3)
sender_host = vpc.sender
recv1, recv2, recv3 = vpc.receivers
hosts = [sender_host, *vpc.receivers]
ADDR6 = {"sender": "2001:db8::1"}
ADDR6.update({h.name: f"2001:db8::{10 + i}" for i, h in enumerate(vpc.receivers, 1)})
add_ipv6(vpc, ADDR6)
etcd_host = add_host("etcd", ETCD_ADDR)
etcd = GuestEtcd("fleet", ETCD_ADDR, netns="etcd")
ETCD = etcd.url


def state_dir(host: Host) -> Path:
    return Path("/run/fleet") / host.name


def host_env(host: Host) -> dict[str, str]:
    env = dict(os.environ)
    env["MULTICAST_PROXY_CONFIG_DIR"] = str(state_dir(host) / "etc")
    env["MULTICAST_PROXY_RUN_DIR"] = str(state_dir(host) / "run")
    env["MULTICAST_PROXY_AGENT_CONF"] = str(state_dir(host) / "etc" / "agent.conf")
    return env


def cli(host: Host, *args: str) -> dict:
    """``multicast-proxy ARGS`` typed on ``host``."""
    proc = subprocess.run(
        ["nsenter", f"--net=/run/netns/{host.name}", str(PYTHON), "-m",
         "multicast_admin.cli_proxy", *args],
        capture_output=True, text=True, env=host_env(host), check=False,
    )  # fmt: skip
    return {"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr}


class Agent:
    """``multicast-proxy agent`` running on one host."""

    def __init__(self, host: Host) -> None:
        self.host = host
        self.log = state_dir(host) / "agent.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["nsenter", f"--net=/run/netns/{self.host.name}", str(PYTHON), "-m",
                 "multicast_admin.cli_proxy", "agent", "--etcd", ETCD, "--domain", DOMAIN,
                 "--ttl", str(TTL), "--address", self.host.addr,
                 "--address", ADDR6[self.host.name]],
                stdout=log, stderr=log, env=host_env(self.host),
            )  # fmt: skip

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc
        # nsenter execs the agent: its pid is the agent's
        os.kill(self.proc.pid, sig)
        self.proc.wait(timeout=30)

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


# --------------------------------------------------------------------------- observing


def etcd_keys(prefix: str) -> list[str]:
    """The keys under /multicast-proxy/DOMAIN/PREFIX, read over etcd's gateway."""
    import urllib.request

    key = f"/multicast-proxy/{DOMAIN}/{prefix}"
    end = key[:-1] + chr(ord(key[-1]) + 1)
    body = json.dumps(
        {"key": base64.b64encode(key.encode()).decode(),
         "range_end": base64.b64encode(end.encode()).decode(), "keys_only": True}
    ).encode()  # fmt: skip
    with inside("etcd"):
        request = urllib.request.Request(f"{ETCD}/v3/kv/range", data=body, method="POST")
        with urllib.request.urlopen(request, timeout=3) as reply:
            data = json.loads(reply.read())
    return sorted(base64.b64decode(kv["key"]).decode() for kv in data.get("kvs", []))


def members_in_etcd() -> list[str]:
    return [k.rsplit("/", 1)[1] for k in etcd_keys(f"members/{GROUP}/")]


def sender_members() -> list[str]:
    """The sender's multis members of GROUP (what it copies to)."""
    with sender_host.inside(), MultisNetlink.open() as server:
        if not any(str(g.address) == GROUP for g in server.groups()):
            return []
        return sorted(str(m.address) for m in server.members(IPv4Address(GROUP)))


def sender_members6() -> list[str]:
    """The sender's multis members of GROUP6."""
    with sender_host.inside(), MultisNetlink.open() as server:
        if not any(str(g.address) == GROUP6 for g in server.groups()):
            return []
        return sorted(str(m.address) for m in server.members(IPv6Address(GROUP6)))


def entries(host: Host) -> list[str]:
    with host.inside(), MulticNetlink.open() as client:
        return sorted(f"{e.server}:{e.port}>{e.group}" for e in client.entries())


def wait_for(what, want, timeout: float, poll: float = 0.25) -> tuple[bool, float, object]:
    """Poll ``what()`` until it equals ``want``: (reached, seconds, last value)."""
    started = time.monotonic()
    value = None
    while True:
        value = what()
        if value == want:
            return True, round(time.monotonic() - started, 2), value
        if time.monotonic() - started > timeout:
            return False, round(time.monotonic() - started, 2), value
        time.sleep(poll)


def addrs(*hs: Host) -> list[str]:
    return sorted(h.addr for h in hs)


def exchange(tx: Sender, sockets: dict[str, Receiver], tag: str, count: int = 40) -> dict:
    """Send ``count`` datagrams to the group; what each joined receiver got."""
    data = payloads(tag, count, 300)
    tx.send(GROUP, PORT, data, gap=0.005)
    out = {}
    for name, sock in sockets.items():
        got = sock.drain(settle=1.0)
        out[name] = {
            "sent": count,
            "count": len(got),
            "intact": sorted(d.payload for d in got) == sorted(data),
            "sources": sorted({f"{d.source[0]}:{d.source[1]}" for d in got}),
            "destinations": sorted({d.destination for d in got}),
        }
    return out


def take(sock: Receiver) -> list:
    """What ``sock`` holds now, without waiting (drain() waits for a quiet
    moment, which a stream never gives)."""
    return sock.drain(settle=0)


class Stream:
    """The sender's application sending one datagram every ``gap`` s, numbered."""

    def __init__(self, tx: Sender, gap: float = 0.02) -> None:
        self.tx, self.gap = tx, gap
        self.sent: list[bytes] = []
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            payload = f"stream:{n}:".encode().ljust(100, b".")
            self.times.append(time.monotonic())
            self.sent.append(payload)
            self.tx.sock.sendto(payload, (GROUP, PORT))
            n += 1
            time.sleep(self.gap)

    def __enter__(self) -> Stream:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


# --------------------------------------------------------------------------- setup

with facts.step("setup") as f:
    for host in hosts:
        for sub in ("etc", "run"):
            (state_dir(host) / sub).mkdir(parents=True, exist_ok=True)
    etcd.start()
    # one kernel for the whole VPC: the modules once, then each host's
    # namespace restored, as `service multis start` / `service multic start`
    # do at boot (the agent changes nothing in a namespace not restored)
    insmod(KO_DIR / "multis" / "multis.ko")
    insmod(KO_DIR / "multic" / "multic.ko")
    restored = {}
    for host in hosts:
        for name in ("multis", "multic"):
            role = ROLES[name]
            store = ConfigStateStore(role, state_dir(host) / "etc")
            with host.inside():
                service = Service(role, Kmod(), store, ko_dir=KO_DIR, is_root=True)
                restored[f"{host.name}/{name}"] = int(service.run("start"))
    f["restored"] = restored

agents = {h.name: Agent(h) for h in hosts}
tx = Sender(sender_host)

with facts.step("agents") as f:
    # the agents start (Python under TCG: minutes), and meanwhile the one
    # command an operator types
    started = time.monotonic()
    for agent in agents.values():
        agent.start()
    f["add"] = cli(sender_host, "group", "add", GROUP, "--port", str(PORT), "--etcd", ETCD,
                   "--domain", DOMAIN)  # fmt: skip
    # all four registered (their agent keys): the first start under TCG is slow
    f["registered"] = wait_for(
        lambda: [k.rsplit("/", 1)[1] for k in etcd_keys("agents/")], addrs(*hosts), 420, 1.0
    )
    # every receiver's multic has the sender's entry (every host is a source:
    # both modules are loaded for the whole VM)
    want = f"{sender_host.addr}:{PORT}>{GROUP}"
    f["entries"] = {
        h.name: wait_for(lambda h=h: want in entries(h), True, 60, 0.5) for h in vpc.receivers
    }
    f["seconds_to_ready"] = round(time.monotonic() - started, 1)
    f["nothing_before_joins"] = sender_members()

sockets: dict[str, Receiver] = {}

with facts.step("join") as f:
    started = time.monotonic()
    for host in vpc.receivers:
        sockets[host.name] = Receiver(host, GROUP, PORT)
    f["etcd"] = wait_for(members_in_etcd, addrs(*vpc.receivers), 30)
    f["sender"] = wait_for(sender_members, addrs(*vpc.receivers), 30)
    f["converged_seconds"] = round(time.monotonic() - started, 2)
    f["received"] = exchange(tx, sockets, "joined")

with facts.step("leave") as f:
    capture = PortCapture(vpc, recv3)
    started = time.monotonic()
    sockets.pop("recv3").close()  # the application leaves (IGMP leave)
    f["etcd"] = wait_for(members_in_etcd, addrs(recv1, recv2), 30)
    f["sender"] = wait_for(sender_members, addrs(recv1, recv2), 30)
    f["converged_seconds"] = round(time.monotonic() - started, 2)
    capture.udp(settle=0.2)  # forget what went to recv3 before the sender dropped it
    f["received"] = exchange(tx, sockets, "after-leave")
    frames = capture.udp(settle=1.0)
    f["frames_to_recv3"] = [fr for fr in frames if fr["destination"] == recv3.addr]
    capture.close()

with facts.step("kill") as f:
    killed = time.monotonic()
    agents["recv2"].kill()
    f["etcd"] = wait_for(members_in_etcd, addrs(recv1), TTL + 10)
    f["sender"] = wait_for(sender_members, addrs(recv1), TTL + 10)
    f["etcd_seconds"] = f["etcd"][1]
    f["sender_seconds"] = round(time.monotonic() - killed, 2) if f["sender"][0] else None
    f["agents"] = [k.rsplit("/", 1)[1] for k in etcd_keys("agents/")]
    f["ttl"] = TTL
    f["received"] = exchange(tx, {"recv1": sockets["recv1"]}, "after-kill")
    sockets.pop("recv2").close()

with facts.step("outage") as f:
    # etcd goes away (killed, restarted on the same data after OUTAGE s)
    # while the sender streams: recv1 must get every datagram, and recv3's
    # application, joining during the outage, must get copies within 5 s of
    # etcd's return
    recv1_sock = sockets["recv1"]
    got1: list = []
    got3: list = []
    late = None
    with Stream(tx) as stream:
        time.sleep(1.0)
        got1 += take(recv1_sock)
        down = time.monotonic()
        etcd.kill()
        time.sleep(2.0)
        sockets["recv3"] = recv3_sock = Receiver(recv3, GROUP, PORT)
        while time.monotonic() - down < OUTAGE:
            got1 += take(recv1_sock)
            got3 += take(recv3_sock)
            time.sleep(0.05)
        f["sender_during"] = sender_members()
        f["recv3_during"] = len(got3)
        sent_during = len(stream.sent)
        etcd.start()
        back = time.monotonic()
        f["etcd_down_seconds"] = round(back - down, 1)
        while time.monotonic() - back < 15:
            for d in take(recv3_sock):
                got3.append(d)
                if late is None:
                    late = time.monotonic() - back
            got1 += take(recv1_sock)
            time.sleep(0.05)
        time.sleep(0.5)
    got1 += recv1_sock.drain(settle=1.0)
    sent = stream.sent
    received1 = {d.payload for d in got1}
    f["sent"] = len(sent)
    f["sent_during_outage"] = sent_during
    f["recv1_missing"] = [p.split(b":")[1].decode() for p in sent if p not in received1]
    f["recv1_duplicates"] = len(got1) - len(received1)
    f["recv3_first_copy_after_return"] = None if late is None else round(late, 2)
    f["sender_after"] = sender_members()
    f["recv3_received_after"] = len(got3)

with facts.step("convergence") as f:
    # CYCLES times: recv3's application joins, then leaves, while the sender
    # streams; join -> first copy on recv3's wire, leave -> last copy on it
    capture = PortCapture(vpc, recv3)
    sockets.pop("recv3").close()
    wait_for(sender_members, addrs(recv1), 30)
    joins: list[float] = []
    leaves: list[float] = []
    misses = 0
    with Stream(tx, gap=0.02) as stream:
        for _ in range(CYCLES):
            capture.udp(settle=0.3)
            joined = time.monotonic()
            sock = Receiver(recv3, GROUP, PORT)
            first = None
            while first is None and time.monotonic() - joined < 15:
                if take(sock):
                    first = time.monotonic() - joined
                else:
                    time.sleep(0.01)
            if first is None:
                misses += 1
                sock.close()
                continue
            joins.append(first)
            capture.udp(settle=0)
            left = time.monotonic()
            sock.close()
            last = left
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < 2.5 and time.monotonic() - left < 20:
                frames = [fr for fr in capture.udp(settle=0) if fr["destination"] == recv3.addr]
                if frames:
                    last = time.monotonic()
                    quiet_since = last
                time.sleep(0.05)
            leaves.append(last - left)

    def summary(values: list[float]) -> dict:
        if not values:
            return {"n": 0}
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
        return {"n": len(values), "median": round(statistics.median(values), 3),
                "p99": round(p99, 3), "max": round(max(values), 3)}  # fmt: skip

    f["join"] = summary(joins)
    f["leave"] = summary(leaves)
    f["misses"] = misses
    f["cycles"] = CYCLES
    capture.close()

with facts.step("status") as f:
    f["status"] = cli(recv1, "status", "--json", "--etcd", ETCD, "--domain", DOMAIN)


def joined6(host: Host) -> socket.socket:
    """An application's socket on ``host`` joined to GROUP6 (MLD)."""
    with host.inside():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        ifindex = socket.if_nametoindex("eth0")
    sock.bind((GROUP6, PORT6))
    mreq = socket.inet_pton(socket.AF_INET6, GROUP6) + struct.pack("@I", ifindex)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, mreq)
    sock.settimeout(2.0)
    return sock


with facts.step("ipv6") as f:
    # an IPv6 group: the agents (each given its IPv6 address) learn the join
    # from MLD (/proc/net/igmp6) and configure both modules for it
    f["add"] = cli(sender_host, "group", "add", GROUP6, "--port", str(PORT6), "--etcd", ETCD,
                   "--domain", DOMAIN)  # fmt: skip
    want = f"{ADDR6['sender']}:{PORT6}>{GROUP6}"
    f["entry"] = wait_for(lambda: want in entries(recv1), True, 60, 0.5)
    started = time.monotonic()
    app = joined6(recv1)
    f["sender"] = wait_for(sender_members6, [ADDR6["recv1"]], 30)
    f["join_seconds"] = round(time.monotonic() - started, 2)
    with sender_host.inside():
        out = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        ifindex = socket.if_nametoindex("eth0")
    out.bind((ADDR6["sender"], 40006))
    out.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
    out.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
    out.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
    data = payloads("ipv6", 20, 200)
    seen = switch6(vpc)["udp6_multicast"]
    for payload in data:
        out.sendto(payload, (GROUP6, PORT6))
    got, sources = [], set()
    try:
        while len(got) < len(data):
            payload, source = app.recvfrom(65536)
            got.append(payload)
            sources.add(f"[{source[0]}]:{source[1]}")
    except TimeoutError:
        pass
    f["switch_saw_the_originals"] = switch6(vpc)["udp6_multicast"] - seen
    f["received"] = {"sent": len(data), "count": len(got), "intact": sorted(got) == sorted(data),
                     "sources": sorted(sources)}  # fmt: skip
    out.close()
    started = time.monotonic()
    app.close()  # the application leaves (MLD done)
    f["left"] = wait_for(sender_members6, [], 30)
    f["leave_seconds"] = round(time.monotonic() - started, 2)

with facts.step("logs") as f:
    for name, agent in agents.items():
        f[name] = agent.text()[-4000:]
    f["alive"] = {n: a.proc is not None and a.proc.poll() is None for n, a in agents.items()}

for agent in agents.values():
    if agent.proc and agent.proc.poll() is None:
        agent.kill(signal.SIGTERM)
etcd.kill()
print("guest: done", flush=True)
