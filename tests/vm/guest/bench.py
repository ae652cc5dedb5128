"""Guest side of `make bench`: 1 group x 128 members, multis against the alternative.

The alternative is the application sending each datagram to every member
itself (128 sendto() calls per message).  Both run in the same VM, on the
same topology, alternately, three times each, with 64- and 1316-byte
payloads.  "Delivered" is what arrives at the receiving host's interface.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin.netlink import MulticNetlink, MultisNetlink
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import build_vpc, insmod, sh

REPO = Path(__file__).resolve().parents[3]
BLAST = sys.argv[1]
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 3.0
GROUP, PORT = "239.1.1.1", 5000
MEMBERS = [f"10.0.1.{i}" for i in range(1, 129)]

facts = Facts()
vpc = build_vpc(receivers=1)
recv = vpc.receivers[0]
for member in MEMBERS:
    recv.sh(f"ip addr add {member}/24 dev eth0")
vpc.sender.sh("ip route add 10.0.1.0/24 dev eth0")
insmod(REPO / "kernel/multis/multis.ko")
insmod(REPO / "kernel/multic/multic.ko")
with vpc.sender.inside():
    server = MultisNetlink.open()
with recv.inside():
    client = MulticNetlink.open()
server.join(IPv4Address(GROUP), [IPv4Address(m) for m in MEMBERS])
client.add(IPv4Address(vpc.sender.addr), PORT, IPv4Address(GROUP))


def rx_packets() -> int:
    info = json.loads(recv.sh("ip -s -j link show eth0"))
    return int(info[0]["stats64"]["rx"]["packets"])


def trial(mode: str, size: int) -> dict:
    args = [BLAST, mode, str(SECONDS), str(size), vpc.sender.addr, GROUP, str(PORT)]
    if mode == "unicast":
        args += MEMBERS
    server.reset_stats()
    before = rx_packets()
    out = subprocess.run(
        ["ip", "netns", "exec", vpc.sender.name, *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    time.sleep(0.5)
    result = json.loads(out)
    result["delivered"] = rx_packets() - before
    result["copies_per_second"] = result["delivered"] / result["seconds"]
    result["multis"] = server.get_group(IPv4Address(GROUP)).stats.to_json()
    return result


with facts.step("bench") as f:
    f["members"] = len(MEMBERS)
    f["seconds_per_trial"] = SECONDS
    f["kernel"] = sh("uname -r").strip()
    f["cpus"] = sh("nproc").strip()
    runs = []
    for size in (64, 1316):
        for _ in range(3):
            for mode in ("group", "unicast"):
                r = trial(mode, size)
                r["size"] = size
                runs.append(r)
                print(json.dumps(r), flush=True)
    f["runs"] = runs

server.close()
client.close()
sh("rmmod multis multic")
print("guest: done", flush=True)
