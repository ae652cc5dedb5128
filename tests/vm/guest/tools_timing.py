"""Guest side of tests/vm/tools_timing.py: how long the Python tools take in the VM.

Measures, against the real multis module: the start-up of ``multis_admin -S``
(wall time of the console script, and ``-X importtime`` of one run), and
restores of full states (``service multis start`` of a saved file, and the
restore alone in-process with its netlink round trips counted) for each
GROUPSxMEMBERS given as arguments.  Records facts; prints nothing to assert.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin import lean

lean.use_lean_pyroute2()

from multicast_admin.config import SERVER  # noqa: E402
from multicast_admin.netlink import GenlTransport, MultisNetlink, multismsg  # noqa: E402
from multicast_admin.server import Server  # noqa: E402
from tests.vm.guest.facts import Facts  # noqa: E402
from tests.vm.guest.vpc import insmod, sh  # noqa: E402

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / ".venv" / "bin"
KO = REPO / "kernel" / "multis" / "multis.ko"
STATE = Path("/tmp/timing-state")
ENV = {**os.environ, "MULTICAST_PROXY_CONFIG_DIR": str(STATE)}

facts = Facts()


def wall(argv: list[str], env: dict | None = None) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, env=env or ENV)
    return round(time.monotonic() - started, 2), proc


def importtime_top(stderr: str, count: int = 14) -> list[str]:
    rows = []
    for line in stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if m and len(m.group(3)) <= 3:  # top-level and first-level imports
            rows.append((int(m.group(2)), f"{int(m.group(2)) / 1e6:.2f} s {m.group(4)}"))
    return [text for _, text in sorted(rows, reverse=True)[:count]]


def state(groups: int, members: int) -> dict:
    return {
        "format": "multicast-proxy/multis",
        "version": 1,
        "groups": [
            {
                "group": f"239.{g // 250}.{g % 250}.1",
                "members": [f"10.{m // 250}.{m % 250}.{g % 250 + 1}" for m in range(members)],
            }
            for g in range(groups)
        ],
    }


class CountingTransport(GenlTransport):
    requests = 0

    def request(self, msg, flags):  # type: ignore[no-untyped-def]
        CountingTransport.requests += 1
        return super().request(msg, flags)


with facts.step("startup") as f:
    insmod(KO)
    STATE.mkdir(parents=True, exist_ok=True)
    f["python_pass"] = [wall([str(BIN / "python"), "-c", "pass"])[0] for _ in range(3)]
    f["import_click"] = [wall([str(BIN / "python"), "-c", "import click"])[0] for _ in range(3)]
    runs = [wall([str(BIN / "multis_admin"), "-S"]) for _ in range(3)]
    f["multis_admin_S"] = [seconds for seconds, _ in runs]
    f["exit_codes"] = [proc.returncode for _, proc in runs]
    _, proc = wall([str(BIN / "python"), "-X", "importtime", str(BIN / "multis_admin"), "-S"])
    f["importtime_top"] = importtime_top(proc.stderr)
    top_level = re.finditer(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)", proc.stderr)
    f["importtime_total"] = round(sum(int(m.group(1)) for m in top_level) / 1e6, 2)
    sh("rmmod multis")

OLD_RESTORE = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from multicast_admin import lean
lean.use_lean_pyroute2()
from multicast_admin.config import StateFile, restore_server
from multicast_admin.netlink import GenlTransport, MultisNetlink, multismsg
from multicast_admin.server import Server
count = [0]
class Counting(GenlTransport):
    def request(self, msg, flags):
        count[0] += 1
        return super().request(msg, flags)
started = time.monotonic()
report = restore_server(Server(MultisNetlink(Counting("multis", multismsg))),
                        StateFile("multis", sys.argv[2]))
print(json.dumps({"seconds": round(time.monotonic() - started, 2), "round_trips": count[0],
                  "ok": report.ok, "applied": report.applied}))
"""


def old_restore(code: str, groups: int, members: int, params: list[str]) -> dict:
    """The same restore with another version of multicast_admin (``code``: its parent)."""
    (STATE / "multis.json").write_text(json.dumps(state(groups, members)))
    sh(f"insmod {KO} {' '.join(params)}")
    try:
        argv = [str(BIN / "python"), "-c", OLD_RESTORE, code, str(STATE)]
        proc = subprocess.run(argv, capture_output=True, text=True, env=ENV)
        if proc.returncode != 0:
            return {"error": proc.stderr[-1500:]}
        return json.loads(proc.stdout.splitlines()[-1])
    finally:
        sh("rmmod multis")


for spec in sys.argv[1:]:
    if spec.startswith("old="):
        code, _, size = spec[4:].partition(":")
        groups, members = (int(x) for x in size.split("x"))
        with facts.step(f"old_restore_{size}") as f:
            params = [f"max_groups={max(groups, 10)}", f"max_members={max(members, 128)}"]
            f.update(old_restore(code, groups, members, params))
        continue
    groups, members = (int(x) for x in spec.split("x"))
    with facts.step(f"restore_{spec}") as f:
        (STATE / "multis.json").write_text(json.dumps(state(groups, members)))
        params = [f"max_groups={max(groups, 10)}", f"max_members={max(members, 128)}"]
        f["members"] = groups * members
        sh(f"insmod {KO} {' '.join(params)}")
        CountingTransport.requests = 0
        started = time.monotonic()
        server = Server(MultisNetlink(CountingTransport("multis", multismsg)))
        report = SERVER.restore(server, SERVER.state_file(STATE))
        f["restore_seconds"] = round(time.monotonic() - started, 2)
        f["round_trips"] = CountingTransport.requests
        f["ok"] = report.ok
        f["failures"] = report.failures[:3]
        f["applied"] = report.applied
        f["kernel_groups"] = server.stats().group_count
        server.close()
        if groups * members > 500_000:
            sh("rmmod multis")
            continue  # the save of millions takes longer than the run may
        # what `service multis stop` does before the unload: read it all back, save it
        server = Server(MultisNetlink(CountingTransport("multis", multismsg)))
        started = time.monotonic()
        saved = SERVER.save(server, SERVER.state_file(STATE))
        f["save_seconds"] = round(time.monotonic() - started, 2)
        f["saved_members"] = sum(len(g.members) for g in saved.groups)
        server.close()
        sh("rmmod multis")
        if groups > 10 or members > 128:
            continue  # the service loads the module with its default limits
        # the service's start, end to end (module load + restore), wall time
        seconds, proc = wall(
            [str(BIN / "multicast-proxy-service"), "multis", "start", "--ko", str(KO)]
        )
        f["service_start_seconds"] = seconds
        f["service_start"] = (proc.returncode, proc.stdout[-300:], proc.stderr[-300:])
        sh("rmmod multis")
print("guest: done", flush=True)
