"""multis_admin through click's CliRunner, on the fake kernel and a temporary state directory."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest

from multicast_admin import uapi
from multicast_admin.cli_common import Env
from multicast_admin.errors import ModuleNotLoaded

G = "239.1.1.1"


def state(state_dir):
    return json.loads((state_dir / "multis.json").read_text())


def state_groups(state_dir):
    return {g["group"]: g["members"] for g in state(state_dir)["groups"]}


def refused(run, kernel, state_dir, code, line):
    """The run failed with ``code`` and one stderr line, and nothing changed."""
    assert run.exit_code == code, run
    assert run.stderr == f"multis_admin: {line}\n"
    assert run.stdout == ""
    return run


# --- every spelling of the guide ----------------------------------------------


def test_add_with_members_short_and_long(multis_admin, multis_kernel, state_dir):
    run = multis_admin("-A", "-m", G, "-j", "10.0.0.1,10.0.0.2")
    assert run.exit_code == 0, run
    assert run.stdout == f"group {G} created\ngroup {G}: added 10.0.0.1, 10.0.0.2\n"
    run = multis_admin("--add", "--multiip", "239.1.1.2", "--join", "10.0.0.3")
    assert run.exit_code == 0, run
    run = multis_admin("--add", "--multiip=239.1.1.2", "--join=10.0.0.4", "-j", "10.0.0.5")
    assert run.stdout == "group 239.1.1.2: added 10.0.0.4, 10.0.0.5\n"
    assert multis_kernel.state() == {
        G: (0, ["10.0.0.1", "10.0.0.2"]),
        "239.1.1.2": (0, ["10.0.0.3", "10.0.0.4", "10.0.0.5"]),
    }
    assert state_groups(state_dir) == {
        G: ["10.0.0.1", "10.0.0.2"],
        "239.1.1.2": ["10.0.0.3", "10.0.0.4", "10.0.0.5"],
    }


def test_combined_short_flags(multis_admin, multis_kernel):
    assert multis_admin("-Am", G, "-j10.0.0.1").exit_code == 0
    assert multis_kernel.state() == {G: (0, ["10.0.0.1"])}


def test_add_empty_group_then_again(multis_admin, multis_kernel, state_dir):
    assert multis_admin("-A", "-m", G).stdout == f"group {G} created\n"
    run = multis_admin("-A", "-m", G)
    assert (run.exit_code, run.stdout) == (0, f"group {G} already exists, unchanged\n")
    assert state_groups(state_dir) == {G: []}


def test_quit_short_and_long(multis_admin, multis_kernel, state_dir):
    multis_admin("-A", "-m", G, "-j", "10.0.0.1,10.0.0.2,10.0.0.3")
    run = multis_admin("-A", "-m", G, "-q", "10.0.0.1")
    assert (run.exit_code, run.stdout) == (0, f"group {G}: removed 10.0.0.1\n")
    run = multis_admin("--add", "--multiip", G, "--quit", "10.0.0.2,10.0.0.3")
    assert run.stdout == f"group {G}: removed 10.0.0.2, 10.0.0.3\n"
    assert multis_kernel.state() == {G: (0, [])}
    assert state_groups(state_dir) == {G: []}


def test_delete_and_clear(multis_admin, multis_kernel, state_dir):
    for group in ("239.1.1.1", "239.1.1.2", "239.1.1.3"):
        multis_admin("-A", "-m", group, "-j", "10.0.0.1")
    assert multis_admin("-D", "-m", "239.1.1.1").stdout == "group 239.1.1.1 deleted\n"
    assert multis_admin("--delete", "--multiip", "239.1.1.2").exit_code == 0
    assert list(state_groups(state_dir)) == ["239.1.1.3"]
    assert multis_admin("-C").stdout == "every group deleted (1)\n"
    assert multis_admin("--clear").stdout == "every group deleted (0)\n"
    assert multis_kernel.state() == {}
    assert state(state_dir) == {"format": "multicast-proxy/multis", "version": 2, "groups": []}


@pytest.mark.parametrize("flag", ["-H", "-h", "--help", "-help"])
def test_help(multis_admin, flag):
    run = multis_admin(flag)
    assert run.exit_code == 0
    assert "Usage: multis_admin" in run.stdout
    assert "multis_admin -A -m 239.1.1.1 -j 10.0.0.2,10.0.0.3" in run.stdout
    assert "Exit codes" in run.stdout


def test_no_argument_prints_the_usage_on_stderr_and_exits_2(multis_admin, multis_kernel):
    run = multis_admin()
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith("Usage: multis_admin")
    assert "multis_admin -A -m 239.1.1.1 -j 10.0.0.2,10.0.0.3" in run.stderr
    assert multis_kernel.requests == []


# --- reads ------------------------------------------------------------------------


@pytest.fixture
def configured(multis_admin, multis_kernel):
    multis_admin("-A", "-m", G, "-j", "10.0.0.1,10.0.0.2")
    multis_admin("-A", "-m", "255.255.255.255", "--broadcast", "-j", "10.0.0.3")
    group = multis_kernel.groups[IPv4Address(G)]
    group.stats = {"DATAGRAMS": 10, "PACKETS": 20, "BYTES": 2000, "DROP_NO_ROUTE": 1}
    group.member_stats = {
        IPv4Address("10.0.0.2"): {"PACKETS": 10, "BYTES": 1000, "DROP_XMIT": 2, "DROP_TOO_BIG": 3}
    }
    multis_kernel.stats = {"DATAGRAMS": 10, "PACKETS": 20, "BYTES": 2000, "DROP_NO_MEMBER": 7}
    return multis_kernel


def test_show(multis_admin, configured):
    for args in (["-S"], ["--show"]):
        run = multis_admin(*args)
        assert run.exit_code == 0
        assert run.stdout.splitlines() == [
            "GROUP            MEMBERS  OPTIONS    DATAGRAMS  COPIES  BYTES  DROPPED",
            "239.1.1.1              2  -                 10      20   2000        1",
            "255.255.255.255        1  broadcast          0       0      0        0",
        ]


def test_show_empty(multis_admin):
    run = multis_admin("-S")
    assert run.stdout.startswith("no group configured")


def test_list(multis_admin, configured):
    for args in (["-L", "-m", G], ["--list", "--multiip", G]):
        run = multis_admin(*args)
        assert run.exit_code == 0
        assert run.stdout.splitlines() == [
            f"group {G}: 2 of 128 members",
            "MEMBER    COPIES  BYTES  NO MEMORY  NO ROUTE  OUTPUT REFUSED  TOO BIG",
            "10.0.0.1       0      0          0         0               0        0",
            "10.0.0.2      10   1000          0         0               2        3",
        ]


def test_stats_names_every_drop_reason(multis_admin, configured):
    expected = [
        "all groups",
        "  datagrams fanned out                            10",
        "  copies sent                                     20",
        "  bytes sent (IP)                               2000",
        "  dropped: datagrams to a group with no member     7",
        "  dropped copies: out of memory                    0",
        "  dropped copies: no route to the member           0",
        "  dropped copies: refused by the output path       0",
        "  dropped copies: DF set, over the path MTU        0",
        "",
        "  groups             2 of 10",
        "  members per group  at most 128",
        "  marker TOS         0xe0",
    ]
    for args in (["-P"], ["--stats"]):
        run = multis_admin(*args)
        assert run.exit_code == 0
        assert run.stdout.splitlines() == expected


def test_group_stats(multis_admin, configured):
    run = multis_admin("-P", "-m", G)
    assert run.exit_code == 0
    lines = run.stdout.splitlines()
    assert lines[0] == f"group {G} (2 members)"
    assert lines[1].split() == ["datagrams", "fanned", "out", "10"]
    assert lines[6].split()[-1] == "1"  # no route


def test_json_schema(multis_admin, configured):
    counters = {
        "datagrams": 10,
        "packets": 20,
        "bytes": 2000,
        "drop_no_member": 0,
        "drop_nomem": 0,
        "drop_no_route": 1,
        "drop_xmit": 0,
        "drop_too_big": 0,
    }
    shown = multis_admin("-S", "--json").json()
    assert shown["version"] == 1
    assert shown["groups"][0] == {
        "group": G,
        "broadcast": False,
        "vrrp": False,
        "member_count": 2,
        "stats": counters,
    }
    assert shown["groups"][1]["broadcast"] is True
    listed = multis_admin("-L", "-m", G, "--json").json()
    assert listed["group"] == G
    assert listed["stats"] == counters
    assert listed["members"][1] == {
        "address": "10.0.0.2",
        "stats": {
            "packets": 10,
            "bytes": 1000,
            "drop_nomem": 0,
            "drop_no_route": 0,
            "drop_xmit": 2,
            "drop_too_big": 3,
        },
        "agent": False,
    }
    group = multis_admin("-P", "-m", G, "--json").json()
    assert group == {"version": 1, **shown["groups"][0]}
    total = multis_admin("-P", "--json").json()
    assert set(total) == {
        "version",
        "stats",
        "group_count",
        "max_groups",
        "max_members",
        "marker_tos",
    }
    assert total["stats"]["drop_no_member"] == 7
    assert total["marker_tos"] == uapi.MULTICAST_PROXY_MARKER_TOS


def test_reset_stats(multis_admin, configured):
    assert multis_admin("--reset-stats").stdout == "counters reset\n"
    assert multis_admin("-P", "--json").json()["stats"]["packets"] == 0


# --- errors: one line, an exit code per kind, nothing changed ------------------------


@pytest.fixture
def before(multis_admin, multis_kernel, state_dir):
    multis_admin("-A", "-m", G, "-j", "10.0.0.1,10.0.0.2")
    kernel_before = multis_kernel.state()
    file_before = (state_dir / "multis.json").read_bytes()
    yield
    assert multis_kernel.state() == kernel_before
    assert (state_dir / "multis.json").read_bytes() == file_before


USAGE = "(see 'multis_admin --help')"


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        (
            ["-A", "-m", "239.1.1"],
            2,
            "group '239.1.1' is not a valid IP address (expected a.b.c.d or an IPv6 address)",
        ),
        (
            ["-A", "-m", G, "-j", "10.0.0.3,10.0.0.x"],
            2,
            "member '10.0.0.x' is not a valid IP address (expected a.b.c.d or an IPv6 address)",
        ),
        (
            ["-A", "-m", "10.1.1.1", "-j", "10.0.0.3"],
            2,
            "group 10.1.1.1 is not a multicast address "
            "(224.0.0.0/4; add --broadcast for a broadcast address)",
        ),
        (["-A", "-m", G, "-j", "10.0.0.3,224.1.1.1"], 2, "member 224.1.1.1 is a multicast address"),
        (["-A", "-m", G, "-j", "127.0.0.1"], 2, "member 127.0.0.1 is a loopback address"),
        (["-A", "-m", G, "-j", "0.0.0.0"], 2, "member 0.0.0.0 is an unspecified address"),
        (
            ["-A", "-m", G, "-j", "255.255.255.255"],
            2,
            "member 255.255.255.255 is the broadcast address",
        ),
        (["-A", "-m", G, "-j", G], 2, f"member {G} is a configured group"),
        (["-A", "-m", G, "-j", "239.1.1.2"], 2, "member 239.1.1.2 is a multicast address"),
        (
            ["-A", "-m", G, "-j", "10.0.0.1,,10.0.0.2"],
            2,
            "empty member in list '10.0.0.1,,10.0.0.2' (separate addresses with single commas)",
        ),
        (["-A", "-m", G, "-q", "10.0.0.9"], 3, f"member 10.0.0.9 is not in group {G}"),
        (["-A", "-m", "239.9.9.9", "-q", "10.0.0.1"], 3, "group 239.9.9.9 does not exist"),
        (["-D", "-m", "239.9.9.9"], 3, "group 239.9.9.9 does not exist"),
        (["-L", "-m", "239.9.9.9"], 3, "group 239.9.9.9 does not exist"),
        (["-P", "-m", "239.9.9.9"], 3, "group 239.9.9.9 does not exist"),
        (
            ["-A", "-m", G, "-j", "10.0.0.3", "--vrrp"],
            8,
            f"group {G} already exists with flags 0x0",
        ),
        (
            ["-A", "-m", G, "-j", "10.0.0.3", "-q", "10.0.0.1"],
            2,
            f"-j and -q cannot be combined: join and quit separately {USAGE}",
        ),
        (["-A"], 2, f"-A needs -m GROUP {USAGE}"),
        (["-D"], 2, f"-D needs -m GROUP {USAGE}"),
        (["-L"], 2, f"-L needs -m GROUP {USAGE}"),
        (["-D", "-m", G, "-j", "10.0.0.1"], 2, f"-D does not take -j {USAGE}"),
        (["-C", "-m", G], 2, f"-C does not take -m {USAGE}"),
        (["-S", "-m", G], 2, f"-S does not take -m {USAGE}"),
        (["-A", "-m", G, "--json"], 2, f"-A does not take --json {USAGE}"),
        (["-P", "-j", "10.0.0.1"], 2, f"-P does not take -j {USAGE}"),
        (["-A", "-D", "-m", G], 2, f"-A and -D cannot be combined: give one command {USAGE}"),
        (
            ["-m", G],
            2,
            f"no command given: use one of -A, -D, -C, -P, -L, -S, --reset-stats {USAGE}",
        ),
        (["-A", "-m", G, "-m", "239.1.1.2"], 2, f"option -m given more than once {USAGE}"),
        (["-x"], 2, f"No such option: -x {USAGE}"),
        (["-A", "-m"], 2, f"Option '-m' requires an argument {USAGE}"),
    ],
)
def test_bad_requests(multis_admin, multis_kernel, state_dir, before, args, code, line):
    run = multis_admin(*args)
    if args == ["-x"]:  # click words this one differently across versions
        assert run.exit_code == 2
        assert run.stderr.startswith("multis_admin: No such option")
        assert run.stderr.count("\n") == 1
        return
    refused(run, multis_kernel, state_dir, code, line)


def test_duplicate_members_are_idempotent_and_said_so(multis_admin, multis_kernel, state_dir):
    multis_admin("-A", "-m", G, "-j", "10.0.0.1")
    run = multis_admin("-A", "-m", G, "-j", "10.0.0.1,10.0.0.2,10.0.0.2")
    assert run.exit_code == 0
    assert run.stdout.splitlines() == [
        f"group {G}: added 10.0.0.2",
        f"group {G}: 10.0.0.1 is already a member, unchanged",
        f"group {G}: 10.0.0.2 given more than once, counted once",
    ]
    assert multis_kernel.state() == {G: (0, ["10.0.0.1", "10.0.0.2"])}


def test_the_eleventh_group(multis_admin, multis_kernel, state_dir):
    for i in range(1, 11):
        assert multis_admin("-A", "-m", f"239.0.0.{i}").exit_code == 0
    before = (state_dir / "multis.json").read_bytes()
    run = multis_admin("-A", "-m", "239.0.0.11", "-j", "10.0.0.1")
    refused(
        run,
        multis_kernel,
        state_dir,
        4,
        "group limit 10 reached",
    )
    assert len(multis_kernel.groups) == 10
    assert (state_dir / "multis.json").read_bytes() == before


def test_the_129th_member(multis_admin, multis_kernel, state_dir):
    members = [f"10.0.{i // 100}.{i % 100 + 1}" for i in range(129)]
    assert multis_admin("-A", "-m", G, "-j", ",".join(members[:128])).exit_code == 0
    run = multis_admin("-A", "-m", G, "-j", members[128])
    refused(
        run,
        multis_kernel,
        state_dir,
        4,
        f"group {G}: member limit 128 reached",
    )
    assert len(state_groups(state_dir)[G]) == 128


def test_module_not_loaded(env, multis_admin, state_dir):
    def missing():
        raise ModuleNotLoaded("multis")

    env.open_server = missing
    for args in (["-S"], ["-A", "-m", G, "-j", "10.0.0.1"], ["-C"]):
        run = multis_admin(*args)
        assert run.exit_code == 5
        assert run.stderr == (
            "multis_admin: multis kernel module is not loaded: run `service multis start`\n"
        )
    assert not (state_dir / "multis.json").exists()


NEEDS_ADMIN = "changes and the lists of members and entries need CAP_NET_ADMIN"


def test_not_root(multis_admin, multis_kernel, state_dir):
    multis_admin("-A", "-m", G, "-j", "10.0.0.1")
    multis_kernel.privileged = False
    before = (state_dir / "multis.json").read_bytes()
    for args in (["-A", "-m", G, "-j", "10.0.0.2"], ["-D", "-m", G], ["-C"], ["--reset-stats"]):
        run = multis_admin(*args)
        assert run.exit_code == 6, run
        assert run.stderr.startswith("multis_admin: ")
        assert f"not permitted (run as root: {NEEDS_ADMIN})" in run.stderr
        assert run.stderr.count("\n") == 1
    assert (state_dir / "multis.json").read_bytes() == before
    # the groups and the counters stay readable; who the members are does not
    assert multis_admin("-S").exit_code == 0
    assert multis_admin("-P").exit_code == 0
    assert multis_admin("-P", "-m", G).exit_code == 0
    run = multis_admin("-L", "-m", G)
    assert (run.exit_code, run.stdout) == (6, ""), run
    assert run.stderr == (
        f"multis_admin: group {G}: listing members: not permitted (run as root: {NEEDS_ADMIN})\n"
    )


def test_a_corrupt_state_file_refuses_changes_and_is_kept(multis_admin, multis_kernel, state_dir):
    multis_admin("-A", "-m", G, "-j", "10.0.0.1")
    path = state_dir / "multis.json"
    path.write_text('{"format": "multicast-proxy/multis", "version": 1, "groups": [')
    run = multis_admin("-A", "-m", G, "-j", "10.0.0.2")
    assert run.exit_code == 7
    assert run.stderr.startswith(f"multis_admin: {path} is corrupt (not valid JSON: ")
    assert run.stderr.endswith("it was left as it is: fix it or move it away\n")
    assert path.read_text().endswith('"groups": [')
    assert multis_kernel.state() == {G: (0, ["10.0.0.1"])}
    assert multis_admin("-S").exit_code == 0  # reads still work


def test_every_change_leaves_file_equal_to_kernel(env, multis_admin, multis_kernel, state_dir):
    from multicast_admin.config import SERVER

    steps = [
        ["-A", "-m", G, "-j", "10.0.0.1,10.0.0.2"],
        ["-A", "-m", "239.1.1.2"],
        ["-A", "-m", "224.0.0.18", "--vrrp", "-j", "10.0.0.5"],
        ["-A", "-m", G, "-q", "10.0.0.1"],
        ["-D", "-m", "239.1.1.2"],
    ]
    for args in steps:
        assert multis_admin(*args).exit_code == 0
        expected = SERVER.from_kernel(env.open_server()).to_json()
        assert state(state_dir) == expected
    groups = {g["group"]: g for g in state(state_dir)["groups"]}
    assert list(groups) == ["224.0.0.18", G]  # the kernel keeps groups sorted
    assert groups["224.0.0.18"] == {
        "group": "224.0.0.18",
        "broadcast": False,
        "vrrp": True,
        "members": ["10.0.0.5"],
    }


def test_env_default_is_the_real_kernel():
    assert Env().state_dir is None


def test_a_lock_directory_that_cannot_be_written(multis_admin, multis_kernel, monkeypatch):
    # What a user who is not root meets first: the lock file.
    import multicast_admin.config as config_module
    import multicast_admin.config.store as store_module

    def denied(path, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(store_module.os, "open", denied)
    run = multis_admin("-A", "-m", G, "-j", "10.0.0.1")
    lock = config_module.SERVER.state_file().lock_path
    assert run.exit_code == 6
    assert run.stderr == (
        f"multis_admin: cannot open {lock}: run as root (changes need the lock in {lock.parent})\n"
    )
    assert multis_kernel.state() == {}
