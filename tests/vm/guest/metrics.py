"""Guest side of tests/vm/test_metrics.py: a real Prometheus scrapes the exporter.

On the simulated VPC (the switch drops multicast), the sender fans a group
out to two receivers; `multicast-proxy exporter` runs on the sender and on a
receiver, and Debian's Prometheus server (unpacked on the host, argv[1])
scrapes both every second.  What Prometheus's HTTP API answers is recorded,
with what the CLIs' --json says of the same counters; the host asserts.

Argument: the prometheus binary.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.vm.guest.facts import Facts
from tests.vm.guest.installed import exchange
from tests.vm.guest.vpc import build_vpc, insmod, sh

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / ".venv" / "bin"
PROMETHEUS = sys.argv[1]
GROUP, PORT, COUNT, MORE = "239.1.1.1", 5000, 20, 5
EXPORTER_PORT = 9717

facts = Facts()
insmod(REPO / "kernel" / "multis" / "multis.ko")
insmod(REPO / "kernel" / "multic" / "multic.ko")
vpc = build_vpc(receivers=2)
sender = vpc.sender
recv1, recv2 = vpc.receivers
procs: list[subprocess.Popen] = []


def spawn(ns: str, argv: list[str], log: str) -> None:
    out = open(f"/run/{log}.log", "w")  # noqa: SIM115 (lives as long as the process)
    procs.append(subprocess.Popen(["ip", "netns", "exec", ns, *argv], stdout=out, stderr=out))


def query(expr: str) -> list[dict]:
    """An instant query through Prometheus's HTTP API, from the sender's namespace."""
    url = "http://127.0.0.1:9090/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with sender.inside(), urllib.request.urlopen(url, timeout=10) as reply:
        answer = json.load(reply)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def values(expr: str, keep: tuple[str, ...] = ()) -> dict[str, float]:
    """{labels as sorted "k=v,..." text: value} of a query's vector (without the
    target's labels, unless kept)."""
    out = {}
    for series in query(expr):
        labels = {
            k: v
            for k, v in series["metric"].items()
            if k in keep or k not in ("__name__", "instance", "job")
        }
        out[",".join(f"{k}={v}" for k, v in sorted(labels.items()))] = float(series["value"][1])
    return out


def wait_for(expr: str, want: float, seconds: float = 240.0) -> float:
    """Until the query's sum over its series is ``want``; how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if sum(values(expr, ("instance",)).values()) == want:
                return round(time.monotonic() - started, 1)
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError(f"{expr} never reached {want}: {values(expr, ('instance',))}")


def fetch(url: str, seconds: float = 180.0) -> str:
    """GET ``url`` from the sender's namespace, retrying while the server starts."""
    started = time.monotonic()
    while True:
        try:
            with sender.inside(), urllib.request.urlopen(url, timeout=30) as reply:
                return reply.read().decode()
        except OSError:
            if time.monotonic() - started > seconds:
                raise
            time.sleep(1)


def targets() -> list[dict]:
    """Prometheus's view of each target: health and last error."""
    answer = json.loads(fetch("http://127.0.0.1:9090/api/v1/targets"))
    return [
        {k: t.get(k) for k in ("scrapeUrl", "health", "lastError", "lastScrapeDuration")}
        for t in answer["data"]["activeTargets"]
    ]


def cli_json(host, tool: str, *args: str) -> dict:
    return json.loads(host.sh(f"{BIN / tool} {' '.join(args)} --json"))


with facts.step("configure") as f:
    members = ",".join(h.addr for h in vpc.receivers)
    f["server"] = sender.sh(f"{BIN / 'multis_admin'} -A -m {GROUP} -j {members}")
    for host in vpc.receivers:
        host.sh(f"{BIN / 'multic_admin'} -A -i {sender.addr} -p {PORT} -m {GROUP}")
    # resolve the members' ARP first: copies queued behind an unresolved
    # neighbour can be overtaken by later ones, as any unicast can
    with sender.inside():
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for host in vpc.receivers:
        probe.sendto(b"arp", (host.addr, 9))
    probe.close()
    time.sleep(1)
    f["received"] = exchange(sender, vpc.receivers, GROUP, PORT, COUNT)

with facts.step("scrape") as f:
    for host in (sender, recv1):
        spawn(host.name, [str(BIN / "multicast-proxy"), "exporter", "--listen",
                          f"0.0.0.0:{EXPORTER_PORT}"], f"exporter-{host.name}")  # fmt: skip
    # each exporter answers by itself first (its start-up is seconds under TCG)
    f["direct"] = {
        host.name: fetch(f"http://{addr}:{EXPORTER_PORT}/metrics").count("\n")
        for host, addr in ((sender, "127.0.0.1"), (recv1, recv1.addr))
    }
    Path("/run/prom").mkdir()
    Path("/run/prom/prometheus.yml").write_text(
        # Python under TCG, on a busy machine, takes seconds to answer a
        # scrape (and Go's to make a connection): generous, as a real
        # scrape_timeout is for a real host
        "global:\n  scrape_interval: 15s\n  scrape_timeout: 15s\n"
        "scrape_configs:\n  - job_name: multicast-proxy\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{EXPORTER_PORT}', '{recv1.addr}:{EXPORTER_PORT}']\n"
    )
    spawn(sender.name, [PROMETHEUS, "--config.file=/run/prom/prometheus.yml",
                        "--storage.tsdb.path=/run/prom/data",
                        "--web.listen-address=127.0.0.1:9090"], "prometheus")  # fmt: skip
    try:
        f["both_up_after"] = wait_for("up", 2)
    finally:
        f["targets"] = targets()
    f["prometheus"] = {
        "datagrams": values(f'multis_group_datagrams_total{{group="{GROUP}"}}'),
        "packets": values(f'multis_group_packets_total{{group="{GROUP}"}}'),
        "member_packets": values("multis_member_packets_total"),
        "group_drops": values(f'multis_group_dropped_total{{group="{GROUP}"}}'),
        "entry_packets": values("multic_entry_packets_total"),
        "loaded": values("multicast_proxy_module_loaded"),
    }
    f["cli"] = {
        "group": cli_json(sender, "multis_admin", "-L", "-m", GROUP),
        "entries": cli_json(recv1, "multic_admin", "-L"),
    }

with facts.step("live") as f:
    # more traffic: Prometheus sees the new counts at its next scrapes
    exchange(sender, vpc.receivers, GROUP, PORT, MORE)
    f["seconds"] = wait_for(f'multis_group_packets_total{{group="{GROUP}"}}', 2 * (COUNT + MORE))
    # each target is scraped on its own schedule: the receiver's too
    f["entry_seconds"] = wait_for("multic_entry_packets_total", COUNT + MORE)
    f["entry_packets"] = values("multic_entry_packets_total")
    f["up"] = values("up", ("instance",))

for proc in procs:
    proc.terminate()
exits = []
for proc in procs:
    try:
        exits.append(proc.wait(timeout=60))
    except subprocess.TimeoutExpired:
        proc.kill()
        exits.append(f"still running 60 s after SIGTERM: {proc.args}")
facts["exits"] = exits
facts["logs_tail"] = {p.name: p.read_text()[-1500:] for p in Path("/run").glob("*.log")}
sh("rmmod multis multic")
print("guest: done", flush=True)
