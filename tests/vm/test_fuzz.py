"""Generic netlink fuzzing of both families in a real kernel, under traffic (issue 9 item 11).

Guest side: tests/vm/guest/fuzz.py and its generator tests/vm/guest/nlfuzz.py
(one VM boot).  ``make test`` runs MCP_FUZZ_N messages per family as root
(default below) and a tenth of that as nobody; ``make fuzz N=1000000`` runs
the same test with N.  The seed is fresh each run unless MCP_FUZZ_SEED
gives one; it is printed, and every failure names it with the message.
"""

from __future__ import annotations

import os
import random

import pytest

from tests.vm.conftest import GuestFacts, boot_and_run

GUEST = "tests/vm/guest/fuzz.py"
# The CI count (README.md, "Fuzzing and soak"): 20,000 per family take
# 41 s each under TCG, the whole file 172 s.
N = int(os.environ.get("MCP_FUZZ_N", "20000"))
N_USER = max(100, N // 10)
SEED = int(os.environ.get("MCP_FUZZ_SEED") or random.SystemRandom().randrange(1 << 32))
GROUP = "239.1.1.1"


@pytest.fixture(scope="module")
def facts() -> GuestFacts:
    print(f"\nfuzz: seed {SEED} (MCP_FUZZ_SEED={SEED} replays it), N={N}")
    # about 2 ms per message under TCG, both families, plus boot and checks
    return boot_and_run(GUEST, str(N), str(SEED), str(N_USER), timeout=600 + N * 0.1)


@pytest.mark.parametrize("family", ["multis", "multic"])
def test_every_message_as_root_is_answered(facts, family):
    got = facts["root"][family]
    assert (got["messages"], got["answers"]) == (N, N), f"seed {SEED}: {got}"
    # the fuzzer reached the commands' code, not only the parsers' refusals
    assert got["by_answer"].get("error", 0) + got["by_answer"].get("done", 0) > N // 20, got
    assert {"EINVAL"} <= set(got["by_answer"]), got
    assert set(got["by_kind"]) == {"random", "valid", "mutated"}, got


@pytest.mark.parametrize("family", ["multis", "multic"])
def test_every_message_as_nobody_is_answered_and_changes_are_refused(facts, family):
    step = facts["unprivileged"]
    assert step["status"] == 0, step
    assert step["uid"] == 65534, step
    got = step[family]
    assert (got["messages"], got["answers"]) == (N_USER, N_USER), f"seed {SEED}: {got}"
    assert got["by_answer"].get("EPERM", 0) > 0, got


@pytest.mark.parametrize("family", ["multis", "multic"])
def test_dumps_interleaved_with_changes_end(facts, family):
    got = facts["interleaved"][family]
    assert got["dumps"] == 40
    assert got["parts"] > got["dumps"], got  # dumps of several parts, changed between them
    assert got["changes"] > 0, got


@pytest.mark.parametrize("family", ["multis", "multic"])
def test_frames_the_kernel_may_ignore_leave_the_socket_working(facts, family):
    got = facts["ignored_frames"][family]
    assert got["probes_answered"] == got["frames"] == 50


def test_the_modules_still_work_afterwards(facts):
    step = facts["after"]
    assert step["traffic_sent"] > 0
    for name in ("recv1", "recv2"):
        assert (step["received"][name]["count"], step["received"][name]["intact"]) == (20, True)
    assert step["groups"] == [GROUP]
    assert step["group_count"] == 1
    assert step["member_counts"] == {GROUP: 2}
    assert step["members"] == {GROUP: ["10.0.0.11", "10.0.0.12"]}
    assert step["group_packets"] == 40
    assert step["entries"] == [f"10.0.0.1:5000>{GROUP}"]
    assert step["entry_count"] == 1
    assert step["unloaded"] is True


def test_the_kernel_log_stays_clean(facts):
    facts.assert_clean_end()
