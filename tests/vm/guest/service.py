"""Guest side of tests/vm/test_service.py: the RPMs, installed and used as the guide says.

Arguments: the multi_server, multi_client and multicast-proxy-tools RPM files
of release 1, then the same of release 2 (built on the host for this
kernel).  The guest makes /usr and /lib/modules/KVER writable (overlays
over the read-only host root), then follows the guide: ``rpm -Uvh`` (with
--nodeps: this Debian's rpm database knows no python3 or kmod package),
``service multis start``, the installed ``multis_admin``/``multic_admin``,
``service ... stop``/``start``, ``rpm -Uvh`` to release 2, ``rpm -V``, and
finally ``rpm -e``.  The sender's service
runs in the sender's network namespace and the client's in recv1's (state is
per namespace); recv2 is a member of the groups without a client
configuration, the control.  Every step records what it saw; the host asserts.
"""

from __future__ import annotations

import json
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin.cli_common import Env
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from tests import killing
from tests.vm.guest import installed
from tests.vm.guest.etcd import GuestEtcd
from tests.vm.guest.facts import Facts
from tests.vm.guest.installed import KVER, in_ns, loaded, run, writable_root
from tests.vm.guest.vpc import build_vpc

SERVER_RPM, CLIENT_RPM, TOOLS_RPM, SERVER_RPM2, CLIENT_RPM2, TOOLS_RPM2 = sys.argv[1:7]
PACKAGES = "multi_server multi_client multicast-proxy-tools"
STATE = Path("/etc/multicast-proxy")
G1, G2 = "239.1.1.1", "239.2.2.2"
PORT = 5000
COUNT = 10

facts = Facts()


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


# --------------------------------------------------------------------------- setup


# The simulated VPC first: it loads the modules it needs (bridge, veth,
# nf_tables...) from the kit's full module tree.
vpc = build_vpc(receivers=2)
recv1, recv2 = vpc.receivers
writable_root()


def exchange(group: str, port: int) -> dict:
    return installed.exchange(vpc.sender, [recv1, recv2], group, port, COUNT)


with facts.step("install") as f:
    f["rpm"] = run(f"rpm -Uvh --nodeps {TOOLS_RPM} {SERVER_RPM} {CLIENT_RPM}")
    f["query"] = run(f"rpm -q {PACKAGES}")["out"].split()
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

with facts.step("agent") as f:
    # the fleet agent from the installed package: its files, its help, the
    # vendored etcd3gw against a real etcd (the VM's own namespace), and the
    # SysV script starting it (with a configuration of this test's, so that
    # agent.conf stays as shipped for rpm -V) and stopping it
    f["files"] = {
        p: Path(p).exists()
        for p in (
            "/etc/rc.d/init.d/multicast-proxy-agent",
            "/usr/lib/systemd/system/multicast-proxy-agent.service",
            "/etc/multicast-proxy/agent.conf",
        )
    }
    f["help"] = run("multicast-proxy agent --help")
    etcd = GuestEtcd("rpm", "127.0.0.1", port=23790)
    etcd.start()
    conf = Path("/run/agent-rpm.conf")
    conf.write_text(f"[etcd]\nendpoints = {etcd.url}\ndomain = rpm\n[agent]\naddress = 192.0.2.7\n")
    agent_env = (
        f"MULTICAST_PROXY_AGENT_CONF={conf} MULTICAST_PROXY_AGENT_PIDFILE=/run/agent-rpm.pid"
        " MULTICAST_PROXY_AGENT_LOG=/run/agent-rpm.log"
    )
    f["group_add"] = run(f"{agent_env} multicast-proxy group add 239.9.9.9 --port 5999")
    f["group_list"] = run(f"{agent_env} multicast-proxy group list --json")
    init = "/etc/rc.d/init.d/multicast-proxy-agent"
    f["init_start"] = run(f"{agent_env} {init} start")
    f["init_status"] = run(f"{agent_env} {init} status")
    seen = False
    deadline = time.monotonic() + 120  # the agent's first start under TCG is slow
    while not seen and time.monotonic() < deadline:
        f["status"] = run(f"{agent_env} multicast-proxy status --json")
        seen = f["status"]["rc"] == 0 and "192.0.2.7" in f["status"]["out"]
        if not seen:
            time.sleep(2)
    f["init_stop"] = run(f"{agent_env} {init} stop")
    f["init_status_after"] = run(f"{agent_env} {init} status")
    f["status_after"] = run(f"{agent_env} multicast-proxy status --json")
    f["log"] = Path("/run/agent-rpm.log").read_text() if Path("/run/agent-rpm.log").exists() else ""
    etcd.kill()

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

with facts.step("lost_state") as f:
    # issue 9 item 8: stop saves and unloads; an unprivileged user's listing
    # (which autoloaded an empty module while the families had an alias: it
    # must not load it now); the module loaded by something other than the
    # service (modprobe); root's change; start.  Then the other way the state
    # was lost: stop; modprobe; start.  Each side in the namespace its service
    # runs in; at the end, the state the later steps expect again.
    NOBODY = "setpriv --reuid=nobody --regid=nogroup --clear-groups --inh-caps=-all"
    for side, ns, listing, change, undo in (
        ("multis", "sender", "multis_admin -S", f"multis_admin -A -m {G1} -j 10.0.0.13",
         f"multis_admin -A -m {G1} -q 10.0.0.13"),
        ("multic", "recv1", "multic_admin -L", f"multic_admin -A -i 10.0.0.2 -p 6000 -m {G1}",
         "multic_admin -D -i 10.0.0.2 -p 6000"),
    ):  # fmt: skip
        r: dict = {"before": kernel_state(), "files_before": state_files()}
        r["stop"] = in_ns(ns, f"service {side} stop")
        r["unloaded"] = side not in loaded()
        r["listing"] = in_ns(ns, f"{NOBODY} {listing}")
        r["autoloaded"] = side in loaded()
        r["modprobe"] = in_ns(ns, f"modprobe {side}")
        r["loaded"] = side in loaded()
        r["change"] = in_ns(ns, change)
        r["start"] = in_ns(ns, f"service {side} start")
        r["after"] = kernel_state()
        r["files_after"] = state_files()
        r["stop2"] = in_ns(ns, f"service {side} stop")
        r["modprobe2"] = in_ns(ns, f"modprobe {side}")
        r["loaded2"] = side in loaded()
        r["status2"] = in_ns(ns, f"service {side} status")
        r["start2"] = in_ns(ns, f"service {side} start")
        r["after2"] = kernel_state()
        r["files_after2"] = state_files()
        r["undo"] = in_ns(ns, undo)
        r["final"] = kernel_state()
        r["files_final"] = state_files()
        f[side] = r

with facts.step("kill9") as f:
    # kill -9 of the CLI at random points of a change, against the real
    # modules, in recv2 (whose namespace no service has restored)
    for side in ("multis", "multic"):
        directory = Path(f"/tmp/kill-{side}")
        directory.mkdir()
        with recv2.inside():
            result = killing.campaign(side, Env(state_dir=directory), directory, 40)
            the_side = killing.SERVER if side == "multis" else killing.CLIENT
            with the_side.open() as handle:
                in_kernel = the_side.from_kernel(handle)
        f[side] = {
            **result.to_json(),
            "file_equals_kernel": the_side.read(the_side.state_file(directory)) == in_kernel,
        }

with facts.step("upgrade") as f:
    # each side upgraded in the namespace its service runs in (one host each,
    # in the field), where the old package's %postun restarts that service
    f["kernel_before"] = kernel_state()
    f["state_files_before"] = state_files()
    f["server"] = in_ns("sender", f"rpm -Uvh --nodeps {TOOLS_RPM2} {SERVER_RPM2}")
    f["client"] = in_ns("recv1", f"rpm -Uvh --nodeps {CLIENT_RPM2}")
    f["query"] = run(f"rpm -q {PACKAGES}")["out"].split()
    f["loaded"] = loaded()
    f["kernel"] = kernel_state()
    f["state_files"] = state_files()
    f["g1"] = exchange(G1, PORT)
    f["verify"] = run(f"rpm -V --nodeps {PACKAGES}")
    f["owner"] = run(f"rpm -qf {STATE}/multis.json {STATE}/multic.json")["out"].split()

with facts.step("erase") as f:
    # each package erased in the namespace its service runs in, where
    # %preun's `service ... stop` saves that namespace's state
    f["kernel_before"] = kernel_state()
    f["rpm"] = [
        in_ns("sender", "rpm -e multi_server"),
        in_ns("recv1", "rpm -e multi_client"),
        run("rpm -e multicast-proxy-tools"),
    ]
    f["loaded"] = loaded()
    f["query"] = run(f"rpm -q {PACKAGES}")["rc"]
    f["files_left"] = sorted(
        str(p)
        for p in (
            Path("/usr/sbin/multis_admin"),
            Path("/usr/sbin/multic_admin"),
            Path("/usr/sbin/multicast-proxy-service"),
            Path("/usr/lib/multicast-proxy"),
            Path(f"/lib/modules/{KVER}/extra/multis.ko"),
            Path("/etc/rc.d/init.d/multis"),
        )
        if p.exists()
    )
    f["state_files"] = state_files()

print("guest: done", flush=True)
