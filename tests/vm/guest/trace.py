"""Guest side of tests/vm/test_trace.py: the modules' tracepoints, read three ways.

On the simulated VPC, the sender fans 239.1.1.1 out to five members, each
in a different situation: recv1 restores its copies (it has the entry),
recv2 has no entry (its copies are left alone) and a route with MTU 1000 (a
large datagram with DF cannot be copied to it), 10.9.9.9 has no route, the
sender's nft OUTPUT policy drops what goes to recv3, and 10.0.0.99 is
recv1's MAC address with an address recv1 does not have (not local there).  Later the switch
rewrites the marker on the way to recv1.

The events are read from tracefs directly, recorded by perf, and reported
by `multicast-proxy trace` (bcc) in its three forms (lines, --json,
--count); its one-line refusals (no tracefs, module not loaded, no headers,
not root) are recorded before each thing is in place.  The host asserts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.vm.guest.facts import Facts
from tests.vm.guest.installed import overlay
from tests.vm.guest.vpc import Host, Sender, build_vpc, insmod, payloads, sh

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / ".venv" / "bin"
TRACE = [str(BIN / "multicast-proxy"), "trace"]
KVER = os.environ["MCP_KVER"]
KIT = Path(os.environ["MCP_KIT"])
GROUP, PORT = "239.1.1.1", 5000
NO_ROUTE = "10.9.9.9"
NOT_LOCAL = "10.0.0.99"  # recv1's MAC on the sender's link, not recv1's address
TRACEFS = Path("/sys/kernel/tracing")
IP_MTU_DISCOVER, IP_PMTUDISC_DO = 10, 2  # <linux/in.h>, not in Python's socket

facts = Facts()


def run(argv: list[str], ns: str | None = None, user: str | None = None) -> dict:
    """argv's status and output; as the numeric ``user`` (and group) if given."""
    if user:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    if ns:
        argv = ["ip", "netns", "exec", ns, *argv]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    return {"rc": proc.returncode, "out": proc.stdout, "err": proc.stderr}


def admin(host: Host, tool: str, args: str) -> str:
    """A guide command on ``host``, with a state directory of that host's own
    (the namespaces share one file system, a host's file would be restored
    into the next host's kernel)."""
    return host.sh(f"env MULTICAST_PROXY_CONFIG_DIR=/run/state/{host.name} {BIN / tool} {args}")


def refusals(f: dict, name: str) -> None:
    f[name] = run([*TRACE, "--all-netns", "--duration", "1"])


class Tracer:
    """`multicast-proxy trace ARGS` in the background, until stop()."""

    def __init__(self, *args: str, ns: str | None = None) -> None:
        argv = [*TRACE, *args]
        if ns:
            # `ip netns exec` mounts a sysfs of its own: tracefs again on it
            argv = ["ip", "netns", "exec", ns, "sh", "-c",
                    f'mount -t tracefs tracefs {TRACEFS} && exec "$@"', "-", *argv]  # fmt: skip
        self.err = open(f"/run/trace-{os.getpid()}-{id(self)}.err", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err, text=True)

    def ready(self) -> bool:
        self.err.seek(0)
        return "Ctrl-C to end" in self.err.read() or self.proc.poll() is not None

    def stop(self) -> dict:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        out, _ = self.proc.communicate(timeout=120)
        self.err.seek(0)
        return {"rc": self.proc.returncode, "out": out, "err": self.err.read()}


def wait_ready(tracers: list[Tracer], seconds: float = 400.0) -> float:
    started = time.monotonic()
    while not all(t.ready() for t in tracers):
        if time.monotonic() - started > seconds:
            raise RuntimeError("trace never said it was tracing")
        time.sleep(0.5)
    return round(time.monotonic() - started, 1)


def send(count: int, size: int = 100, df: bool = False) -> None:
    tx = Sender(vpc.sender)
    if df:
        tx.sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    tx.send(GROUP, PORT, payloads("trace", count, size), gap=0.05)
    tx.close()
    time.sleep(1)


def netns_of(name: str) -> int:
    return os.stat(f"/run/netns/{name}").st_ino


with facts.step("no_tracefs") as f:
    f["mounted"] = (TRACEFS / "events").is_dir()
    refusals(f, "trace")

with facts.step("no_module") as f:
    sh(f"mount -t tracefs tracefs {TRACEFS}")
    refusals(f, "trace")

insmod(REPO / "kernel" / "multis" / "multis.ko")
insmod(REPO / "kernel" / "multic" / "multic.ko")
vpc = build_vpc(receivers=3)
recv1, recv2, recv3 = vpc.receivers

with facts.step("no_headers") as f:
    f["build"] = Path(f"/lib/modules/{KVER}/build").exists()
    refusals(f, "trace")
    f["not_root"] = run([*TRACE, "--duration", "1"], user="65534")

with facts.step("setup") as f:
    # bcc compiles against /lib/modules/KVER/build, and Debian's split
    # headers need `source` too (vm-harness notes); the kit's tree is read-only
    overlay(f"/lib/modules/{KVER}")
    build = (KIT / "build").resolve()
    common = build.with_name(build.name.removesuffix("-amd64") + "-common")
    Path(f"/lib/modules/{KVER}/build").symlink_to(build)
    Path(f"/lib/modules/{KVER}/source").symlink_to(common)
    members = [recv1.addr, recv2.addr, NO_ROUTE, recv3.addr, NOT_LOCAL]
    admin(vpc.sender, "multis_admin", f"-A -m {GROUP} -j {','.join(members)}")
    admin(recv1, "multic_admin", f"-A -i {vpc.sender.addr} -p {PORT} -m {GROUP}")
    admin(recv3, "multic_admin", f"-A -i {vpc.sender.addr} -p {PORT} -m {GROUP}")
    # recv2 expects the server on another port: multic is hooked there, and
    # finds no entry for the copies to PORT
    admin(recv2, "multic_admin", f"-A -i {vpc.sender.addr} -p {PORT + 1} -m {GROUP}")
    vpc.sender.sh(f"ip route add {recv2.addr}/32 dev eth0 mtu 1000")
    mac = recv1.sh("cat /sys/class/net/eth0/address").strip()
    vpc.sender.sh(f"ip neigh replace {NOT_LOCAL} lladdr {mac} dev eth0 nud permanent")
    vpc.sender.sh(
        "nft -f - <<'EOF'\ntable ip hostpolicy {\n chain out {\n"
        "  type filter hook output priority 0;\n"
        f"  ip daddr {recv3.addr} counter drop\n }}\n}}\nEOF"
    )
    # the members' ARP first, so no copy waits behind a neighbour lookup
    with vpc.sender.inside():
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for host in (recv1, recv2):
        probe.sendto(b"arp", (host.addr, 9))
    probe.close()
    time.sleep(1)
    f["netns"] = {h.name: netns_of(h.name) for h in (vpc.sender, *vpc.receivers)}
    f["entries"] = {
        h.name: json.loads(admin(h, "multic_admin", "-L --json")) for h in vpc.receivers
    }
    f["formats"] = {
        name: (TRACEFS / "events" / name.replace(":", "/") / "format").read_text()
        for name in (
            "multis:multis_fanout",
            "multis:multis_not_sent",
            "multic:multic_restore",
            "multic:multic_skip",
            "multic:multic_unmarked",
        )
    }

with facts.step("tracefs") as f:
    for system in ("multis", "multic"):
        (TRACEFS / "events" / system / "enable").write_text("1")
    (TRACEFS / "trace").write_text("")
    send(3)
    for system in ("multis", "multic"):
        (TRACEFS / "events" / system / "enable").write_text("0")
    f["lines"] = [
        ln for ln in (TRACEFS / "trace").read_text().splitlines() if not ln.startswith("#")
    ]

# two datagrams from the sender, in a process perf itself starts once it records
PERF_SEND = (
    "import socket, time\n"
    "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
    f"s.bind(('10.0.0.1', 40000))\n"
    "for i in range(2):\n"
    f"    s.sendto(b'perf%d' % i + bytes(90), ('{GROUP}', {PORT}))\n"
    "    time.sleep(0.05)\n"
    "time.sleep(1)\n"
)

with facts.step("perf") as f:
    data = "/run/perf.data"
    f["record"] = run(
        ["perf", "record", "-a", "-o", data, "-e", "multis:multis_fanout",
         "-e", "multis:multis_not_sent", "-e", "multic:*", "--",
         "ip", "netns", "exec", vpc.sender.name, sys.executable, "-c", PERF_SEND]
    )  # fmt: skip
    script = run(["perf", "script", "-i", data])
    f["script"] = {
        "rc": script["rc"],
        "lines": script["out"].splitlines(),
        "err": script["err"][-2000:],
    }

with facts.step("bcc") as f:
    tracers = {
        "json": Tracer("--json", "--all-netns"),
        # the namespace trace runs in, by default
        "sender_drops": Tracer("--drops-only", "-m", GROUP, ns=vpc.sender.name),
        "recv2": Tracer("--netns", recv2.name),
        "count": Tracer("--count", "2", "--json", "--all-netns", "-p", str(PORT)),
        "other_group": Tracer("--json", "--all-netns", "-m", "239.9.9.9"),
    }
    try:
        f["ready_seconds"] = wait_ready(list(tracers.values()))
        send(3)
        send(2, size=1200, df=True)
        time.sleep(3)
    finally:
        f["runs"] = {name: t.stop() for name, t in tracers.items()}

with facts.step("marker_rewritten") as f:
    sh(
        f"ip netns exec {vpc.switch} nft -f - <<'EOF'\ntable bridge rewrite {{\n chain pre {{\n"
        "  type filter hook prerouting priority -5;\n"
        f"  ip daddr {recv1.addr} ip dscp set cs0\n }}\n}}\nEOF"
    )
    tracer = Tracer("--json", "--netns", f"/run/netns/{recv1.name}")
    try:
        f["ready_seconds"] = wait_ready([tracer])
        send(2)
    finally:
        f["run"] = tracer.stop()
    sh(f"ip netns exec {vpc.switch} nft delete table bridge rewrite")

with facts.step("stats") as f:
    f["server"] = json.loads(admin(vpc.sender, "multis_admin", f"-L -m {GROUP} --json"))
    # what the metrics say of the same reasons
    for host in (vpc.sender, recv1, recv2):
        host.sh(f"{BIN / 'multicast-proxy'} exporter --textfile /run/{host.name}.prom")
        f[f"metrics_{host.name}"] = [
            ln for ln in Path(f"/run/{host.name}.prom").read_text().splitlines()
            if ln.startswith(("multis_group_", "multic_entry_", "multic_no_entry"))
        ]  # fmt: skip

with facts.step("unload") as f:
    # every probe detached: the modules unload (a held tracepoint would refuse)
    f["rmmod"] = run(["rmmod", "multis", "multic"])
print("guest: done", flush=True)
