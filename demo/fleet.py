"""`make demo-fleet`, inside the VM: the demo's VPC configured by etcd and agents alone.

Run by demo/run.py (``--guest demo/fleet.py``) as root in the test VM.  The
same simulated VPC, groups, application and before/after table as
demo/guest.py, but no multis_admin/multic_admin and no list of members or
sources anywhere:

1. etcd runs on a fifth host of the VPC (``etcd``, 10.0.0.5); every host's
   saved state is restored as ``service multis|multic start`` does at boot;
2. the application runs without the proxy: nothing arrives;
3. the operator types ``multicast-proxy group add`` once per group, and every
   host runs ``multicast-proxy agent``; the receivers' applications have
   joined their groups (IGMP), so the agents make each one a member and
   program the sender's multis and the receivers' multic;
4. the application sends again: the table shows every datagram arrived;
5. recv3's application leaves group A: the sender stops copying to it;
6. recv2's agent is killed (SIGKILL): recv2 leaves every group when its lease
   expires;

with what ``multicast-proxy status`` says after steps 3, 5 and 6.  Exits 1
if anything differs from what it must be.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from demo.guest import (  # noqa: E402
    COUNT,
    GROUPS,
    SPORT,
    STARTED,
    SWITCH_COUNTERS,
    Bystander,
    Command,
    exchange,
    heading,
    say,
    switch_counts,
    table,
)
from tests.vm.guest.etcd import GuestEtcd  # noqa: E402
from tests.vm.guest.vpc import Host, Receiver, Sender, build_vpc, insmod, sh  # noqa: E402

PYTHON = REPO / ".venv" / "bin" / "python"
KO_DIR = Path(os.environ.get("MULTICAST_PROXY_KO_DIR") or REPO / "kernel")
TTL = 6
ETCD_ADDR = "10.0.0.5"
ETCD = f"http://{ETCD_ADDR}:2379"


def etc_of(name: str) -> Path:
    return Path("/run/demo-fleet") / name


def host_env(name: str) -> str:
    """Each simulated host's own state directory, ledger and agent.conf."""
    d = etc_of(name)
    return (
        f"MULTICAST_PROXY_CONFIG_DIR={d}/etc MULTICAST_PROXY_RUN_DIR={d}/run "
        f"MULTICAST_PROXY_AGENT_CONF={d}/etc/agent.conf"
    )


def typed(host: str, command: str) -> Command:
    """``multicast-proxy ...`` as the operator types it on ``host``."""
    return Command(host, command, f"{host_env(host)} {PYTHON} -m multicast_admin.cli_proxy "
                   + command.removeprefix("multicast-proxy "))  # fmt: skip


def show(command: Command) -> Command:
    command.run()
    command.show()
    return command


def members(sender: Host, group: str) -> list[str]:
    from multicast_admin.netlink import MultisNetlink  # noqa: PLC0415

    with sender.inside(), MultisNetlink.open() as server:
        if not any(str(g.address) == group for g in server.groups()):
            return []
        return sorted(str(m.address) for m in server.members(IPv4Address(group)))


def wait_for(what: Callable[[], object], want: object, timeout: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if what() == want:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def main() -> int:  # noqa: PLR0915 (the scenario, read top to bottom)
    heading("multicast-proxy demo-fleet: the VPC configured by etcd and agents alone")
    failures: list[str] = []
    vpc = build_vpc(receivers=3)
    hosts = {h.name: h for h in [vpc.sender, *vpc.receivers]}
    sh("ip netns add etcd")
    sh("ip link add eth0 netns etcd type veth peer name p-etcd netns vpc")
    sh("ip -n vpc link set p-etcd master sw0 up")
    sh(f"ip -n etcd addr add {ETCD_ADDR}/24 dev eth0")
    sh("ip -n etcd link set eth0 up")
    sh("ip -n etcd link set lo up")  # etcd's gateway dials its own address
    sh(f"ip netns exec vpc nft -f - <<'EOF'\n{SWITCH_COUNTERS}\nEOF")
    etcd = GuestEtcd("demo", ETCD_ADDR, netns="etcd")
    etcd.start()
    for name in hosts:
        for sub in ("etc", "run"):
            (etc_of(name) / sub).mkdir(parents=True, exist_ok=True)
        (etc_of(name) / "etc" / "agent.conf").write_text(
            f"[etcd]\nendpoints = {ETCD}\n\n[agent]\nttl = {TTL}\n"
        )
    say("""
  A simulated VPC, built from network namespaces in this VM:

      sender 10.0.0.1  --+
      recv1  10.0.0.11 --+    switch "vpc": a Linux bridge that drops IPv4 multicast
      recv2  10.0.0.12 --+    and broadcast, as a VPC's switch does
      recv3  10.0.0.13 --+
      etcd   10.0.0.5  --+    etcd 3.4 (Debian's), the fleet's shared store

  Every host's /etc/multicast-proxy/agent.conf says only where etcd is:
      [etcd]
      endpoints = http://10.0.0.5:2379
      [agent]
      ttl = 6""")
    for group in GROUPS:
        say(f"      group {group.label}  {group!s:<15}  joined by {', '.join(group.members)}")
    # one kernel for the VPC: the modules once, then each host's saved state
    # restored, as its `service multis start` / `service multic start` at boot
    insmod(KO_DIR / "multis" / "multis.ko")
    insmod(KO_DIR / "multic" / "multic.ko")
    from multicast_admin.service import ROLES, ConfigStateStore, Kmod, Service  # noqa: PLC0415

    for name, host in hosts.items():
        for side in ("multis", "multic"):
            store = ConfigStateStore(ROLES[side], etc_of(name) / "etc")
            with host.inside():
                Service(ROLES[side], Kmod(), store, is_root=True, out=io.StringIO()).run("start")
    listeners: dict = {}
    for group in GROUPS:
        for name in group.members:
            listeners[(name, group.label)] = Receiver(hosts[name], group.address, group.port)
    listeners[("recv3", "B")] = Bystander(hosts["recv3"], GROUPS[1].port)
    sender = Sender(vpc.sender, sport=SPORT)

    heading("1. Without the proxy")
    before = exchange(sender, listeners, "before")
    say(f"  The sender sent {COUNT} datagrams to each group: the receivers got "
        f"{sum(o.received for o in before.values())}.")  # fmt: skip

    heading("2. Define the groups once, start an agent on every host")
    for group in GROUPS:
        if show(typed("sender", f"multicast-proxy group add {group.address} --port {group.port}")
                ).status != 0:  # fmt: skip
            failures.append(f"group add {group.address}")
    agents = {}
    for name in hosts:
        say(f"  {name}# multicast-proxy agent &")
        log = (etc_of(name) / "agent.log").open("ab")
        agents[name] = subprocess.Popen(
            f"exec nsenter --net=/run/netns/{name} env {host_env(name)} {PYTHON} -m "
            "multicast_admin.cli_proxy agent",
            shell=True, stdout=log, stderr=log,
        )  # fmt: skip
    expect = {g.address: sorted(hosts[n].addr for n in g.members) for g in GROUPS}
    took = wait_for(lambda: {g.address: members(vpc.sender, g.address) for g in GROUPS}, expect,
                    240)  # fmt: skip
    if took is None:
        failures.append("the agents did not configure the sender in 240 s")
    else:
        say(f"\n  The agents configured every host in {took:.1f} s of starting (in this VM).")
    # the receivers' multic entries come with the sender's source key: a moment
    time.sleep(3)
    show(typed("recv1", "multicast-proxy status"))

    heading("3. With the proxy: the same application sends again")
    after = exchange(sender, listeners, "after")
    heading("Results: per receiver and group")
    if not table(before, after):
        failures.append("the table")

    heading("4. recv3's application leaves group A")
    listeners.pop(("recv3", "A")).close()
    want = [hosts["recv1"].addr, hosts["recv2"].addr]
    took = wait_for(lambda: members(vpc.sender, GROUPS[0].address), want, 30)
    if took is None:
        failures.append("the sender kept copying A to recv3")
    else:
        say(f"  The sender's members of A are {', '.join(want)} {took:.1f} s after the leave.")
    seen = switch_counts()
    sender.send(GROUPS[0].address, GROUPS[0].port, [b"after the leave"] * COUNT)
    time.sleep(1)
    copies = switch_counts()["copies"] - seen["copies"]
    say(f"  {COUNT} more datagrams to A: {copies} copies crossed the switch (2 members).")
    if copies != 2 * COUNT:
        failures.append(f"{copies} copies after the leave, expected {2 * COUNT}")
    show(typed("recv1", "multicast-proxy status"))

    heading(f"5. recv2's agent is killed (SIGKILL): its lease (TTL {TTL} s) expires")
    killed = time.monotonic()
    agents["recv2"].send_signal(signal.SIGKILL)
    agents["recv2"].wait()
    want = {GROUPS[0].address: [hosts["recv1"].addr], GROUPS[1].address: [hosts["recv1"].addr]}
    took = wait_for(lambda: {g.address: members(vpc.sender, g.address) for g in GROUPS}, want,
                    TTL + 10)  # fmt: skip
    if took is None:
        failures.append("recv2 was not dropped")
    else:
        say(f"  The sender dropped recv2 from A and B {time.monotonic() - killed:.1f} s after "
            "the kill.")  # fmt: skip
    show(typed("recv1", "multicast-proxy status"))

    for name, proc in agents.items():
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
        elif name != "recv2":
            failures.append(f"{name}'s agent exited")
    etcd.kill()
    heading("Verdict")
    if failures:
        say("  FAIL: " + "; ".join(failures))
    else:
        say("  PASS: two `multicast-proxy group add` and an agent per host configured the")
        say("  VPC; every receiver that joined got every datagram, byte for byte; a receiver")
        say("  that left and a host whose agent died were dropped by the sender.")
    say(f"  (scenario inside the VM: {time.monotonic() - STARTED:.1f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
