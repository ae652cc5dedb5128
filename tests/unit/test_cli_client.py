"""multic_admin through click's CliRunner, on the fake kernel and a temporary state directory."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest

from multicast_admin.errors import ModuleNotLoaded

USAGE = "(see 'multic_admin --help')"


def state_entries(state_dir):
    data = json.loads((state_dir / "multic.json").read_text())
    assert (data["format"], data["version"]) == ("multicast-proxy/multic", 2)
    return [(e["server"], e["port"], e["group"]) for e in data["entries"]]


def test_add_short_and_long(multic_admin, multic_kernel, state_dir):
    run = multic_admin("-A", "-i", "10.0.0.1", "-p", "1234", "-m", "239.1.1.1")
    assert (run.exit_code, run.stdout) == (0, "entry 10.0.0.1:1234 -> 239.1.1.1 added\n")
    run = multic_admin("--add", "--ip", "10.0.0.2", "--port", "0", "--multiip", "224.0.0.251")
    assert run.stdout == "entry 10.0.0.2:0 (any port) -> 224.0.0.251 added\n"
    run = multic_admin("--add", "--ip=10.0.0.3", "--port=5", "--multiip=239.1.1.1")
    assert run.exit_code == 0
    assert state_entries(state_dir) == [
        ("10.0.0.1", 1234, "239.1.1.1"),
        ("10.0.0.2", 0, "224.0.0.251"),
        ("10.0.0.3", 5, "239.1.1.1"),
    ]
    assert multic_kernel.state() == {
        "10.0.0.1:1234": "239.1.1.1",
        "10.0.0.2:0": "224.0.0.251",
        "10.0.0.3:5": "239.1.1.1",
    }


def test_add_again_and_move(multic_admin, multic_kernel, state_dir):
    multic_admin("-A", "-i", "10.0.0.1", "-p", "1234", "-m", "239.1.1.1")
    run = multic_admin("-A", "-i", "10.0.0.1", "-p", "1234", "-m", "239.1.1.1")
    assert (run.exit_code, run.stdout) == (
        0,
        "entry 10.0.0.1:1234 -> 239.1.1.1 already exists, unchanged\n",
    )
    run = multic_admin("-A", "-i", "10.0.0.1", "-p", "1234", "-m", "239.1.1.2")
    assert run.stdout == "entry 10.0.0.1:1234 moved from 239.1.1.1 to 239.1.1.2\n"
    assert state_entries(state_dir) == [("10.0.0.1", 1234, "239.1.1.2")]


def test_broadcast_entry(multic_admin, multic_kernel):
    run = multic_admin("-A", "-i", "10.0.0.1", "-p", "0", "-m", "255.255.255.255", "--broadcast")
    assert run.exit_code == 0
    assert multic_kernel.state() == {"10.0.0.1:0": "255.255.255.255"}


def test_delete_and_clear(multic_admin, multic_kernel, state_dir):
    for port in ("1", "2", "3"):
        multic_admin("-A", "-i", "10.0.0.1", "-p", port, "-m", "239.1.1.1")
    run = multic_admin("-D", "-i", "10.0.0.1", "-p", "1")
    assert (run.exit_code, run.stdout) == (0, "entry 10.0.0.1:1 deleted\n")
    assert multic_admin("--delete", "--ip", "10.0.0.1", "--port", "2").exit_code == 0
    assert state_entries(state_dir) == [("10.0.0.1", 3, "239.1.1.1")]
    assert multic_admin("-C").stdout == "every entry deleted (1)\n"
    assert multic_admin("--clear").stdout == "every entry deleted (0)\n"
    assert state_entries(state_dir) == []


@pytest.mark.parametrize("flag", ["-H", "-h", "--help", "-help"])
def test_help(multic_admin, flag):
    run = multic_admin(flag)
    assert run.exit_code == 0
    assert "Usage: multic_admin" in run.stdout
    assert "multic_admin -A -i 10.0.0.1 -p 5000 -m 239.1.1.1" in run.stdout


def test_no_argument_prints_the_usage_on_stderr_and_exits_2(multic_admin, multic_kernel):
    run = multic_admin()
    assert (run.exit_code, run.stdout) == (2, "")
    assert run.stderr.startswith("Usage: multic_admin")
    assert "multic_admin -A -i 10.0.0.1 -p 5000 -m 239.1.1.1" in run.stderr
    assert multic_kernel.requests == []


@pytest.fixture
def configured(multic_admin, multic_kernel):
    multic_admin("-A", "-i", "10.0.0.1", "-p", "1234", "-m", "239.1.1.1")
    multic_admin("-A", "-i", "10.0.0.2", "-p", "0", "-m", "224.0.0.251")
    entry = multic_kernel.entries[(IPv4Address("10.0.0.1"), 1234)]
    entry.stats = {"PACKETS": 5, "BYTES": 500, "NOT_LOCAL": 1}
    multic_kernel.stats = {
        "PACKETS": 5,
        "BYTES": 500,
        "NOT_LOCAL": 1,
        "DROP_NOMEM": 2,
        "NO_ENTRY": 3,
        "NOT_UDP": 4,
    }
    return multic_kernel


def test_list(multic_admin, configured):
    for args in (["-L"], ["--list"]):
        run = multic_admin(*args)
        assert run.exit_code == 0
        assert run.stdout.splitlines() == [
            "SERVER    PORT  GROUP        RESTORED  BYTES  NOT LOCAL  NO MEMORY",
            "10.0.0.1  1234  239.1.1.1           5    500          1          0",
            "10.0.0.2  any   224.0.0.251         0      0          0          0",
        ]


def test_list_empty(multic_admin):
    assert multic_admin("-L").stdout.startswith("no entry configured")


def test_stats(multic_admin, configured):
    for args in (["-P"], ["--stats"]):
        run = multic_admin(*args)
        assert run.exit_code == 0
        assert run.stdout.splitlines() == [
            "all entries",
            "  copies restored to their group                          5",
            "  bytes restored (IP)                                   500",
            "  left alone: marked copies not addressed to this host    1",
            "  dropped: could not be made writable (out of memory)     2",
            "  left alone: marked copies no entry matches              3",
            "  left alone: marked IPv6 packets, not plain UDP          4",
            "",
            "  entries     2 of 1024",
            "  groups      2 of 10",
            "  marker TOS  0xe0",
        ]
    run = multic_admin("-P", "-i", "10.0.0.1", "-p", "1234")
    assert run.stdout.splitlines()[0] == "entry 10.0.0.1:1234 -> 239.1.1.1"


def test_broadcast_entries_need_the_flag(multic_admin):
    for group in ("255.255.255.255", "10.0.0.255"):
        refused = multic_admin("-A", "-i", "10.0.0.1", "-p", "7", "-m", group)
        assert refused.exit_code == 2
        assert "add --broadcast" in refused.stderr
        added = multic_admin("-A", "-i", "10.0.0.1", "-p", "7", "-m", group, "--broadcast")
        assert added.exit_code == 0, added.stderr
        [entry] = multic_admin("-L", "--json").json()["entries"]
        assert (entry["group"], entry["broadcast"]) == (group, True)
        assert multic_admin("-C").exit_code == 0
    wrong = multic_admin("-A", "-i", "10.0.0.1", "-p", "7", "-m", "239.1.1.1", "--broadcast")
    assert wrong.exit_code == 2
    assert "drop --broadcast" in wrong.stderr


def test_json_schema(multic_admin, configured):
    listed = multic_admin("-L", "--json").json()
    assert listed == {
        "version": 1,
        "entries": [
            {
                "server": "10.0.0.1",
                "port": 1234,
                "group": "239.1.1.1",
                "broadcast": False,
                "stats": {"packets": 5, "bytes": 500, "not_local": 1, "drop_nomem": 0},
                "agent": False,
            },
            {
                "server": "10.0.0.2",
                "port": 0,
                "group": "224.0.0.251",
                "broadcast": False,
                "stats": {"packets": 0, "bytes": 0, "not_local": 0, "drop_nomem": 0},
                "agent": False,
            },
        ],
    }
    assert multic_admin("-P", "-i", "10.0.0.1", "-p", "1234", "--json").json() == {
        "version": 1,
        **listed["entries"][0],
    }
    total = multic_admin("-P", "--json").json()
    assert total == {
        "version": 1,
        "stats": {
            "packets": 5,
            "bytes": 500,
            "not_local": 1,
            "drop_nomem": 2,
            "no_entry": 3,
            "not_udp": 4,
        },
        "entry_count": 2,
        "group_count": 2,
        "max_groups": 10,
        "max_entries": 1024,
        "marker_tos": 224,
    }


@pytest.fixture
def before(multic_admin, multic_kernel, state_dir):
    multic_admin("-A", "-i", "10.0.0.1", "-p", "1234", "-m", "239.1.1.1")
    kernel_before = multic_kernel.state()
    file_before = (state_dir / "multic.json").read_bytes()
    yield
    assert multic_kernel.state() == kernel_before
    assert (state_dir / "multic.json").read_bytes() == file_before


ADD = ["-A", "-i", "10.0.0.2", "-m", "239.1.1.1"]


@pytest.mark.parametrize(
    ("args", "code", "line"),
    [
        ([*ADD, "-p", "65536"], 2, "port 65536 is out of range: use 0-65535 (0 = any port)"),
        ([*ADD, "-p", "-1"], 2, "port '-1' is not a number: use 0-65535 (0 = any port)"),
        ([*ADD, "-p", "http"], 2, "port 'http' is not a number: use 0-65535 (0 = any port)"),
        (
            ["-A", "-i", "10.0.0.256", "-p", "1", "-m", "239.1.1.1"],
            2,
            "server '10.0.0.256' is not a valid IP address (expected a.b.c.d or an IPv6 address)",
        ),
        (
            ["-A", "-i", "239.0.0.1", "-p", "1", "-m", "239.1.1.1"],
            2,
            "server 239.0.0.1 is not a unicast address (multicast)",
        ),
        (
            ["-A", "-i", "10.0.0.2", "-p", "1", "-m", "10.1.1.1"],
            2,
            "group 10.1.1.1 is not a multicast address "
            "(224.0.0.0/4; add --broadcast for a broadcast address)",
        ),
        (["-D", "-i", "10.0.0.1", "-p", "1235"], 3, "no entry for 10.0.0.1:1235"),
        (["-P", "-i", "10.0.0.9", "-p", "1"], 3, "no entry for 10.0.0.9:1"),
        (
            ["-A", "-i", "10.0.0.2", "-p", "1"],
            2,
            f"-A needs -i SERVER, -p PORT and -m GROUP {USAGE}",
        ),
        (["-D", "-i", "10.0.0.1"], 2, f"-D needs -i SERVER and -p PORT {USAGE}"),
        (["-P", "-i", "10.0.0.1"], 2, f"-P needs both -i SERVER and -p PORT, or neither {USAGE}"),
        (["-L", "-i", "10.0.0.1"], 2, f"-L does not take -i {USAGE}"),
        (["-C", "-p", "1"], 2, f"-C does not take -p {USAGE}"),
        (["-D", "-i", "10.0.0.1", "-p", "1", "-m", "239.1.1.1"], 2, f"-D does not take -m {USAGE}"),
        (["-A", "-L"], 2, f"-A and -L cannot be combined: give one command {USAGE}"),
        (
            ["-i", "10.0.0.1"],
            2,
            f"no command given: use one of -A, -D, -C, -P, -L, --reset-stats {USAGE}",
        ),
        ([*ADD, "-p", "1", "-p", "2"], 2, f"option -p given more than once {USAGE}"),
    ],
)
def test_bad_requests(multic_admin, before, args, code, line):
    run = multic_admin(*args)
    assert run.exit_code == code, run
    assert run.stderr == f"multic_admin: {line}\n"
    assert run.stdout == ""


def test_s_is_not_a_client_command(multic_admin):
    run = multic_admin("-S")
    assert run.exit_code == 2
    assert run.stderr.startswith("multic_admin: No such option")


def test_the_eleventh_group(multic_admin, multic_kernel, state_dir):
    for i in range(10):
        assert (
            multic_admin("-A", "-i", "10.0.0.1", "-p", str(i), "-m", f"239.0.0.{i}").exit_code == 0
        )
    before = (state_dir / "multic.json").read_bytes()
    run = multic_admin("-A", "-i", "10.0.0.1", "-p", "99", "-m", "239.0.0.99")
    assert run.exit_code == 4
    assert run.stderr == ("multic_admin: group limit 10 reached\n")
    assert (state_dir / "multic.json").read_bytes() == before
    assert len(multic_kernel.entries) == 10


def test_module_not_loaded(env, multic_admin):
    def missing():
        raise ModuleNotLoaded("multic")

    env.open_client = missing
    run = multic_admin("-L")
    assert (run.exit_code, run.stderr) == (
        5,
        "multic_admin: multic kernel module is not loaded: run `service multic start`\n",
    )


def test_invalid_input_is_answered_before_the_kernel_is_asked(env, multic_admin):
    def missing():
        raise ModuleNotLoaded("multic")

    env.open_client = missing
    run = multic_admin("-A", "-i", "10.0.0.1", "-p", "99999", "-m", "239.1.1.1")
    assert run.exit_code == 2


NEEDS_ADMIN = "changes and the lists of members and entries need CAP_NET_ADMIN"


def test_not_root(multic_admin, multic_kernel, state_dir):
    multic_admin("-A", "-i", "10.0.0.1", "-p", "1", "-m", "239.1.1.1")
    multic_kernel.privileged = False
    run = multic_admin("-A", "-i", "10.0.0.1", "-p", "2", "-m", "239.1.1.1")
    assert run.exit_code == 6
    assert run.stderr == (
        f"multic_admin: entry 10.0.0.1:2: adding: not permitted (run as root: {NEEDS_ADMIN})\n"
    )
    assert state_entries(state_dir) == [("10.0.0.1", 1, "239.1.1.1")]
    # the counters stay readable; which servers the entries name does not
    assert multic_admin("-P").exit_code == 0
    run = multic_admin("-L")
    assert (run.exit_code, run.stdout) == (6, ""), run
    assert run.stderr == (
        f"multic_admin: listing entries: not permitted (run as root: {NEEDS_ADMIN})\n"
    )
