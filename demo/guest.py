"""The demo scenario, inside the VM: multicast across a switch that drops it.

Run by demo/run.py as root in the test VM (tests/vm/harness.py), with the
project's .venv/bin on PATH.  It

1. builds the simulated VPC of tests/vm/guest/vpc.py: a sender and three
   receivers, each in its own network namespace, on a bridge whose nft rules
   drop IPv4 multicast and broadcast, as a cloud VPC's virtual switch does;
2. runs an ordinary multicast application (plain UDP sockets: receivers join
   their groups, the sender sends) without the proxy: nothing arrives;
3. starts and configures the proxy exactly as the published guide says, with
   the real commands (``service multis start``, ``multis_admin -A -m G -j
   ...``, ``service multic start``, ``multic_admin -A -i S -p P -m G``), each
   in the namespace of the host it belongs to;
4. sends again: every receiver that joined a group gets every datagram, byte
   for byte, and the receiver that did not join group B gets nothing;
5. prints the before/after table and the proxy's counters, and exits 1 if
   anything that should have arrived did not, arrived where it should not, or
   a counter differs from what the traffic must have produced, the switch's
   included: each original must enter it once, and one marked copy per member.

Python is ~30 times slower under TCG than on the host and every CLI process
imports pyroute2 (about 13 s of emulated CPU per call), so the commands of the
four hosts run in parallel (they are independent, as on four real machines)
and each is shown when it ends.  The proxy is configured through its
command-line tools alone, as an operator would; at the end, this process
reads every counter of every host through multicast_admin's API (one import
instead of one more CLI call per host) and checks each against what the
traffic must have produced.
"""

from __future__ import annotations

import dataclasses
import json
import os
import select
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.vm.guest.vpc import Host, Receiver, Sender, build_vpc, payloads, sh  # noqa: E402

COUNT = 20  # datagrams per group and phase
SIZE = 200  # bytes of UDP payload each
SPORT = 40000  # the application's source port
RESULTS = Path(os.environ.get("MCP_RESULTS", "/tmp"))
STARTED = time.monotonic()


@dataclasses.dataclass(frozen=True)
class Group:
    label: str
    address: str
    port: int
    members: tuple[str, ...]  # receiver namespaces that join it

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


GROUPS = (
    Group("A", "239.1.1.1", 5000, ("recv1", "recv2", "recv3")),
    Group("B", "239.2.2.2", 6000, ("recv1", "recv2")),
)


def say(text: str = "") -> None:
    print(text, flush=True)


def heading(text: str) -> None:
    """A section title, with the time since the scenario started."""
    clock = f" {time.monotonic() - STARTED:5.1f} s"
    say()
    say(f"== {text} " + "=" * max(0, 74 - len(text) - len(clock)) + clock)


# --------------------------------------------------------------------------- commands


@dataclasses.dataclass
class Command:
    """One operator command, run on one simulated host (a network namespace)."""

    host: str
    shown: str  # what the operator types
    argv: str  # what actually runs (a shell command), when it differs
    note: str = ""
    status: int | None = None
    output: str = ""
    seconds: float = 0.0

    def run(self) -> None:
        started = time.monotonic()
        proc = subprocess.run(
            ["ip", "netns", "exec", self.host, "sh", "-c", self.argv],
            capture_output=True,
            text=True,
            check=False,
        )
        self.seconds = time.monotonic() - started
        self.status = proc.returncode
        self.output = (proc.stdout + proc.stderr).rstrip()

    def show(self) -> None:
        status = "" if self.status == 0 else f"   << FAILED, exit status {self.status}"
        say(f"  {self.host}# {self.shown}    ({self.seconds:.1f} s){status}")
        if self.note:
            say(f"  {' ' * len(self.host)}  ({self.note})")
        for line in self.output.splitlines():
            say(f"      {line}".rstrip())
        say()


_print_lock = threading.Lock()


@dataclasses.dataclass
class Chain:
    """One host's commands, in order; ``after`` must be set before it starts."""

    commands: list[Command]
    after: threading.Event | None = None
    done_first: threading.Event | None = None  # set when its first command ended

    def run(self) -> None:
        if self.after is not None:
            self.after.wait()
        for i, command in enumerate(self.commands):
            try:
                command.run()
                with _print_lock:
                    command.show()
            finally:
                if i == 0 and self.done_first is not None:
                    self.done_first.set()


def run_parallel(chains: list[Chain]) -> float:
    """Run the chains side by side, each command shown as it ends; the seconds taken."""
    started = time.monotonic()
    threads = [threading.Thread(target=chain.run) for chain in chains]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


KO_DIR = Path(os.environ.get("MULTICAST_PROXY_KO_DIR") or REPO / "kernel")
SERVICE_LAUNCHER = Path("/usr/sbin/multicast-proxy-service")


def install_service() -> None:
    """Install the service in the VM the way the RPMs install it on a real host.

    The project's SysV init scripts go to /etc/init.d (a writable overlay in
    the VM), and /usr/sbin/multicast-proxy-service, which they call, becomes
    a launcher of this checkout's multicast_admin.service and modules (in a
    writable overlay over /usr/sbin).  Then ``service multis start`` is the
    real command running the real init script.
    """
    for name in ("multis", "multic"):
        shutil.copy2(REPO / "packaging" / "init.d" / name, Path("/etc/init.d") / name)
    upper = Path("/run/demo-usr-sbin")
    (upper / "up").mkdir(parents=True, exist_ok=True)
    (upper / "work").mkdir(parents=True, exist_ok=True)
    sh(
        f"mount -t overlay overlay -o lowerdir=/usr/sbin,upperdir={upper}/up,"
        f"workdir={upper}/work /usr/sbin"
    )
    python = REPO / ".venv" / "bin" / "python"
    ko_dir = shlex.quote(str(KO_DIR))
    SERVICE_LAUNCHER.write_text(
        "#!/bin/sh\n"
        "# multicast-proxy-service in the demo VM: this checkout's service and modules.\n"
        "# On a real host the RPM's depmod lets modprobe load a module's dependencies\n"
        "# (multic needs nf_defrag_ipv4 and nf_defrag_ipv6); a module of the build\n"
        "# tree is loaded with insmod, which does not, so they are loaded here first.\n"
        f'ko={ko_dir}/"$1"/"$1".ko\n'
        'if [ "$2" = start ] && [ -f "$ko" ]; then\n'
        '    for dep in $(modinfo -F depends "$ko" | tr , " "); do modprobe "$dep"; done\n'
        "fi\n"
        f"MULTICAST_PROXY_KO_DIR={ko_dir} "
        f'exec {shlex.quote(str(python))} -m multicast_admin.service "$@"\n'
    )
    SERVICE_LAUNCHER.chmod(0o755)


def service_start(host: str, name: str) -> Command:
    """``service NAME start`` on ``host``: the real thing, or its init script as service runs it."""
    if shutil.which("service"):
        return Command(host, f"service {name} start", f"service {name} start")
    return Command(
        host,
        f"service {name} start",
        f"env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin /etc/init.d/{name} start",
        note=f"no `service` command here: run as it would, env -i /etc/init.d/{name} start",
    )


def admin(host: str, command: str) -> Command:
    return Command(host, command, command)


# --------------------------------------------------------------------------- traffic


@dataclasses.dataclass
class Outcome:
    """What one receiver got of one group in one phase."""

    sent: int = 0
    received: int = 0
    intact: bool = False  # every datagram sent arrived, byte for byte, from the sender
    problems: list[str] = dataclasses.field(default_factory=list)


class Bystander:
    """A socket on port P of a host that did not join the group sent to P.

    It receives anything addressed to this host on that port, so a copy of
    the group's traffic that wrongly reached the host would show up here.
    """

    def __init__(self, host: Host, port: int) -> None:
        self.host = host
        with host.inside():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("", port))
        self.sock.setblocking(False)

    def drain(self, settle: float = 0.0) -> list:
        got = []
        while True:
            try:
                data, src = self.sock.recvfrom(65536)
            except BlockingIOError:
                return got
            got.append((data, src))


def drain_all(listeners: dict, settle: float = 0.7) -> dict:
    """Read every socket until none has received anything for ``settle`` s."""
    got: dict = {key: [] for key in listeners}
    by_sock = {listener.sock: key for key, listener in listeners.items()}
    while True:
        ready, _, _ = select.select(list(by_sock), [], [], settle)
        if not ready:
            return got
        for sock in ready:
            key = by_sock[sock]
            got[key] += listeners[key].drain(settle=0)


def exchange(sender: Sender, listeners: dict, tag: str) -> dict[tuple[str, str], Outcome]:
    """Send COUNT datagrams to each group; what each (receiver, group) got."""
    sent = {g.label: payloads(f"{tag}-{g.label}", COUNT, SIZE) for g in GROUPS}
    for group in GROUPS:
        sender.send(group.address, group.port, sent[group.label])
    got = drain_all(listeners)
    outcomes = {}
    for (host, label), datagrams in got.items():
        group = next(g for g in GROUPS if g.label == label)
        outcome = Outcome(sent=len(sent[label]), received=len(datagrams))
        if host in group.members:
            received = [d.payload for d in datagrams]
            sources = {f"{d.source[0]}:{d.source[1]}" for d in datagrams}
            dests = {d.destination for d in datagrams}
            if len(received) < len(sent[label]):
                outcome.problems.append(f"{len(sent[label]) - len(received)} missing")
            elif len(received) > len(sent[label]):
                outcome.problems.append(f"{len(received) - len(sent[label])} extra (duplicates)")
            elif sorted(received) != sorted(sent[label]):
                # UDP promises no order, and veth backlogs are per CPU: the
                # same datagrams, each once, byte for byte
                outcome.problems.append("payloads differ from what was sent")
            if datagrams and sources != {f"{sender.source[0]}:{sender.source[1]}"}:
                outcome.problems.append(f"source {sorted(sources)}")
            if datagrams and dests != {group.address}:
                outcome.problems.append(f"destination {sorted(dests)}")
            # byte for byte, each once, from the sender's address and port, to the group
            outcome.intact = bool(datagrams) and not outcome.problems
        else:
            outcome.intact = False
            if datagrams:
                outcome.problems.append(
                    f"got {len(datagrams)} datagrams of a group it never joined"
                )
        outcomes[(host, label)] = outcome
    return outcomes


# --------------------------------------------------------------------------- report


def verdict(host: str, group: Group, before: Outcome, after: Outcome) -> tuple[bool, str]:
    member = host in group.members
    if before.received:
        return False, "FAIL: arrived without the proxy (the switch should drop it)"
    if not member:
        if after.received:
            return False, "FAIL: " + "; ".join(after.problems)
        return True, "ok (not joined: nothing, as it should)"
    if after.intact:
        return True, "ok"
    return False, "FAIL: " + "; ".join(after.problems)


def table(before: dict, after: dict) -> bool:
    say(
        f"  {'receiver':<9} {'group':<18} {'joined':<7}"
        f"{'without proxy':^21}  {'with proxy':^21}  result"
    )
    say(
        f"  {'':<9} {'':<18} {'':<7}"
        f"{'sent':>6} {'recv':>6} {'intact':>7}  {'sent':>6} {'recv':>6} {'intact':>7}"
    )
    ok = True
    for group in GROUPS:
        for host in ("recv1", "recv2", "recv3"):
            b, a = before[(host, group.label)], after[(host, group.label)]
            member = host in group.members
            good, text = verdict(host, group, b, a)
            ok &= good

            def intact(o: Outcome, member: bool = member) -> str:
                if not member or not o.received:
                    return "-"
                return "yes" if o.intact else "NO"

            say(
                f"  {host:<9} {group.label + ' ' + str(group):<18} "
                f"{'yes' if member else 'no':<7}"
                f"{b.sent:>6} {b.received:>6} {intact(b):>7}  "
                f"{a.sent:>6} {a.received:>6} {intact(a):>7}  {text}"
            )
    return ok


# --------------------------------------------------------------------------- scenario


SWITCH_COUNTERS = """
table bridge demo {
    chain seen {
        type filter hook prerouting priority -10;
        ip daddr { 239.1.1.1, 239.2.2.2 } ip protocol udp counter comment "multicast"
        ip daddr 10.0.0.0/24 ip dscp cs7 udp sport 40000 counter comment "copies"
    }
}
"""


def switch_counts() -> dict[str, int]:
    """Frames that entered the switch: to the groups, and unicast copies (TOS 0xE0)."""
    out = sh("ip netns exec vpc nft list chain bridge demo seen")
    counts = {}
    for line in out.splitlines():
        if "counter packets" in line and "comment" in line:
            name = line.split('comment "')[1].split('"')[0]
            counts[name] = int(line.split("counter packets")[1].split()[0])
    return counts


def per_host_etc(hosts: list[Host]) -> None:
    """Give every simulated host its own /etc/multicast-proxy (the saved state).

    ``ip netns exec NS`` bind-mounts /etc/netns/NS/* over /etc/*, so each
    namespace's CLIs and service read and write their own state directory,
    as four separate machines would.  /etc is a writable overlay in the VM.
    """
    Path("/etc/multicast-proxy").mkdir(parents=True, exist_ok=True)
    for host in hosts:
        Path(f"/etc/netns/{host.name}/multicast-proxy").mkdir(parents=True, exist_ok=True)


INTRO = f"""
  A simulated VPC, built from network namespaces in this VM:

      sender 10.0.0.1  --+
      recv1  10.0.0.11 --+    switch "vpc": a Linux bridge whose nft rules drop
      recv2  10.0.0.12 --+    IPv4 multicast and broadcast, as a VPC's switch does
      recv3  10.0.0.13 --+

  The application: plain UDP sockets, no change at all.  Receivers join their
  groups (IP_ADD_MEMBERSHIP) and bind the group's port; the sender sends
  {COUNT} datagrams of {SIZE} bytes to each group from 10.0.0.1:{SPORT}."""


class Api:
    """multicast_admin's Server and Client, imported in the background.

    The import (pyroute2) costs as much as a CLI call under emulation; it runs
    while the VPC is being built, which keeps one vCPU busy with `ip`, and it
    also brings the files every later CLI process opens into the page cache
    (the host root comes over 9p: the first process to open a file pays).
    The demo reads the counters of all four hosts with it at the end, in this
    one process, instead of one more CLI process per host.
    """

    def __init__(self) -> None:
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._load, daemon=True)
        self.thread.start()

    def _load(self) -> None:
        try:
            try:
                from multicast_admin import lean  # noqa: PLC0415

                lean.use_lean_pyroute2()
                lean.netlink()
            except ImportError:
                pass
            from multicast_admin.client import Client  # noqa: PLC0415
            from multicast_admin.server import Server  # noqa: PLC0415

            self.Server, self.Client = Server, Client
        except BaseException as error:  # noqa: BLE001 - reported when used
            self.error = error

    def ready(self) -> None:
        self.thread.join()
        if self.error is not None:
            raise self.error


class Demo:
    def __init__(self) -> None:
        self.api = Api()
        self.vpc = build_vpc(receivers=3)
        self.hosts = {h.name: h for h in [self.vpc.sender, *self.vpc.receivers]}
        per_host_etc(list(self.hosts.values()))
        sh(f"ip netns exec vpc nft -f - <<'EOF'\n{SWITCH_COUNTERS}\nEOF")
        install_service()
        # The application: it runs from the start to the end of the demo.
        self.listeners: dict = {}
        for group in GROUPS:
            for name in group.members:
                self.listeners[(name, group.label)] = Receiver(
                    self.hosts[name], group.address, group.port
                )
        self.listeners[("recv3", "B")] = Bystander(self.hosts["recv3"], GROUPS[1].port)
        self.sender = Sender(self.vpc.sender, sport=SPORT)
        self.commands: list[Command] = []
        self.switch_failures: list[str] = []

    def judge_switch(self, phase: str, seen: dict, now: dict, copies: int) -> None:
        """The switch saw each original once, and ``copies`` marked copies: else FAIL."""
        counted = {name: now[name] - seen[name] for name in ("multicast", "copies")}
        expected = {"multicast": COUNT * len(GROUPS), "copies": copies}
        for name, value in counted.items():
            if value != expected[name]:
                text = f"{phase}: the switch saw {value} {name} frames, expected {expected[name]}"
                self.switch_failures.append(text)
                say(f"  FAIL: {text}")

    def introduce(self) -> None:
        say(INTRO)
        for group in GROUPS:
            say(f"      group {group.label}  {group!s:<15}  joined by {', '.join(group.members)}")
        say("      (recv3 also listens on port 6000 without joining group B: it must get nothing)")

    def without_proxy(self) -> dict:
        heading("1. Without the proxy")
        seen = switch_counts()
        before = exchange(self.sender, self.listeners, "before")
        now = switch_counts()
        total = sum(o.received for o in before.values())
        say(
            f"  The sender sent {COUNT} datagrams to each group.  The switch saw "
            f"{now['multicast'] - seen['multicast']} multicast"
        )
        say(f"  frames and dropped them all: the receivers got {total} datagrams.")
        self.judge_switch("without the proxy", seen, now, copies=0)
        return before

    def configure(self) -> None:
        self.api.thread.join()  # not competing with the commands for the CPU
        heading("2. Start and configure the proxy, as the guide says")
        say("  HOST# COMMAND: the command runs on that simulated host (ip netns exec HOST ...).")
        say("  The hosts are configured in parallel, as separate machines would be; each")
        say("  command is shown when it ends, with the time it took in this emulated VM.")
        say("  `service` runs packaging/init.d/multis|multic of this checkout, installed in")
        say("  the VM's /etc/init.d; /usr/sbin/multicast-proxy-service, which they call, runs")
        say("  this checkout's service and modules: what the RPMs install on a real host.")
        say("  The receivers share the VM's kernel: recv1's start loads multic for all three.")
        say()
        sender_ip = self.vpc.sender.addr
        sender = [service_start("sender", "multis")]
        for group in GROUPS:
            members = ",".join(self.hosts[name].addr for name in group.members)
            sender.append(admin("sender", f"multis_admin -A -m {group.address} -j {members}"))
        receivers = {}
        for name in ("recv1", "recv2", "recv3"):
            receivers[name] = [service_start(name, "multic")] + [
                admin(name, f"multic_admin -A -i {sender_ip} -p {g.port} -m {g.address}")
                for g in GROUPS
                if name in g.members
            ]
        # recv1's start loads the module; the other receivers start after it
        # (concurrent loads of one module race: separate machines never do).
        loaded = threading.Event()
        seconds = run_parallel(
            [
                Chain(sender),
                Chain(receivers["recv1"], done_first=loaded),
                Chain(receivers["recv2"], after=loaded),
                Chain(receivers["recv3"], after=loaded),
            ]
        )
        commands = sender + [c for cmds in receivers.values() for c in cmds]
        self.commands += commands
        failed = [c for c in commands if c.status != 0]
        say(
            f"  {len(commands)} commands in {seconds:.1f} s"
            + (f"; {len(failed)} FAILED" if failed else "")
        )

    def with_proxy(self) -> dict:
        heading("3. With the proxy: the same application sends again")
        seen = switch_counts()
        after = exchange(self.sender, self.listeners, "after")
        now = switch_counts()
        total = sum(o.received for o in after.values())
        expected = sum(COUNT * len(g.members) for g in GROUPS)
        say(
            f"  The sender sent {COUNT} datagrams to each group.  The switch dropped the "
            f"{now['multicast'] - seen['multicast']}"
        )
        say(
            f"  multicast originals again, and forwarded {now['copies'] - seen['copies']} "
            "unicast copies marked TOS 0xE0"
        )
        say(f"  (one per member); the receivers got {total} datagrams (expected {expected}).")
        self.judge_switch("with the proxy", seen, now, copies=expected)
        return after

    def counters(self) -> bool:
        heading("4. The proxy's counters")
        say("  What the operator sees, on the sender and on one receiver:")
        say()
        shown = [admin("sender", "multis_admin -P"), admin("recv1", "multic_admin -P")]
        run_parallel([Chain([c]) for c in shown])
        self.commands += shown
        say("  Every counter of every host, read from each one's kernel in this process")
        say("  (multicast_admin's API, what `multis_admin -L -m G` and `multic_admin -L` list),")
        say(f"  against what {COUNT} datagrams of {SIZE} bytes per group must give:")
        say()
        try:
            self.api.ready()
            rows = self.read_counters()
        except Exception as error:  # noqa: BLE001 - shown, and the demo fails
            say(f"  cannot read the counters: {type(error).__name__}: {error}")
            return False
        ok = True
        for host, subject, values in rows:
            wrong = [f"{name} {want}" for name, got, want in values if got != want]
            ok &= not wrong
            shown = ", ".join(f"{name} {got}" for name, got, _ in values)
            result = "ok" if not wrong else "FAIL: expected " + ", ".join(wrong)
            say(f"  {host:<7} {subject:<26} {shown:<47} {result}")
        return ok

    def read_counters(self) -> list[tuple[str, str, list[tuple[str, int, int]]]]:
        """(host, subject, [(counter, value read, value expected)...]) for every host."""
        ip_bytes = SIZE + 28  # with the IPv4 and UDP headers
        rows = []
        with self.vpc.sender.inside():
            server = self.api.Server.open()
        try:
            for group in GROUPS:
                st = server.group(group.address).stats
                drops = (
                    st.drop_no_member
                    + st.drop_nomem
                    + st.drop_no_route
                    + st.drop_xmit
                    + st.drop_too_big
                )
                rows.append(
                    (
                        "sender",
                        f"group {group.address}",
                        [
                            ("datagrams", st.datagrams, COUNT),
                            ("copies", st.packets, COUNT * len(group.members)),
                            ("drops", drops, 0),
                        ],
                    )
                )
                for member in server.members(group.address):
                    st = member.stats
                    drops = st.drop_nomem + st.drop_no_route + st.drop_xmit + st.drop_too_big
                    rows.append(
                        (
                            "sender",
                            f"  member {member.address}",
                            [
                                ("copies", st.packets, COUNT),
                                ("bytes", st.bytes, COUNT * ip_bytes),
                                ("drops", drops, 0),
                            ],
                        )
                    )
        finally:
            server.close()
        for name in ("recv1", "recv2", "recv3"):
            with self.hosts[name].inside():
                client = self.api.Client.open()
            try:
                entries = {(str(e.server), e.port): e.stats for e in client.entries()}
            finally:
                client.close()
            for group in GROUPS:
                if name not in group.members:
                    continue
                st = entries.get((self.vpc.sender.addr, group.port))
                got = (st.packets, st.bytes, st.not_local, st.drop_nomem) if st else (0,) * 4
                rows.append(
                    (
                        name,
                        f"entry {self.vpc.sender.addr}:{group.port}",
                        [
                            ("restored", got[0], COUNT),
                            ("bytes", got[1], COUNT * ip_bytes),
                            ("not_local", got[2], 0),
                            ("drops", got[3], 0),
                        ],
                    )
                )
        return rows


def main() -> int:
    heading("multicast-proxy demo: multicast across a VPC switch that drops it")
    demo = Demo()
    demo.introduce()
    before = demo.without_proxy()
    demo.configure()
    after = demo.with_proxy()
    heading("Results: per receiver and group")
    ok = table(before, after)
    ok = demo.counters() and ok
    failed = [c for c in demo.commands if c.status != 0]
    ok = ok and not failed and not demo.switch_failures

    record = {
        "ok": ok,
        "commands": [dataclasses.asdict(c) for c in demo.commands],
        "switch_failures": demo.switch_failures,
        "before": {f"{h}/{g}": dataclasses.asdict(o) for (h, g), o in before.items()},
        "after": {f"{h}/{g}": dataclasses.asdict(o) for (h, g), o in after.items()},
        "guest_seconds": time.monotonic() - STARTED,
    }
    (RESULTS / "demo.json").write_text(json.dumps(record, indent=1))

    heading("Verdict")
    if ok:
        say("  PASS: without the proxy nothing crossed the switch; with it, every receiver")
        say("  that joined a group got every datagram, byte for byte, from the sender's own")
        say("  address and port, and recv3 got nothing of group B, which it never joined;")
        say("  every counter on every host says exactly that.")
    else:
        say("  FAIL: see the rows and switch counts marked FAIL and the commands marked")
        say("  FAILED above.")
        say("  The guest's kernel log is in the run directory demo/run.py names below.")
    say(f"  (scenario inside the VM: {time.monotonic() - STARTED:.1f} s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
