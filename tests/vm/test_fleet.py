"""The fleet end to end in a real kernel (one VM boot): etcd and agents alone.

Guest side: tests/vm/guest/fleet.py.  On the simulated VPC, etcd runs in a
namespace of its own (10.0.0.5), the sender and three receivers each run
``multicast-proxy agent``, and the only configuration command is
``multicast-proxy group add``.  Then: the receivers' applications join and
every datagram arrives byte for byte; one leaves and gets nothing more, the
sender no longer copying to it; an agent killed with SIGKILL has its host
dropped within the lease TTL + 1 s; etcd is down for MCP_FLEET_OUTAGE s
(default 30) while traffic flows, without one datagram lost, and a join made
meanwhile takes effect within 5 s of its return; and MCP_FLEET_CYCLES
(default 10; `make bench-fleet-vm` runs 50) joins and leaves are timed, join
to first copy and leave to last copy (goal p99 <= 2 s, docs/performance.md).
"""

from __future__ import annotations

import json
import os

import pytest

from tests.vm.conftest import GuestFacts, boot_and_run

GUEST = "tests/vm/guest/fleet.py"
CYCLES = int(os.environ.get("MCP_FLEET_CYCLES", "10"))
OUTAGE = float(os.environ.get("MCP_FLEET_OUTAGE", "30"))
SENDER, RECV1, RECV2, RECV3 = "10.0.0.1", "10.0.0.11", "10.0.0.12", "10.0.0.13"
GROUP, PORT = "239.1.1.1", 5000
# What the figures must stay under in this VM.  The goal is 2 s (p99, join to
# first copy and leave to last copy); under TCG, Python runs 25-30 times
# slower than on a host and four agents share two emulated CPUs with the
# test itself, so the VM's figures are reported (docs/performance.md) and
# bounded here, not held to the goal.
CONVERGENCE_GOAL = 2.0
CONVERGENCE_VM_BOUND = 8.0


@pytest.fixture(scope="module")
def facts() -> GuestFacts:
    return boot_and_run(GUEST, str(CYCLES), str(OUTAGE), timeout=1800, tcg_thread="multi")


def step(facts: GuestFacts, name: str) -> dict:
    record = facts[name]
    assert "error" not in record, record["error"]
    return record


def reached(result: list) -> float:
    """A wait_for() result that reached its value: the seconds it took."""
    ok, seconds, last = result
    assert ok, f"not reached in {seconds} s, last: {last}"
    return seconds


def test_only_group_add_configures_the_fleet(facts):
    setup = step(facts, "setup")
    assert set(setup["restored"].values()) == {0}, setup["restored"]
    agents = step(facts, "agents")
    assert agents["add"]["rc"] == 0, agents["add"]
    assert "group 239.1.1.1 port 5000: defined (domain vm)" in agents["add"]["out"]
    reached(agents["registered"])
    for name, result in agents["entries"].items():
        assert reached(result) >= 0, name
    assert agents["nothing_before_joins"] == []  # nobody joined yet: no member


def test_every_datagram_after_convergence_arrives_byte_for_byte(facts):
    join = step(facts, "join")
    reached(join["etcd"])
    reached(join["sender"])
    for name in ("recv1", "recv2", "recv3"):
        got = join["received"][name]
        assert got["count"] == got["sent"], (name, got)
        assert got["intact"], (name, got)
        assert got["sources"] == [f"{SENDER}:40000"]
        assert got["destinations"] == [GROUP]


def test_a_receiver_that_leaves_gets_nothing_more(facts):
    leave = step(facts, "leave")
    reached(leave["etcd"])
    reached(leave["sender"])  # the sender no longer copies to recv3
    assert leave["frames_to_recv3"] == []  # nothing on recv3's wire
    for name in ("recv1", "recv2"):
        got = leave["received"][name]
        assert (got["count"], got["intact"]) == (got["sent"], True), (name, got)


def test_a_killed_agents_host_is_dropped_within_the_lease_ttl(facts):
    kill = step(facts, "kill")
    ttl = kill["ttl"]
    # the lease drops the host from the fleet (etcd, what status shows) ...
    assert reached(kill["etcd"]) <= ttl + 1
    # ... and the sender stops copying to it once it saw that
    reached(kill["sender"])
    print(f"\nkilled agent: out of etcd in {kill['etcd_seconds']} s, out of the sender's"
          f" multis in {kill['sender_seconds']} s (TTL {ttl} s)")  # fmt: skip
    assert kill["sender_seconds"] <= ttl + 1 + CONVERGENCE_VM_BOUND
    assert RECV2 not in kill["agents"]
    got = kill["received"]["recv1"]
    assert (got["count"], got["intact"]) == (got["sent"], True)


def test_an_etcd_outage_loses_nothing_and_a_join_meanwhile_takes_effect(facts):
    outage = step(facts, "outage")
    assert outage["etcd_down_seconds"] >= OUTAGE
    assert outage["sent"] > outage["sent_during_outage"] > OUTAGE / 0.1  # traffic flowed
    assert outage["recv1_missing"] == []  # fail static: not one datagram lost
    assert outage["recv1_duplicates"] == 0
    # the join made while etcd was down: nothing until it is back...
    assert outage["sender_during"] == [RECV1]
    assert outage["recv3_during"] == 0
    # ... then copies within 5 s (the goal; measured from etcd answering
    # its health check, so late rather than early; bounded like the
    # convergence figures under TCG: 2.7 s and 5.1 s in two runs)
    late = outage["recv3_first_copy_after_return"]
    assert late is not None
    print(f"\nthe join made during the outage: first copy {late} s after etcd's return")
    assert late <= 5 + CONVERGENCE_VM_BOUND - CONVERGENCE_GOAL
    assert outage["sender_after"] == [RECV1, RECV3]


def test_join_and_leave_converge_quickly(facts):
    conv = step(facts, "convergence")
    print(f"\nconvergence over {conv['cycles']} cycles: join {conv['join']}, leave {conv['leave']}")
    assert conv["misses"] == 0
    assert conv["join"]["n"] == conv["leave"]["n"] == CYCLES
    for what in ("join", "leave"):
        p99 = conv[what]["p99"]
        if p99 > CONVERGENCE_GOAL:
            print(f"{what}: p99 {p99} s is over the {CONVERGENCE_GOAL} s goal (TCG)")
        assert p99 <= CONVERGENCE_VM_BOUND


def test_status_shows_the_fleet(facts):
    status = step(facts, "status")["status"]
    assert status["rc"] == 0, status
    view = json.loads(status["out"])
    groups = {g["group"]: g for g in view["groups"]}
    assert [(g["group"], g["port"]) for g in view["groups"]] == [(GROUP, PORT)]
    assert groups[GROUP]["members"] == [RECV1]
    assert SENDER in groups[GROUP]["sources"]
    agents = {a["address"]: a for a in view["agents"]}
    states = {address: agent["state"] for address, agent in agents.items()}
    # recv2's agent was killed: listed as expired (its record), not gone
    assert states == {SENDER: "alive", RECV1: "alive", RECV2: "expired", RECV3: "alive"}
    assert agents[RECV2]["last_seen"], agents[RECV2]
    for address, agent in agents.items():
        if agent["alive"]:
            assert agent["in_step"], (address, agent)


def test_the_agents_lived_and_the_kernel_log_is_clean(facts):
    logs = step(facts, "logs")
    assert logs["alive"] == {"sender": True, "recv1": True, "recv2": False, "recv3": True}, logs
    facts.assert_clean_end()


def test_an_ipv6_group_is_configured_from_mld_joins(facts):
    """The agents given an IPv6 address each: an application's MLD join on recv1
    makes it the sender's member, and the datagrams arrive, across a switch
    that drops IPv6 multicast; its leave removes it."""
    step = facts["ipv6"]
    assert step["add"]["rc"] == 0, step["add"]
    assert step["entry"][0], step["entry"]  # recv1's multic: the sender's IPv6 source
    assert step["sender"][0], step["sender"]
    assert step["switch_saw_the_originals"] >= 20  # and dropped them (SWITCH6_RULES)
    assert step["received"] == {
        "sent": 20,
        "count": 20,
        "intact": True,
        "sources": ["[2001:db8::1]:40006"],
    }, step["received"]
    assert step["left"][0], step["left"]
