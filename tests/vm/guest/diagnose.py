"""Guest side of tests/vm/test_diagnose.py: each situation created for real, diagnosed.

On the simulated VPC (tests/vm/guest/vpc.py) the sender fans a group out to
recv1.  Each step breaks one thing the troubleshooting table names (the
state not restored, the group missing, a member with no route, nothing
sending, an OUTPUT rule dropping the copies; on the receiver the entry
missing, no application joined, a join on the wrong interface, the marker
rewritten by an nft rule on the switch) and records what
``multicast-proxy diagnose --json`` says and its exit status; the last steps
are the healthy cases.  The host asserts.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import Host, Receiver, Sender, build_vpc, insmod, sh

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / ".venv" / "bin"
GROUP, OTHER, PORT = "239.1.1.1", "239.1.1.9", 5000
NO_ROUTE = "192.168.77.7"
WAIT = "3"

facts = Facts()
insmod(REPO / "kernel" / "multis" / "multis.ko")
insmod(REPO / "kernel" / "multic" / "multic.ko")
vpc = build_vpc(receivers=1)
sender = vpc.sender
(recv,) = vpc.receivers


def diagnose(host: Host, *args: str, human: bool = False) -> dict:
    """``multicast-proxy diagnose ARGS --wait 3 --json`` in ``host``: exit status and answer."""
    argv = ["ip", "netns", "exec", host.name, str(BIN / "multicast-proxy"), "diagnose"]
    argv += [*args, "--wait", WAIT] + ([] if human else ["--json"])
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    out: dict = {"rc": proc.returncode, "stderr": proc.stderr[-2000:]}
    if human:
        out["lines"] = proc.stdout.splitlines()
    else:
        out["json"] = json.loads(proc.stdout) if proc.stdout.strip() else None
    return out


def receiving() -> dict:
    return diagnose(recv, "-m", GROUP, "-i", sender.addr, "-p", str(PORT))


@contextlib.contextmanager
def traffic() -> Iterator[dict]:
    """An application on the sender sending to GROUP:PORT every 50 ms while the block runs."""
    tx = Sender(sender)
    stop = threading.Event()
    sent = {"count": 0}

    def run() -> None:
        while not stop.is_set():
            tx.send(GROUP, PORT, [b"diagnose" * 8])
            sent["count"] += 1
            stop.wait(0.05)

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield sent
    finally:
        stop.set()
        thread.join()
        tx.close()


def nft(ns: str, ruleset: str) -> None:
    sh(f"ip netns exec {ns} nft -f - <<'EOF'\n{ruleset}\nEOF")


admin_s = f"ip netns exec {sender.name} {BIN / 'multis_admin'}"
admin_c = f"ip netns exec {recv.name} {BIN / 'multic_admin'}"

# --------------------------------------------------------------------------- sender

with facts.step("sender_not_restored") as f:
    # insmod, not `service multis start`: the kernel holds no saved state
    f["diagnose"] = diagnose(sender, "-m", GROUP)

with facts.step("sender_group_missing") as f:
    sh(f"{admin_s} -A -m {OTHER} -j {recv.addr}")  # restores the (empty) state first
    f["diagnose"] = diagnose(sender, "-m", GROUP)

with facts.step("sender_member_no_route") as f:
    sh(f"{admin_s} -A -m {GROUP} -j {recv.addr},{NO_ROUTE}")
    f["diagnose"] = diagnose(sender, "-m", GROUP)
    sh(f"{admin_s} -A -m {GROUP} -q {NO_ROUTE}")

with facts.step("sender_nothing_sending") as f:
    f["diagnose"] = diagnose(sender, "-m", GROUP)

with facts.step("sender_output_drops_copies") as f:
    nft(
        sender.name,
        "table inet host {\n  chain output {\n    type filter hook output priority 0;\n"
        f"    ip daddr {recv.addr} udp dport {PORT} counter drop\n  }}\n}}",
    )
    with traffic() as sent:
        f["diagnose"] = diagnose(sender, "-m", GROUP)
    f["sent"] = sent["count"]
    sh(f"ip netns exec {sender.name} nft delete table inet host")

with facts.step("sender_healthy") as f:
    with traffic() as sent:
        f["diagnose"] = diagnose(sender, "-m", GROUP, human=True)
    f["sent"] = sent["count"]

# --------------------------------------------------------------------------- receiver

with facts.step("receiver_entry_missing") as f:
    sh(f"{admin_c} -C")  # a change: restores the (empty) saved state first
    f["diagnose"] = receiving()

with facts.step("receiver_not_joined") as f:
    sh(f"{admin_c} -A -i {sender.addr} -p {PORT} -m {GROUP}")
    f["diagnose"] = receiving()

with facts.step("receiver_wrong_interface") as f:
    recv.sh("ip link add dummy0 type dummy")
    recv.sh("ip addr add 192.168.5.1/24 dev dummy0")
    recv.sh("ip link set dummy0 up")
    with recv.inside():
        app = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    app.bind(("", PORT))
    mreq = struct.pack("4s4s", socket.inet_aton(GROUP), socket.inet_aton("192.168.5.1"))
    app.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    with traffic():
        f["diagnose"] = receiving()
    app.close()

with facts.step("receiver_marker_rewritten") as f:
    # the switch rewrites DSCP CS7 (TOS 0xE0, the marker) to CS0 on forwarding
    nft(
        vpc.switch,
        "table bridge qos {\n  chain rewrite {\n    type filter hook forward priority -5;\n"
        "    ip dscp cs7 counter ip dscp set cs0\n  }\n}",
    )
    app = Receiver(recv, GROUP, PORT)
    with traffic():
        f["diagnose"] = receiving()
    f["received"] = len(app.drain())
    app.close()
    f["rewritten"] = sh(f"ip netns exec {vpc.switch} nft list table bridge qos")
    sh(f"ip netns exec {vpc.switch} nft delete table bridge qos")

with facts.step("receiver_healthy") as f:
    app = Receiver(recv, GROUP, PORT)
    with traffic() as sent:
        f["diagnose"] = diagnose(recv, "-m", GROUP, "-i", sender.addr, "-p", str(PORT), human=True)
    f["sent"] = sent["count"]
    f["received"] = len(app.drain())
    app.close()

sh("rmmod multis multic")
print("guest: done", flush=True)
