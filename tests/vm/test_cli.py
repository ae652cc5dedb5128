"""multis_admin and multic_admin against the real modules (one VM boot).

Guest side: tests/vm/guest/cli.py.  Exit codes (docs/usage.md): 0 success,
2 usage or bad input, 3 not found, 4 limit, 5 module not loaded, 6 no
privilege.  After every call the state file must equal the kernel's state.
"""

from __future__ import annotations

import json

import pytest

GUEST = "tests/vm/guest/cli.py"

G1 = "239.1.1.1"
M12 = ["10.0.0.11", "10.0.0.12"]

# The server's state (group: members), in the kernel and in the file, after
# each form of the server_forms step: written out here, not derived from any
# dump, so a dump that loses or invents something cannot agree with itself.
JOINED = {G1: M12}
SECOND = {**JOINED, "239.1.1.2": ["10.0.0.11"]}
THIRD = {**SECOND, "239.1.1.3": []}
QUIT = {**THIRD, "239.1.1.2": []}
DELETED = {G1: M12, "239.1.1.2": []}
SERVER_STATE = {
    "add_join": JOINED,
    "add_join_again": JOINED,
    "long_add_join": SECOND,
    "add_empty": THIRD,
    "quit": QUIT,
    "quit_again": QUIT,
    **dict.fromkeys(
        ("show", "show_json", "list", "list_json", "stats", "stats_group", "stats_json"), THIRD
    ),
}
# every later form (delete and after) leaves DELETED
TEN_GROUPS = {**DELETED, **{f"239.1.1.{i}": [] for i in range(4, 12)}}
ONE_ENTRY = ["10.0.0.1:5000>239.1.1.1"]
TWO_ENTRIES = ["10.0.0.1:0>239.1.1.2", *ONE_ENTRY]
CLIENT_STATE = {
    "add": ONE_ENTRY,
    "add_again": ONE_ENTRY,
    **dict.fromkeys(
        ("long_add_any_port", "list", "list_json", "stats", "stats_entry", "stats_json"),
        TWO_ENTRIES,
    ),
    # 9 more distinct groups, then the refused 11th
    "eleventh_group": sorted([*ONE_ENTRY, *(f"10.0.1.{i}:5000>239.2.0.{i}" for i in range(2, 11))]),
    "clear": [],
}
# every other form (delete and after) leaves ONE_ENTRY
# the members server_limits gives 239.1.1.4, in the guest's order
GIVEN = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(129)]
MEMBERS = sorted(GIVEN[:128])


def ok(run):
    assert run["code"] == 0, run
    assert run["err"] == "" or "already" in run["err"] or "note" in run["err"], run


def refused(run, code, *words):
    assert run["code"] == code, run
    assert run["out"] == "", run
    lines = run["err"].splitlines()
    assert len(lines) == 1, f"want one line on stderr: {run}"
    for word in words:
        assert word in lines[0], run


def state_is(run, expected):
    """The kernel holds ``expected``, and the state file says so too."""
    assert run["state"] == {"kernel": expected, "file": expected}, run


def server_state_after(form):
    return SERVER_STATE.get(form, DELETED)


def test_module_not_loaded_is_one_clear_line(facts):
    step = facts["not_loaded"]
    refused(step["multis"], 5, "multis kernel module is not loaded", "service multis start")
    refused(step["multic"], 5, "multic kernel module is not loaded", "service multic start")


@pytest.mark.parametrize(
    "form", ["add_join", "add_join_again", "long_add_join", "add_empty", "quit", "delete"]
)
def test_server_changes_succeed_and_are_saved(facts, form):
    run = facts["server_forms"][form]
    ok(run)
    state_is(run, server_state_after(form))


def test_server_changes_reach_the_kernel(facts):
    step = facts["server_forms"]
    assert step["add_join"]["state"]["kernel"] == {G1: ["10.0.0.11", "10.0.0.12"]}
    assert "already" in step["add_join_again"]["out"] + step["add_join_again"]["err"]
    assert step["long_add_join"]["state"]["kernel"]["239.1.1.2"] == ["10.0.0.11"]
    assert step["add_empty"]["state"]["kernel"]["239.1.1.3"] == []
    assert step["quit"]["state"]["kernel"]["239.1.1.2"] == []
    assert "239.1.1.3" not in step["delete"]["state"]["kernel"]


def test_server_reads(facts):
    step = facts["server_forms"]
    for form in ("show", "list", "stats", "stats_group"):
        ok(step[form])
    assert G1 in step["show"]["out"]
    assert "10.0.0.11" in step["list"]["out"]
    assert "10.0.0.12" in step["list"]["out"]
    for word in ("no member", "route", "memory"):
        assert word in step["stats"]["out"].lower(), step["stats"]["out"]
    shown = json.loads(step["show_json"]["out"])
    assert shown["version"] == 1
    assert {g["group"] for g in shown["groups"]} == {G1, "239.1.1.2", "239.1.1.3"}
    listed = json.loads(step["list_json"]["out"])
    assert sorted(m["address"] for m in listed["members"]) == ["10.0.0.11", "10.0.0.12"]
    stats = json.loads(step["stats_json"]["out"])
    assert stats["max_groups"] == 10
    assert stats["max_members"] == 128


@pytest.mark.parametrize(
    ("form", "code", "words"),
    [
        ("quit_again", 3, ["10.0.0.11"]),
        ("delete_again", 3, ["239.1.1.3"]),
        ("bad_address", 2, ["300.1.1.1"]),
        ("group_not_multicast", 2, ["10.1.1.1", "multicast"]),
        ("member_multicast", 2, ["224.1.1.1"]),
        ("member_loopback", 2, ["127.0.0.1"]),
        ("member_unspecified", 2, ["0.0.0.0"]),
        ("member_is_group", 2, [G1]),
        ("list_unknown", 3, ["239.9.9.9"]),
        ("stats_unknown", 3, ["239.9.9.9"]),
        ("usage_no_group", 2, []),
        ("usage_two_commands", 2, []),
    ],
)
def test_server_refusals_change_nothing(facts, form, code, words):
    step = facts["server_forms"]
    run = step[form]
    refused(run, code, *words)
    state_is(run, server_state_after(form))


def test_the_kernel_refuses_a_batch_over_the_limit_whole(facts):
    # 127 members and a batch of two; the Python layer was told no limit
    step = facts["server_limits"]
    state_is(step["quit_one"], {**TEN_GROUPS, "239.1.1.4": sorted(GIVEN[:127])})
    run = step["batch_over_limit"]
    # the kernel's own words (the Python layer's pre-check says more)
    assert run["err"] == "multis_admin: group 239.1.1.4: member limit 128 reached\n", run
    assert run["code"] == 4, run
    assert run["out"] == "", run
    state_is(run, {**TEN_GROUPS, "239.1.1.4": sorted(GIVEN[:127])})


@pytest.mark.parametrize("form", ["help_H", "help_dash", "help_long"])
def test_server_help_has_examples(facts, form):
    run = facts["server_forms"][form]
    ok(run)
    assert "multis_admin -A -m" in run["out"]


@pytest.mark.parametrize(
    ("side", "example"), [("server", "multis_admin -A -m"), ("client", "multic_admin -A -i")]
)
def test_no_arguments_is_a_usage_error(facts, side, example):
    run = facts[f"{side}_forms"]["no_arguments"]
    assert (run["code"], run["out"]) == (2, ""), run
    assert run["err"].startswith("Usage: "), run
    assert example in run["err"], run
    # nothing changed: the state the forms before it left
    if side == "server":
        state_is(run, server_state_after("no_arguments"))
    else:
        state_is(run, CLIENT_STATE.get("no_arguments", ONE_ENTRY))


def test_server_limits(facts):
    step = facts["server_limits"]
    refused(step["eleventh_group"], 4, "group limit 10")
    state_is(step["eleventh_group"], TEN_GROUPS)
    ok(step["first_128"])
    state_is(step["first_128"], {**TEN_GROUPS, "239.1.1.4": MEMBERS})
    refused(step["the_129th"], 4, "member limit 128")
    state_is(step["the_129th"], {**TEN_GROUPS, "239.1.1.4": MEMBERS})
    ok(step["clear"])
    ok(step["clear_long"])
    state_is(step["clear"], {})
    state_is(step["clear_long"], {})


@pytest.mark.parametrize("form", ["add", "add_again", "long_add_any_port", "delete", "clear"])
def test_client_changes_succeed_and_are_saved(facts, form):
    run = facts["client_forms"][form]
    ok(run)
    state_is(run, CLIENT_STATE.get(form, ONE_ENTRY))


def test_client_changes_reach_the_kernel(facts):
    step = facts["client_forms"]
    assert step["add"]["state"]["kernel"] == ["10.0.0.1:5000>239.1.1.1"]
    assert step["long_add_any_port"]["state"]["kernel"] == [
        "10.0.0.1:0>239.1.1.2",
        "10.0.0.1:5000>239.1.1.1",
    ]
    assert step["delete"]["state"]["kernel"] == ["10.0.0.1:5000>239.1.1.1"]
    assert step["clear"]["state"]["kernel"] == []


def test_client_reads(facts):
    step = facts["client_forms"]
    for form in ("list", "stats", "stats_entry"):
        ok(step[form])
    assert "10.0.0.1" in step["list"]["out"]
    assert "239.1.1.2" in step["list"]["out"]
    listed = json.loads(step["list_json"]["out"])
    assert listed["version"] == 1
    assert {(e["server"], e["port"], e["group"]) for e in listed["entries"]} == {
        ("10.0.0.1", 5000, G1),
        ("10.0.0.1", 0, "239.1.1.2"),
    }
    stats = json.loads(step["stats_json"]["out"])
    assert stats["max_groups"] == 10


@pytest.mark.parametrize(
    ("form", "code", "words"),
    [
        ("delete_again", 3, ["10.0.0.1"]),
        ("port_too_big", 2, ["65536"]),
        ("port_not_number", 2, ["x1"]),
        ("server_multicast", 2, ["224.0.0.1"]),
        ("group_not_multicast", 2, ["10.0.0.5"]),
        ("bad_address", 2, ["10.0.0"]),
        ("usage_missing_port", 2, []),
        ("eleventh_group", 4, ["group limit 10"]),
    ],
)
def test_client_refusals_change_nothing(facts, form, code, words):
    run = facts["client_forms"][form]
    refused(run, code, *words)
    state_is(run, CLIENT_STATE.get(form, ONE_ENTRY))


@pytest.mark.parametrize("form", ["help_H", "help_dash"])
def test_client_help_has_examples(facts, form):
    run = facts["client_forms"][form]
    ok(run)
    assert "multic_admin -A -i" in run["out"]


def test_the_guides_commands_make_multicast_flow(facts):
    step = facts["guide_commands"]
    ok(step["server"])
    for run in step["clients"]:
        ok(run)
    assert step["received"] == {"recv1": True, "recv2": True}
    assert step["server_state"] == {"kernel": {G1: M12}, "file": {G1: M12}}
    assert step["client_state"] == {"kernel": ONE_ENTRY, "file": ONE_ENTRY}


GUIDE_COUNT, GUIDE_IP_BYTES = 10, 64 + 8 + 20  # datagrams sent, IP bytes of each


def _json(run):
    ok(run)
    return json.loads(run["out"])


def test_statistics_after_the_guides_traffic_are_exact(facts):
    step = facts["guide_commands"]
    copies = {"packets": GUIDE_COUNT, "bytes": GUIDE_COUNT * GUIDE_IP_BYTES}
    member = {**copies, "drop_nomem": 0, "drop_no_route": 0, "drop_xmit": 0, "drop_too_big": 0}
    group = {
        "datagrams": GUIDE_COUNT,
        "packets": 2 * GUIDE_COUNT,
        "bytes": 2 * GUIDE_COUNT * GUIDE_IP_BYTES,
        "drop_no_member": 0,
        "drop_nomem": 0,
        "drop_no_route": 0,
        "drop_xmit": 0,
        "drop_too_big": 0,
    }
    stats = _json(step["stats_json"])
    assert (stats["stats"], stats["group_count"]) == (group, 1), stats
    shown = _json(step["group_stats_json"])
    assert (shown["group"], shown["member_count"], shown["stats"]) == (G1, 2, group), shown
    listed = _json(step["list_json"])
    assert listed["stats"] == group, listed
    assert listed["members"] == [
        {"address": "10.0.0.11", "stats": member, "agent": False},
        {"address": "10.0.0.12", "stats": member, "agent": False},
    ], listed
    restored = {**copies, "not_local": 0, "drop_nomem": 0}
    for host in ("recv1", "recv2"):
        client = _json(step["client_stats_json"][host])
        namespace = {**restored, "no_entry": 0, "not_udp": 0}
        assert (client["stats"], client["entry_count"]) == (namespace, 1), client
        entries = _json(step["client_list_json"][host])["entries"]
        assert entries == [
            {
                "server": "10.0.0.1",
                "port": 5000,
                "group": G1,
                "broadcast": False,
                "stats": restored,
                "agent": False,
            }
        ], entries


def test_unprivileged_changes_are_refused_by_the_kernel(facts):
    step = facts["unprivileged"]
    # nobody's own state directory: the lock was no obstacle, the kernel refused
    refused(
        step["change"],
        6,
        "not permitted",
        "changes and the lists of members and entries need CAP_NET_ADMIN",
    )
    assert "cannot open" not in step["change"]["err"], step["change"]
    assert step["read"]["code"] == 0, step["read"]
    assert G1 in step["read"]["out"], step["read"]
    assert step["state"] == {"kernel": {G1: M12}, "file": {G1: M12}}
    assert "multis.json" not in step["nobody_files"], step["nobody_files"]


def test_a_held_lock_makes_the_tool_wait_then_refuse(facts):
    step = facts["locked"]
    lock = step["lock_path"]
    run = step["run"]
    assert run["err"] == (
        f"multis_admin: {lock} stayed locked for 30 s: another multis change or the service "
        "is still running; try again\n"
    ), run
    assert (run["code"], run["out"]) == (7, ""), run
    assert 30 <= step["waited"] < 60, step["waited"]
    # nothing changed while the lock was held
    assert step["state"] == {"kernel": {G1: M12}, "file": {G1: M12}}


def test_two_tools_at_once_end_consistent(facts):
    step = facts["concurrent"]
    assert step["codes"] == [0, 0], step["errors"]
    kernel = step["state"]["kernel"]
    assert kernel["239.6.0.1"] == ["10.0.0.21", "10.0.0.22", "10.0.0.23"]
    assert kernel["239.6.0.2"] == ["10.0.0.31", "10.0.0.32", "10.0.0.33"]
    assert step["state"]["file"] == kernel


def test_kernel_log_is_clean(facts):
    facts.assert_clean_end()
