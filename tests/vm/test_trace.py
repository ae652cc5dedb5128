"""The modules' tracepoints and `multicast-proxy trace`, in a real kernel.

Guest side: tests/vm/guest/trace.py (one VM boot, multi-threaded TCG: bcc
compiles its program with clang in the guest).  The sender fans 239.1.1.1
out to recv1 (restored), recv2 (no entry there; route MTU 1000), 10.9.9.9
(no route), recv3 (dropped by the sender's OUTPUT policy) and 10.0.0.99
(recv1's MAC: not local there); then the
switch rewrites the marker towards recv1.  Each reason must be named by
tracefs, perf and the bcc tool alike.
"""

from __future__ import annotations

import json

import pytest

from tests.vm.conftest import GuestFacts, boot_and_run

GUEST = "tests/vm/guest/trace.py"
GROUP, PORT = "239.1.1.1", 5000
SENDER, RECV1, RECV2, RECV3, NO_ROUTE = (
    "10.0.0.1",
    "10.0.0.11",
    "10.0.0.12",
    "10.0.0.13",
    "10.9.9.9",
)
NOT_LOCAL = "10.0.0.99"


@pytest.fixture(scope="module")
def facts() -> GuestFacts:
    return boot_and_run(GUEST, timeout=1800, tcg_thread="multi")


def events(run: dict) -> list[dict]:
    assert run["rc"] == 0, run
    return [json.loads(line) for line in run["out"].splitlines()]


def test_each_refusal_is_one_line_saying_what_to_do(facts):
    assert facts["no_tracefs"]["mounted"] is False
    for step, rc, words in (
        ("no_tracefs", 10, "tracefs is not mounted: mount -t tracefs"),
        ("no_module", 5, "none of the multis, multic kernel modules is loaded: run `service"),
        ("no_headers", 10, "kernel headers for"),
    ):
        run = facts[step]["trace"]
        assert run["rc"] == rc, (step, run)
        assert run["out"] == "", step
        assert len(run["err"].splitlines()) == 1, (step, run["err"])
        assert words in run["err"], (step, run["err"])
    assert "apt-get install linux-headers-" in facts["no_headers"]["trace"]["err"]
    not_root = facts["no_headers"]["not_root"]
    assert not_root["rc"] == 6, not_root
    assert "needs root" in not_root["err"], not_root


def test_the_events_are_in_tracefs_with_their_fields(facts):
    formats = facts["setup"]["formats"]
    for name, fields in {
        "multis:multis_fanout": ("group", "saddr", "sport", "dport", "members", "sent"),
        "multis:multis_not_sent": ("group", "member", "reason", "err"),
        "multic:multic_restore": ("server", "sport", "daddr", "port", "group"),
        "multic:multic_skip": ("server", "port", "reason"),
        "multic:multic_unmarked": ("server", "port", "tos", "marker"),
    }.items():
        for field in fields:
            assert f" {field};" in formats[name] or f" {field}[4];" in formats[name], (name, field)


def test_tracefs_names_every_reason(facts):
    lines = facts["tracefs"]["lines"]
    ns = facts["setup"]["netns"]
    fanouts = [ln for ln in lines if "multis_fanout:" in ln]
    assert len(fanouts) == 3, lines
    for ln in fanouts:
        assert f"netns={ns['sender']} group={GROUP} port={PORT} from={SENDER}:40000" in ln
        assert "members=5 sent=3" in ln
    not_sent = [ln for ln in lines if "multis_not_sent:" in ln]
    assert sum(f"member={NO_ROUTE} reason=no_route" in ln for ln in not_sent) == 3, not_sent
    assert sum(f"member={RECV3} reason=policy err=-1" in ln for ln in not_sent) == 3, not_sent
    restores = [ln for ln in lines if "multic_restore:" in ln]
    assert len(restores) == 3, lines
    assert all(f"netns={ns['recv1']} " in ln for ln in restores)
    assert all(f"group={GROUP}" in ln and f"to={RECV1} port={PORT}" in ln for ln in restores)
    skips = [ln for ln in lines if "multic_skip:" in ln]
    assert len(skips) == 6, lines
    no_entry = [ln for ln in skips if "reason=no_entry" in ln]
    assert len(no_entry) == 3, skips
    assert all(f"netns={ns['recv2']} server={SENDER}:40000 to={RECV2} " in ln for ln in no_entry)
    not_local = [ln for ln in skips if "reason=not_local" in ln]
    assert len(not_local) == 3, skips
    assert all(f"netns={ns['recv1']} " in ln and f"to={NOT_LOCAL} " in ln for ln in not_local)


def test_perf_records_the_events(facts):
    step = facts["perf"]
    assert step["record"]["rc"] == 0, step["record"]
    assert step["script"]["rc"] == 0, step["script"]
    by_event: dict[str, int] = {}
    for ln in step["script"]["lines"]:
        for name in ("multis_fanout", "multis_not_sent", "multic_restore", "multic_skip"):
            if f"{name.split('_')[0]}:{name}:" in ln:
                by_event[name] = by_event.get(name, 0) + 1
    assert by_event == {
        "multis_fanout": 2,
        "multis_not_sent": 4,
        "multic_restore": 2,
        "multic_skip": 4,
    }, step["script"]["lines"]


def test_trace_json_reports_each_datagram_with_its_copies_not_sent(facts):
    got = events(facts["bcc"]["runs"]["json"])
    fanouts = [e for e in got if e["event"] == "fanout"]
    assert len(fanouts) == 5, got
    small, big = fanouts[:3], fanouts[3:]
    for e in small:
        assert (e["group"], e["port"], e["source"], e["members"], e["sent"]) == (
            GROUP, PORT, SENDER, 5, 3,
        )  # fmt: skip
        assert sorted((n["member"], n["reason"]) for n in e["not_sent"]) == [
            (RECV3, "policy"),
            (NO_ROUTE, "no_route"),
        ]
    for e in big:
        assert e["sent"] == 2, e
        assert sorted((n["member"], n["reason"]) for n in e["not_sent"]) == [
            (RECV2, "too_big"),
            (RECV3, "policy"),
            (NO_ROUTE, "no_route"),
        ]
    restored = [e for e in got if e["event"] == "restored"]
    assert len(restored) == 5, got
    assert {e["destination"] for e in restored} == {RECV1}
    assert {(e["server"], e["port"], e["group"]) for e in restored} == {(SENDER, PORT, GROUP)}
    no_entry = [e for e in got if e["event"] == "no_entry"]
    assert len(no_entry) == 3, got
    assert {e["destination"] for e in no_entry} == {RECV2}
    not_local = [e for e in got if e["event"] == "not_local"]
    assert len(not_local) == 5, got
    assert {(e["destination"], e["group"]) for e in not_local} == {(NOT_LOCAL, GROUP)}


def test_trace_lines_are_readable_and_filtered(facts):
    run = facts["bcc"]["runs"]["sender_drops"]
    assert run["rc"] == 0, run
    lines = run["out"].splitlines()
    assert len(lines) == 5, lines  # --drops-only: every datagram lost a copy
    assert all(f" sender {GROUP}:{PORT} from {SENDER}:40000 -> " in ln for ln in lines), lines
    assert all(f"no route to {NO_ROUTE}" in ln for ln in lines)
    assert all(f"refused by this host's output policy for {RECV3}" in ln for ln in lines)
    assert sum("3 copies, 2 not sent" in ln for ln in lines) == 3
    assert sum("2 copies, 3 not sent" in ln and f"path MTU to {RECV2}" in ln for ln in lines) == 2
    # in recv2's namespace only its own events: five copies, no entry
    recv2 = facts["bcc"]["runs"]["recv2"]["out"].splitlines()
    assert len(recv2) == 3, recv2
    assert all(
        f"receiver {SENDER}:40000 -> {RECV2}:{PORT} left alone: no entry for server {SENDER} "
        f"port {PORT}" in ln
        for ln in recv2
    )


def test_trace_count_sums_per_group_and_reason(facts):
    totals: dict[tuple[str, str, str], int] = {}
    for summary in events(facts["bcc"]["runs"]["count"]):
        for row in summary["counts"]:
            key = (row["side"], row["group"], row["what"])
            totals[key] = totals.get(key, 0) + row["count"]
    assert totals == {
        ("sender", GROUP, "datagrams"): 5,
        ("sender", GROUP, "copies"): 3 * 3 + 2 * 2,
        ("sender", GROUP, "no_route"): 5,
        ("sender", GROUP, "policy"): 5,
        ("sender", GROUP, "too_big"): 2,
        ("receiver", GROUP, "restored"): 5,
        ("receiver", GROUP, "not_local"): 5,
        ("receiver", f"{SENDER}:{PORT}", "no_entry"): 3,
    }


def test_a_group_filter_keeps_the_kernel_quiet_about_other_groups(facts):
    # copies without an entry have no group: a group filter keeps them
    got = events(facts["bcc"]["runs"]["other_group"])
    assert [e["event"] for e in got] == ["no_entry"] * 3, got


def test_trace_says_the_network_rewrote_the_marker(facts):
    got = events(facts["marker_rewritten"]["run"])
    # the copies to 10.0.0.99 keep their marker: not local, as before
    assert sorted(e["event"] for e in got) == ["not_local"] * 2 + ["unmarked"] * 2, got
    for e in (e for e in got if e["event"] == "unmarked"):
        assert e["event"] == "unmarked"
        assert (e["server"], e["destination"], e["port"], e["group"]) == (
            SENDER,
            RECV1,
            PORT,
            GROUP,
        )
        assert (e["tos"], e["marker"]) == (0x00, 0xE0)


def test_the_kernel_counters_agree(facts):
    stats = facts["stats"]["server"]["stats"]
    datagrams = 3 + 2 + 5 + 2  # tracefs, perf, bcc, marker rewritten
    assert stats["datagrams"] == datagrams
    assert stats["drop_no_route"] == datagrams
    assert stats["drop_xmit"] == datagrams  # the policy's
    assert stats["drop_too_big"] == 2
    metrics = facts["stats"]["metrics_sender"]
    labels = f'group="{GROUP}"'
    for reason, value in (("no_route", datagrams), ("xmit", datagrams), ("too_big", 2)):
        assert f'multis_group_dropped_total{{{labels},reason="{reason}"}} {value:.1f}' in metrics
    assert f"multis_group_datagrams_total{{{labels}}} {datagrams:.1f}" in metrics
    recv1 = facts["stats"]["metrics_recv1"]
    (not_local,) = [ln for ln in recv1 if ln.startswith("multic_entry_not_local_total")]
    assert not_local.endswith(f" {datagrams:.1f}"), not_local
    # recv2's copies to the port it has no entry for: 3 + 2 + 3 + 2
    assert "multic_no_entry_total 10.0" in facts["stats"]["metrics_recv2"]


def test_the_modules_unload_after_tracing(facts):
    assert facts["unload"]["rmmod"]["rc"] == 0, facts["unload"]
    facts.assert_clean_end()
