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


def consistent(run):
    state = run["state"]
    assert state["file"] == state["kernel"], run


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
    consistent(run)


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
    consistent(run)


def test_refused_member_batch_is_all_or_nothing(facts):
    step = facts["server_forms"]
    assert "10.0.0.13" not in step["member_loopback"]["state"]["kernel"][G1]


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
    consistent(run)


def test_server_limits(facts):
    step = facts["server_limits"]
    refused(step["eleventh_group"], 4, "group limit 10")
    assert len(step["eleventh_group"]["state"]["kernel"]) == 10
    ok(step["first_128"])
    refused(step["the_129th"], 4, "member limit 128")
    assert len(step["the_129th"]["state"]["kernel"]["239.1.1.4"]) == 128
    for form in ("eleventh_group", "first_128", "the_129th", "clear", "clear_long"):
        consistent(step[form])
    ok(step["clear"])
    ok(step["clear_long"])
    assert step["clear"]["state"]["kernel"] == {}


@pytest.mark.parametrize("form", ["add", "add_again", "long_add_any_port", "delete", "clear"])
def test_client_changes_succeed_and_are_saved(facts, form):
    run = facts["client_forms"][form]
    ok(run)
    consistent(run)


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
    consistent(run)


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
    assert step["server_state"]["kernel"] == {G1: ["10.0.0.11", "10.0.0.12"]}
    assert step["server_state"]["file"] == step["server_state"]["kernel"]
    assert step["client_state"]["file"] == step["client_state"]["kernel"]


def test_unprivileged_changes_are_refused(facts):
    step = facts["unprivileged"]
    assert step["change"]["code"] == 6, step["change"]
    assert len(step["change"]["err"].splitlines()) == 1, step["change"]
    assert step["read"]["code"] == 0, step["read"]
    assert "239.5.5.5" not in step["state"]["kernel"]
    assert step["state"]["file"] == step["state"]["kernel"]


def test_two_tools_at_once_end_consistent(facts):
    step = facts["concurrent"]
    assert step["codes"] == [0, 0], step["errors"]
    kernel = step["state"]["kernel"]
    assert kernel["239.6.0.1"] == ["10.0.0.21", "10.0.0.22", "10.0.0.23"]
    assert kernel["239.6.0.2"] == ["10.0.0.31", "10.0.0.32", "10.0.0.33"]
    assert step["state"]["file"] == kernel


def test_kernel_log_is_clean(facts):
    assert facts.kernel_trouble() == []
    assert "guest: done" in facts.result.output
