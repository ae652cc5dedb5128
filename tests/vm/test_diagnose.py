"""`multicast-proxy diagnose` in a real kernel: each situation created, and named.

Guest side: tests/vm/guest/diagnose.py (one VM boot).  Each step breaks one
thing on the simulated VPC and records diagnose's --json answer and exit
status; here each must stop at the right check, in the right words, with
every check before it passed.
"""

from __future__ import annotations

import pytest

GUEST = "tests/vm/guest/diagnose.py"
GUEST_TIMEOUT = 1200.0
GROUP, PORT = "239.1.1.1", 5000
SENDER, RECV = "10.0.0.1", "10.0.0.11"


def failed_at(facts, step: str) -> dict:
    """The failed check of a step's diagnosis (exit 1, every earlier check passed)."""
    got = facts[step]["diagnose"]
    assert got["rc"] == 1, got
    checks = got["json"]["checks"]
    assert [c["ok"] for c in checks] == [True] * (len(checks) - 1) + [False], checks
    assert got["json"]["ok"] is False
    return checks[-1]


@pytest.mark.parametrize(
    ("step", "check", "words", "fix"),
    [
        (
            "sender_not_restored",
            "restored",
            "multis was loaded without its saved state",
            "service multis start",
        ),
        (
            "sender_group_missing",
            "group",
            f"group {GROUP} is not configured",
            f"multis_admin -A -m {GROUP} -j MEMBER[,MEMBER...]",
        ),
        (
            "sender_member_no_route",
            "routes",
            "no route to member 192.168.77.7 (Network is unreachable)",
            "ip route add 192.168.77.7 via GATEWAY",
        ),
        (
            "sender_nothing_sending",
            "traffic",
            f"no application is sending to {GROUP}",
            "start the sending application",
        ),
        (
            "sender_output_drops_copies",
            "traffic",
            "the host's output path (OUTPUT policy, qdisc or device) refused them",
            "delete that rule",
        ),
        (
            "receiver_entry_missing",
            "entry",
            f"no entry for copies from {SENDER} to port {PORT}",
            f"multic_admin -A -i {SENDER} -p {PORT} -m {GROUP}",
        ),
        (
            "receiver_not_joined",
            "joined",
            f"no application on this host (network namespace) has joined {GROUP}",
            "IP_ADD_MEMBERSHIP",
        ),
        (
            "receiver_wrong_interface",
            "interface",
            f"{GROUP} is joined on dummy0, but copies from {SENDER} arrive on eth0: "
            "the application joined on the wrong interface",
            "ip route replace 224.0.0.0/4 dev eth0",
        ),
        (
            "receiver_marker_rewritten",
            "marker",
            f"the network rewrites the marker: datagrams from {SENDER}:* to port {PORT} "
            "arrive with TOS 0x00, multic expects 0xe0",
            "marker_tos",
        ),
    ],
)
def test_diagnose_names_the_situation(facts, step, check, words, fix):
    finding = failed_at(facts, step)
    assert finding["check"] == check, finding
    assert words in finding["text"], finding
    assert fix in finding["fix"], finding


def test_the_output_rule_is_named_with_the_drop_counter_and_member(facts):
    text = failed_at(facts, "sender_output_drops_copies")["text"]
    assert "drop_xmit +" in text
    assert f"member(s) {RECV}" in text
    assert f"nft: table inet host, chain output: `ip daddr {RECV} udp dport {PORT}" in text
    assert facts["sender_output_drops_copies"]["sent"] > 0


def test_the_marker_was_really_rewritten_and_nothing_restored(facts):
    step = facts["receiver_marker_rewritten"]
    assert "ip dscp set cs0" in step["rewritten"]
    assert step["received"] == 0  # unmarked, the copies were not restored


def test_sender_healthy_passes(facts):
    got = facts["sender_healthy"]["diagnose"]
    assert got["rc"] == 0, got
    lines = got["lines"]
    assert [line.split()[:2] for line in lines[:-1]] == [
        ["ok", name]
        for name in ("module", "restored", "group", "members", "routes", "traffic", "firewall")
    ]
    assert lines[-1] == f"sender: copies of {GROUP}: every check passed"


def test_receiver_healthy_passes_and_the_application_got_the_copies(facts):
    step = facts["receiver_healthy"]
    got = step["diagnose"]
    assert got["rc"] == 0, got
    assert [line.split()[:2] for line in got["lines"][:-1]] == [
        ["ok", name]
        for name in ("module", "restored", "entry", "joined", "copies", "marker", "firewall")
    ]
    assert got["lines"][-1] == (
        f"receiver: copies of {GROUP} from {SENDER} to port {PORT}: every check passed"
    )
    assert step["received"] > 0


def test_clean_end(facts):
    facts.assert_clean_end()
