"""Guest side of tests/vm/test_service.py: the RPMs, installed and used as the guide says.

Arguments: the multi_server and multi_client RPM files (built on the host for
this kernel).  The guest makes /usr and /lib/modules/KVER writable (overlays
over the read-only host root), then follows the guide: ``rpm -Uvh`` (with
--nodeps: this Debian's rpm database knows no python3 or kmod package),
``service multis start``, the installed ``multis_admin``/``multic_admin``,
``service ... stop``/``start``, and finally ``rpm -e``.  The sender's service
runs in the sender's network namespace and the client's in recv1's (state is
per namespace); recv2 is a member of the groups without a client
configuration, the control.  Every step records what it saw; the host asserts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin.netlink import MulticNetlink, MultisNetlink
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import Receiver, Sender, build_vpc, payloads, sh

SERVER_RPM, CLIENT_RPM = sys.argv[1:3]
KVER = os.environ["MCP_KVER"]
STATE = Path("/etc/multicast-proxy")
G1, G2 = "239.1.1.1", "239.2.2.2"
PORT = 5000
COUNT = 10

facts = Facts()


def run(cmd: str) -> dict:
    """Run a shell command; its exit status and output (stdout and stderr together)."""
    proc = subprocess.run(
        cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return {"rc": proc.returncode, "out": proc.stdout}


def loaded() -> list[str]:
    return sorted(m for m in ("multis", "multic") if Path(f"/sys/module/{m}").exists())


def state_files() -> dict:
    out = {}
    for name in ("multis.json", "multic.json"):
        path = STATE / name
        out[name] = json.loads(path.read_text()) if path.exists() else None
    return out


def kernel_state() -> dict:
    """What the kernel holds: the sender's groups and recv1's entries."""
    out: dict = {}
    if "multis" in loaded():
        with vpc.sender.inside(), MultisNetlink.open() as server:
            out["groups"] = {
                str(g.address): sorted(str(m.address) for m in server.members(g.address))
                for g in server.groups()
            }
    if "multic" in loaded():
        with recv1.inside(), MulticNetlink.open() as client:
            out["entries"] = sorted(f"{e.server}:{e.port}>{e.group}" for e in client.entries())
    return out


def exchange(group: str, port: int) -> dict:
    """Send COUNT datagrams from the sender to group:port; what recv1 and recv2 got."""
    data = payloads(f"{group}:{port}", COUNT, 100)
    socks = [Receiver(h, group, port) for h in (recv1, recv2)]
    tx = Sender(vpc.sender)
    try:
        tx.send(group, port, data)
        out = {}
        for rx in socks:
            got = rx.drain()
            out[rx.host.name] = {
                "count": len(got),
                "intact": [d.payload for d in got] == data,
                "sources": sorted({d.source[0] for d in got}),
            }
        return out
    finally:
        tx.close()
        for rx in socks:
            rx.close()


def in_ns(ns: str, cmd: str) -> dict:
    return run(f"ip netns exec {ns} {cmd}")


# --------------------------------------------------------------------------- setup


# The simulated VPC first: it loads the modules it needs (bridge, veth,
# nf_tables...) from the kit's full module tree.
vpc = build_vpc(receivers=2)
recv1, recv2 = vpc.receivers


def overlay(target: str, lower: str) -> None:
    work = Path("/run/overlay") / target.strip("/").replace("/", "_")
    (work / "up").mkdir(parents=True)
    (work / "work").mkdir()
    sh(
        f"mount -t overlay overlay -o lowerdir={lower},upperdir={work}/up,workdir={work}/work "
        f"{target}"
    )


def slim_module_tree() -> Path:
    """A writable /lib/modules/KVER with only the modules this test uses.

    The packages' %post runs `depmod -a KVER`, which over Debian's 4000
    modules takes minutes under TCG: the tree gets the modules loaded now,
    what multis/multic depend on (nf_defrag_ipv4), and the kernel's
    modules.builtin files.
    """
    full = Path(os.environ["MCP_KIT"]) / "lib" / "modules" / KVER
    slim = Path("/run/slim") / KVER
    slim.mkdir(parents=True)
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if (full / name).exists():
            (slim / name).write_bytes((full / name).read_bytes())
    names = {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}
    paths = {sh(f"modinfo -n {n}").strip() for n in names}
    for line in sh("modprobe --show-depends nf_defrag_ipv4").splitlines():
        if line.startswith("insmod "):
            paths.add(line.split()[1])
    for path in sorted(p for p in paths if p.startswith("/")):
        relative = Path(path).relative_to(f"/lib/modules/{KVER}")
        (slim / relative).parent.mkdir(parents=True, exist_ok=True)
        (slim / relative).write_bytes(Path(path).read_bytes())
    return slim


# Writable /usr and /lib/modules/KVER for rpm.  /lib is /usr/lib here: the
# overlay on /usr hides the harness's mounts on /lib/modules, so the module
# tree is mounted again.  RHEL's /etc/init.d is a link to rc.d/init.d, where
# the packages put their scripts (Debian's `service` looks in /etc/init.d).
slim = slim_module_tree()
overlay("/usr", "/usr")
sh("mount -t tmpfs tmpfs /lib/modules")
Path(f"/lib/modules/{KVER}").mkdir()
sh(f"mount --bind {slim} /lib/modules/{KVER}")
sh(f"depmod -a {KVER}")

with facts.step("install") as f:
    f["rpm"] = run(f"rpm -Uvh --nodeps {SERVER_RPM} {CLIENT_RPM}")
    f["query"] = run("rpm -q multi_server multi_client")["out"].split()
    for name in ("multis", "multic"):
        sh(f"ln -s ../rc.d/init.d/{name} /etc/init.d/{name}")
    f["files"] = {
        p: Path(p).exists()
        for p in (
            f"/lib/modules/{KVER}/extra/multis.ko",
            f"/lib/modules/{KVER}/extra/multic.ko",
            "/usr/sbin/multis_admin",
            "/usr/sbin/multic_admin",
            "/usr/sbin/multicast-proxy-service",
            "/etc/rc.d/init.d/multis",
            "/etc/rc.d/init.d/multic",
            "/usr/lib/systemd/system/multis.service",
            "/etc/modprobe.d/multis.conf",
            str(STATE),
        )
    }
    # %post ran depmod: modprobe finds the modules by name
    f["modinfo"] = {m: run(f"modinfo -n {m}")["out"].strip() for m in ("multis", "multic")}
    f["loaded"] = loaded()

with facts.step("baseline") as f:
    f["received"] = exchange(G1, PORT)

with facts.step("start") as f:
    f["multis"] = in_ns("sender", "service multis start")
    f["multic"] = in_ns("recv1", "service multic start")
    f["loaded"] = loaded()
    f["status_multis"] = in_ns("sender", "service multis status")

with facts.step("configure") as f:
    f["cli"] = [
        in_ns("sender", f"multis_admin -A -m {G1} -j 10.0.0.11,10.0.0.12"),
        in_ns("sender", f"multis_admin -A -m {G2} -j 10.0.0.11"),
        in_ns("recv1", f"multic_admin -A -i 10.0.0.1 -p {PORT} -m {G1}"),
        in_ns("recv1", f"multic_admin -A -i 10.0.0.1 -p 0 -m {G2}"),
    ]
    f["kernel"] = kernel_state()
    f["state_files"] = state_files()

with facts.step("flow") as f:
    f["g1"] = exchange(G1, PORT)
    f["g2_any_port"] = exchange(G2, 6000)

with facts.step("stop") as f:
    # a change the state files have not seen (made without the CLI): stop
    # must save the kernel's state, not keep the file's
    with vpc.sender.inside(), MultisNetlink.open() as server:
        server.join(IPv4Address(G2), [IPv4Address("10.0.0.12")])
    f["before"] = kernel_state()
    f["multis"] = in_ns("sender", "service multis stop")
    f["multic"] = in_ns("recv1", "service multic stop")
    f["loaded"] = loaded()
    f["state_files"] = state_files()
    f["status_multis"] = in_ns("sender", "service multis status")
    f["stop_again"] = in_ns("sender", "service multis stop")
    f["flow_stopped"] = exchange(G1, PORT)

with facts.step("corrupt") as f:
    path = STATE / "multis.json"
    good = path.read_bytes()
    corrupt = good[: len(good) // 2]
    path.write_bytes(corrupt)
    f["start"] = in_ns("sender", "service multis start")
    f["loaded"] = loaded()
    f["kept"] = path.read_bytes() == corrupt
    path.write_bytes(good)

with facts.step("restart") as f:
    f["multis"] = in_ns("sender", "service multis start")
    f["multic"] = in_ns("recv1", "service multic start")
    f["loaded"] = loaded()
    f["kernel"] = kernel_state()
    f["start_again"] = in_ns("sender", "service multis start")
    f["g1"] = exchange(G1, PORT)
    f["g2_any_port"] = exchange(G2, 7000)

with facts.step("erase") as f:
    # each package erased in the namespace its service runs in, where
    # %preun's `service ... stop` saves that namespace's state
    f["kernel_before"] = kernel_state()
    f["rpm"] = [
        in_ns("sender", "rpm -e multi_server"),
        in_ns("recv1", "rpm -e multi_client"),
    ]
    f["loaded"] = loaded()
    f["query"] = run("rpm -q multi_server multi_client")["rc"]
    f["files_left"] = sorted(
        str(p)
        for p in (
            Path("/usr/sbin/multis_admin"),
            Path("/usr/sbin/multicast-proxy-service"),
            Path("/usr/lib/multicast-proxy"),
            Path(f"/lib/modules/{KVER}/extra/multis.ko"),
            Path("/etc/rc.d/init.d/multis"),
        )
        if p.exists()
    )
    f["state_files"] = state_files()

print("guest: done", flush=True)
