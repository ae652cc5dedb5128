"""The fleet at scale on the host: N agents against a real etcd, fake kernels.

    python -m tests.fleet_bench [--agents 1000] [--groups 10] [--senders 10]
                                [--workers 8] [--rest 20] [--ramp 0]
                                [--idle-poll 0.5]
                                                              (make bench-fleet N=1000)

Each agent is the real :class:`multicast_admin.fleet.agent.Agent` with its
real Store (etcd3gw, its own watch stream and lease), a real
:class:`KernelBackend` over the fake kernels of the unit tests
(tests/unit/fakes.py: the real bindings, only the socket is fake) and an
IGMP file of its own; its timings are the service's (IGMP every 0.5 s, lease
refreshed every TTL/3, kernel read every 10 s).  The agents run as threads
of ``--workers`` processes (one Python per agent would need GBs), on one
etcd (Debian's, tests/unit/etcd_server.py) with a fresh data directory.

``--senders`` agents have multis (sources of every group), the others multic;
receiver i joins group i mod G.  It reports:

- the start: until every sender copies each group to all its members;
- etcd's requests per second at rest (``--rest`` s, from etcd's own
  ``grpc_server_msg_received_total`` by method: the goal is lease keep-alives
  only, no polling);
- one join (receiver 0 joins one more group): until every sender has it;
  and one leave, until none has it;
- CPU: the seconds the workers and etcd used for the start, and per second
  at rest (a 2-core machine has 2 to give);
- memory: the resident size of one agent alone in a process of its own (a
  receiver of the same domain), and of the workers per agent.

It prints one JSON object.  A measurement, not a test: nothing is asserted
beyond the run completing.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import resource
import sys
import tempfile
import threading
import time
import urllib.request
from ipaddress import IPv4Address
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "unit"))
sys.path.insert(0, str(REPO))

GROUP_BASE = int(IPv4Address("239.10.0.1"))
DOMAIN = "bench"


def address(i: int) -> str:
    return str(IPv4Address(int(IPv4Address("10.100.0.1")) + i))


def group(g: int) -> str:
    return str(IPv4Address(GROUP_BASE + g))


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used so far (every thread)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- workers


def worker(  # noqa: PLR0915 (one scenario, read top to bottom)
    conn,
    indexes: list[int],
    senders: int,
    groups: int,
    url: str,
    tmp: str,
    ttl: int,
    ramp: float = 0.0,
    idle_poll: float | None = None,
    joiner: int = -1,
) -> None:
    """Run the agents ``indexes`` as threads, started evenly over ``ramp``
    seconds; answer the parent's questions.  ``idle_poll``: the IGMP poll of
    every agent but ``joiner`` (None: the service's)."""
    raise_fd_limit()
    import logging

    from fakes import FakeMulticKernel, FakeMultisKernel
    from fleet_hosts import igmp_text

    from multicast_admin.client import Client
    from multicast_admin.errors import ModuleNotLoaded
    from multicast_admin.fleet.agent import Agent
    from multicast_admin.fleet.backend import KernelBackend
    from multicast_admin.fleet.ledger import Ledger
    from multicast_admin.fleet.membership import Membership
    from multicast_admin.fleet.settings import AgentSettings, EtcdSettings, parse_endpoints
    from multicast_admin.fleet.store import Store
    from multicast_admin.netlink import MulticNetlink, MultisNetlink
    from multicast_admin.server import Server

    logging.basicConfig(level=logging.WARNING, format="agent: %(message)s")
    hosts = {}
    for i in indexes:
        is_sender = i < senders
        multis = FakeMultisKernel()
        multic = FakeMulticKernel()
        for kernel in (multis, multic):  # the requests log of the unit tests: read by none here
            kernel.requests = collections.deque(maxlen=1)
        igmp = Path(tmp) / f"{i}.igmp"
        igmp.write_text(igmp_text([] if is_sender else [group(i % groups)]))

        def open_server(multis=multis, is_sender=is_sender) -> Server:
            if not is_sender:
                raise ModuleNotLoaded("multis")
            return Server(MultisNetlink(multis))

        def open_client(multic=multic, is_sender=is_sender) -> Client:
            if is_sender:
                raise ModuleNotLoaded("multic")
            return Client(MulticNetlink(multic))

        settings = AgentSettings(EtcdSettings(parse_endpoints(url), DOMAIN), (address(i),), (), ttl)
        backend = KernelBackend(open_server, open_client, Ledger.load(Path(tmp) / f"{i}.json"))
        agent = Agent(
            settings,
            [IPv4Address(address(i))],
            Store(settings.etcd),
            backend,
            Membership(igmp, None),  # IPv4 only: not the host's /proc/net/igmp6
            **({} if idle_poll is None or i == joiner else {"poll": idle_poll}),
        )
        # it stops only at the bench's teardown, which is not measured: a
        # thousand revokes at once would only bury etcd (the leases go with it)
        agent.revoke_on_exit = False
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        hosts[i] = (multis, igmp, stop, thread, is_sender)
        if ramp:
            time.sleep(ramp / len(indexes))
    conn.send(("started", rss_kib()))
    while True:
        command, arg = conn.recv()
        if command == "members":  # {sender index: {group: sorted members}}
            out = {}
            for i, (multis, _igmp, _stop, _thread, is_sender) in hosts.items():
                if is_sender:
                    try:
                        state = multis.state()
                    except RuntimeError:  # changed while read: ask again
                        state = {}
                    out[i] = {g: sorted(m) for g, (_flags, m) in state.items()}
            conn.send(out)
        elif command == "join":
            i, groups_now = arg
            hosts[i][1].write_text(igmp_text(groups_now))
            conn.send("ok")
        elif command == "rss":
            conn.send(rss_kib())
        elif command == "stop":
            for _multis, _igmp, stop, _thread, _s in hosts.values():
                stop.set()
            for _multis, _igmp, _stop, thread, _s in hosts.values():
                thread.join(10)
            conn.send("stopped")
            return


# --------------------------------------------------------------------------- etcd


def grpc_counts(url: str) -> dict[str, float]:
    """etcd's gRPC messages received so far, by method (its /metrics)."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    counts: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("grpc_server_msg_received_total{"):
            labels, value = line.rsplit(" ", 1)
            method = labels.split('grpc_method="')[1].split('"')[0]
            counts[method] = counts.get(method, 0) + float(value)
    return counts


def main(argv: list[str] | None = None) -> int:  # noqa: PLR0915 (one scenario)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--rest", type=float, default=20.0, help="seconds measured at rest")
    parser.add_argument("--ttl", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument(
        "--ramp",
        type=float,
        default=0.0,
        help="start the agents evenly over this many seconds (a fleet rolled out), not at once",
    )
    parser.add_argument(
        "--idle-poll",
        type=float,
        default=None,
        help="the IGMP poll (s) of every agent but the one whose join and leave are timed "
        "(default: the service's 0.5 s for all)",
    )
    args = parser.parse_args(argv)
    raise_fd_limit()

    from etcd_server import EtcdServer, etcd_binary

    from multicast_admin.fleet.groups import GroupDefinition, define
    from multicast_admin.fleet.settings import EtcdSettings, parse_endpoints
    from multicast_admin.fleet.store import Store

    report: dict = {"agents": args.agents, "groups": args.groups, "senders": args.senders,
                    "ramp_seconds": args.ramp, "idle_poll_seconds": args.idle_poll}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        etcd = EtcdServer(etcd_binary(), Path(tmp) / "etcd")
        etcd.start()
        try:
            url = etcd.url
            store = Store(EtcdSettings(parse_endpoints(url), DOMAIN))
            # the definitions, as `multicast-proxy group add` writes them
            for g in range(args.groups):
                define(store, GroupDefinition(IPv4Address(group(g)), 5000 + g))
            receivers = range(args.senders, args.agents)
            want = {
                group(g): sorted(address(i) for i in receivers if i % args.groups == g)
                for g in range(args.groups)
            }
            want = {g: m for g, m in want.items() if m}
            ctx = multiprocessing.get_context("fork")
            workers = []
            shares = [list(range(args.agents))[w :: args.workers] for w in range(args.workers)]
            started = time.monotonic()
            for share in (s for s in shares if s):
                parent, child = ctx.Pipe()
                proc = ctx.Process(
                    target=worker,
                    args=(child, share, args.senders, args.groups, url, tmp, args.ttl,
                          args.ramp, args.idle_poll, args.senders),
                )  # fmt: skip
                proc.start()
                workers.append((proc, parent, len(share)))
            worker_rss = [parent.recv()[1] for _proc, parent, _n in workers]

            def senders_view() -> dict:
                merged: dict = {}
                for _proc, parent, _n in workers:
                    parent.send(("members", None))
                    merged.update(parent.recv())
                return merged

            def wait(check, what: str, every: float = 0.05) -> float:
                """Until ``check`` of the senders' state, asked every ``every``
                seconds: each ask formats every sender's members, in workers
                that share the CPU with the agents (every 50 ms through a
                start of 1,000 agents was enough to tip them over)."""
                begun = time.monotonic()
                while not check(senders_view()):
                    if time.monotonic() - begun > args.timeout:
                        raise SystemExit(f"fleet_bench: {what}: not reached in {args.timeout} s")
                    time.sleep(every)
                return round(time.monotonic() - begun, 2)

            def all_have(view: dict, g: str, member: str, present: bool = True) -> bool:
                return len(view) == args.senders and all(
                    (member in v.get(g, [])) == present for v in view.values()
                )

            wait(lambda view: len(view) == args.senders and all(v == want for v in view.values()),
                 "start", every=1.0)  # fmt: skip
            report["start_seconds"] = round(time.monotonic() - started, 2)
            pids = [proc.pid for proc, _parent, _n in workers]

            def cpu() -> tuple[float, float]:
                return sum(map(cpu_seconds, pids)), cpu_seconds(etcd.proc.pid)

            report["start_cpu_seconds"] = dict(zip(("workers", "etcd"), map(round, cpu())))
            # one agent alone in its own process: its memory in this domain
            parent, child = ctx.Pipe()
            solo = ctx.Process(
                target=worker,
                args=(child, [args.agents], args.senders, args.groups, url, tmp, args.ttl),
            )
            solo.start()
            parent.recv()
            extra = address(args.agents)
            g_extra = group(args.agents % args.groups)
            wait(lambda view: all_have(view, g_extra, extra), "the extra agent", every=0.5)
            time.sleep(2)
            parent.send(("rss", None))
            report["one_agent_rss_mib"] = round(parent.recv() / 1024, 1)
            # at rest
            time.sleep(2)
            before, cpu0, t0 = grpc_counts(url), cpu(), time.monotonic()
            time.sleep(args.rest)
            after, cpu1, t1 = grpc_counts(url), cpu(), time.monotonic()
            report["cpu_per_second_at_rest"] = {
                name: round((b - a) / (t1 - t0), 3)
                for name, a, b in zip(("workers", "etcd"), cpu0, cpu1)
            }
            rates = {
                m: round((after.get(m, 0) - before.get(m, 0)) / (t1 - t0), 2)
                for m in sorted(set(before) | set(after))
            }
            report["etcd_requests_per_second_at_rest"] = {m: r for m, r in rates.items() if r}
            report["expected_keepalives_per_second"] = round((args.agents + 1) / (args.ttl / 3), 1)
            # one join, one leave
            joiner = args.senders  # receiver 0
            g_new = group((joiner + 1) % args.groups)
            _proc, conn, _n = next(w for w in workers if joiner in shares[workers.index(w)])
            conn.send(("join", (joiner, [group(joiner % args.groups), g_new])))
            conn.recv()
            report["join_seconds_all_senders"] = wait(
                lambda view: all_have(view, g_new, address(joiner)), "join"
            )
            conn.send(("join", (joiner, [group(joiner % args.groups)])))
            conn.recv()
            report["leave_seconds_all_senders"] = wait(
                lambda view: all_have(view, g_new, address(joiner), present=False), "leave"
            )
            for _proc, parent_w, _n in workers:
                parent_w.send(("rss", None))
            rss = [parent_w.recv() for _proc, parent_w, _n in workers]
            report["workers_rss_mib"] = round(sum(rss) / 1024, 1)
            report["workers_rss_per_agent_mib"] = round(sum(rss) / 1024 / args.agents, 2)
            report["workers_rss_at_start_mib"] = round(sum(worker_rss) / 1024, 1)
            report["etcd_rss_mib"] = round(rss_kib(etcd.proc.pid) / 1024, 1)
            print(json.dumps(report, indent=1), flush=True)  # before the teardown
            for proc, parent_w, _n in [*workers, (solo, parent, 1)]:
                parent_w.send(("stop", None))
                parent_w.recv()
                proc.join(30)
        finally:
            etcd.stop()
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
