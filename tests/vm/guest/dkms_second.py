"""Guest side of tests/vm/test_dkms.py, second boot: the modules dkms built for this kernel.

Argument: the directory holding the multis.ko and multic.ko that `dkms
autoinstall -k THIS_KERNEL` built in the first boot (under another running
kernel).  They are loaded here, in the kernel they were built for, and carry
multicast across the simulated VPC: a smoke check of the data path.
"""

from __future__ import annotations

import os
import sys
from ipaddress import IPv4Address
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from multicast_admin.netlink import MulticNetlink, MultisNetlink
from tests.vm.guest import installed
from tests.vm.guest.facts import Facts
from tests.vm.guest.installed import loaded
from tests.vm.guest.vpc import build_vpc, insmod, sh

MODULES = Path(sys.argv[1])
G1 = "239.1.1.1"
PORT = 5000
COUNT = 10

facts = Facts()
vpc = build_vpc(receivers=1)
(recv1,) = vpc.receivers

with facts.step("load") as f:
    f["kernel"] = os.uname().release
    f["vermagic"] = {
        m: sh(f"modinfo -F vermagic {MODULES / m}.ko").split()[:1] for m in ("multis", "multic")
    }
    for m in ("multis", "multic"):
        insmod(MODULES / f"{m}.ko")
    f["loaded"] = loaded()

with facts.step("smoke") as f:
    with vpc.sender.inside(), MultisNetlink.open() as server:
        server.join(IPv4Address(G1), [IPv4Address("10.0.0.11")])
    with recv1.inside(), MulticNetlink.open() as client:
        client.add(IPv4Address("10.0.0.1"), PORT, IPv4Address(G1))
    f["received"] = installed.exchange(vpc.sender, [recv1], G1, PORT, COUNT)
    sh("rmmod multis multic")
    f["loaded"] = loaded()

print("guest: done", flush=True)
