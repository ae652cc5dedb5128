"""Soak: load cycles, namespaces and a dead member, all under traffic (issue 9 item 12).

Guest side: tests/vm/guest/soak.py (one VM boot).  ``make test`` runs a short
version (MCP_SOAK_CYCLES, MCP_SOAK_NAMESPACES: defaults below); ``make soak``
the full one (100 and 100).  Each module's ``live_stats`` parameter counts its
per-CPU counter blocks (one per namespace, group, member and entry): after a
clear it is back to its value at load, and unloading WARNs on any left over
(which the kernel-log check catches).
"""

from __future__ import annotations

import os

import pytest

from tests.vm.conftest import GuestFacts, boot_and_run

GUEST = "tests/vm/guest/soak.py"
CYCLES = int(os.environ.get("MCP_SOAK_CYCLES", "2"))
NAMESPACES = int(os.environ.get("MCP_SOAK_NAMESPACES", "2"))
DATAGRAMS = 200
DEAD = "10.0.0.99"


@pytest.fixture(scope="module")
def facts() -> GuestFacts:
    timeout = 600 + 10 * (CYCLES + NAMESPACES)
    return boot_and_run(GUEST, str(CYCLES), str(NAMESPACES), str(DATAGRAMS), timeout=timeout)


def test_load_configure_unload_cycles_under_traffic(facts):
    step = facts["cycles"]
    assert step["cycles"] == CYCLES
    assert step["bad_count"] == 0, step["bad"]
    first = step["first"]
    # a group with two members is three blocks, an entry one
    assert first["configured"]["multis"] == first["base"]["multis"] + 3, first
    assert first["configured"]["multic"] == first["base"]["multic"] + 2, first
    assert first["cleared"] == first["base"], first
    assert first["received"] == {"recv1": 10, "recv2": 10}, first


def test_namespaces_created_configured_destroyed_under_traffic(facts):
    step = facts["namespaces"]
    assert step["namespaces"] == NAMESPACES
    assert step["bad"] == [], step["bad"]
    # every namespace's blocks went with it
    assert step["after"] == step["before"], step
    assert step["received_after"] == {"recv1": 10, "recv2": 10}


def test_a_member_that_never_answers_arp_costs_the_others_nothing(facts):
    step = facts["dead_member"]
    for run in ("without", "with"):
        for name in ("recv1", "recv2"):
            assert step[run][name] == {"count": DATAGRAMS, "intact": True}, (run, name)
    members = step["with"]["members"]
    assert set(members) == {"10.0.0.11", "10.0.0.12", DEAD}
    for addr, member in members.items():
        # every copy to each member is counted; the dead one's are then the
        # neighbour layer's to drop (its queue of unresolved packets)
        assert member["packets"] == DATAGRAMS, (addr, member)
    assert "FAILED" in step["neigh"], step["neigh"]
    # and the neighbour table counted its failed resolution
    assert res_failed(step["arp_cache_after"]) > res_failed(step["arp_cache_before"]), step


def res_failed(ntable: str) -> int:
    words = ntable.split()
    return int(words[words.index("res_failed") + 1])


def test_after_clear_and_unload_nothing_is_left(facts):
    step = facts["end"]
    assert step["traffic_sent"] > 0
    assert step["live_cleared"] == step["loaded"], step
    assert step["unloaded"] is True
    facts.assert_clean_end()
