"""IPv6 (issue 11) on the tools' side: parsing, the rules, the wire, the CLIs, the state files.

The kernel is the authority; these tests hold the tools to the same rules
and words (the fake kernels implement the rules kernel/*/netlink.c states in
docs/design.md, "IPv6 addresses in the same families").
"""

from __future__ import annotations

import json
from ipaddress import IPv4Address, IPv6Address

import pytest
from fakes import FakeMulticKernel, FakeMultisKernel

from multicast_admin import memberarray, uapi
from multicast_admin.addresses import (
    check_group,
    check_member,
    check_server,
    host_port,
    parse_ip,
    parse_ip_list,
)
from multicast_admin.client import Client
from multicast_admin.config import CLIENT, SERVER
from multicast_admin.config.schema import ServerConfig
from multicast_admin.errors import InvalidArgument
from multicast_admin.models import Member, ServerCounters
from multicast_admin.netlink import (
    MAX_MEMBERS6_PER_REQUEST,
    MulticNetlink,
    MultisNetlink,
    members_value,
)
from multicast_admin.server import Server

A6 = IPv6Address
G6 = "ff15::1:5"
M1, M2 = "2001:db8::11", "2001:db8::12"
MAPPED = str(A6("::ffff:10.0.0.1"))  # how this Python prints it


# --- parsing and the rules ------------------------------------------------------------


def test_both_families_parse():
    assert parse_ip(" 239.1.1.1 ") == IPv4Address("239.1.1.1")
    assert parse_ip("FF15:0::1:5") == A6(G6)
    assert parse_ip_list([f"{M1},{M2}", "10.0.0.1"]) == [A6(M1), A6(M2), IPv4Address("10.0.0.1")]


@pytest.mark.parametrize(
    "text", ["ff15::1::5", "2001:db8::g", "fe80::1%eth0", "2001:db8::/64", ":::", "1.2.3"]
)
def test_bad_addresses_are_refused_with_one_message(text):
    with pytest.raises(InvalidArgument) as caught:
        parse_ip(text, "group")
    assert str(caught.value) == (
        f"group {text!r} is not a valid IP address (expected a.b.c.d or an IPv6 address)"
    )


def test_ipv6_groups():
    for group in ("ff02::1", "ff05::2", "ff15::1:5", "ff0e::1", "ff3e::8000:1"):
        check_group(A6(group))
    cases = {
        "2001:db8::1": "group 2001:db8::1 is not a multicast address (ff00::/8)",
        "ff01::1": "group ff01::1 has scope 1 (interface-local or reserved): it never leaves"
        " the host",
        "ff10::1": "group ff10::1 has scope 0 (interface-local or reserved): it never leaves"
        " the host",
    }
    for group, message in cases.items():
        with pytest.raises(InvalidArgument) as caught:
            check_group(A6(group))
        assert str(caught.value) == message
    with pytest.raises(InvalidArgument, match="IPv6 has no broadcast"):
        check_group(A6(G6), broadcast=True)


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("ff02::1", "is a multicast address"),
        ("::1", "is a loopback address"),
        ("::", "is an unspecified address"),
        (MAPPED, "is an IPv4-mapped address (give 10.0.0.1 instead)"),
    ],
)
def test_ipv6_members_and_servers_that_are_refused(address, why):
    with pytest.raises(InvalidArgument) as caught:
        check_member(A6(address))
    assert str(caught.value) == f"member {address} {why}"
    with pytest.raises(InvalidArgument) as caught:
        check_server(A6(address))
    assert str(caught.value) == f"server {address} {why}"


def test_ipv6_members_and_servers_that_are_accepted():
    for address in (M1, "fe80::1", "fd00::5", "2600::1"):
        check_member(A6(address))
        check_server(A6(address))


def test_host_port():
    assert host_port(A6(M1), 5000) == "[2001:db8::11]:5000"
    assert host_port(IPv4Address("10.0.0.1"), 0) == "10.0.0.1:0"


# --- the wire -------------------------------------------------------------------------


def test_ipv6_members_round_trip_through_the_member_array():
    members = [A6(M1), A6(M2)]
    data = memberarray.encode(members)
    assert len(data) == 2 * memberarray.ELEMENT_SIZE[6]
    assert [m.address for m in memberarray.decode(data)] == members
    mixed = memberarray.encode([IPv4Address("10.0.0.1"), A6(M1)])
    assert memberarray.decode(mixed) == [
        Member(IPv4Address("10.0.0.1"), ServerCounters()),
        Member(A6(M1), ServerCounters()),
    ]


def test_an_ipv6_request_never_overflows_the_attribute():
    many = [A6(int(A6("2001:db8::")) + i) for i in range(1, MAX_MEMBERS6_PER_REQUEST + 2)]
    assert len(members_value(many[:MAX_MEMBERS6_PER_REQUEST])) < 65536 - 4
    with pytest.raises(InvalidArgument, match=f"give at most {MAX_MEMBERS6_PER_REQUEST}"):
        members_value(many)


def test_the_uapi_has_the_ipv6_attributes():
    # appended after every older attribute; only GENERATION came after them
    assert uapi.MULTIS_A_GROUP_ADDR6 == uapi.MULTIS_A_GENERATION - 1
    assert uapi.MULTIS_A_GENERATION == uapi.MULTIS_A_MAX
    assert uapi.MULTIS_MEMBER_A_ADDR6 == uapi.MULTIS_MEMBER_A_MAX
    assert (uapi.MULTIC_A_SERVER_ADDR6, uapi.MULTIC_A_GROUP_ADDR6) == (
        uapi.MULTIC_A_GENERATION - 2,
        uapi.MULTIC_A_GENERATION - 1,
    )
    assert uapi.MULTIC_A_GENERATION == uapi.MULTIC_A_MAX


# --- the domain API on the fake kernels -----------------------------------------------


@pytest.fixture
def mkernel():
    return FakeMultisKernel(max_groups=2)


@pytest.fixture
def server(mkernel):
    return Server(MultisNetlink(mkernel))


@pytest.fixture
def ckernel():
    return FakeMulticKernel(max_groups=2)


@pytest.fixture
def client(ckernel):
    return Client(MulticNetlink(ckernel))


def test_an_ipv6_group_is_joined_listed_and_quit(server, mkernel):
    result = server.join(G6, [f"{M2},{M1}"])
    assert result.created
    assert result.added == (A6(M2), A6(M1))
    assert mkernel.state() == {G6: (0, [M1, M2])}
    assert [m.address for m in server.members(G6)] == [A6(M1), A6(M2)]
    assert [g.address for g in server.groups()] == [A6(G6)]
    server.quit(G6, [M1])
    assert mkernel.state() == {G6: (0, [M2])}


def test_ipv4_and_ipv6_groups_count_against_one_limit(server, mkernel):
    server.join("239.1.1.1", ["10.0.0.1"])
    server.join(G6, [M1])
    assert [str(g.address) for g in server.groups()] == ["239.1.1.1", G6]
    before = mkernel.state()
    with pytest.raises(Exception, match="group limit 2 reached"):
        server.join("ff15::1:6", [M1])
    assert mkernel.state() == before


@pytest.mark.parametrize(
    ("group", "members", "message"),
    [
        ("239.1.1.1", [M1], "group 239.1.1.1: member 2001:db8::11 is IPv6, the group is IPv4"
         " (one family per group)"),
        (G6, ["10.0.0.1"], "group ff15::1:5: member 10.0.0.1 is IPv4, the group is IPv6"
         " (one family per group)"),
        (G6, [MAPPED], f"member {MAPPED} is an IPv4-mapped address"
         " (give 10.0.0.1 instead)"),
        (G6, ["::1"], "member ::1 is a loopback address"),
        ("ff01::1", [M1], "group ff01::1 has scope 1 (interface-local or reserved):"
         " it never leaves the host"),
        (G6, [G6], "member ff15::1:5 is a configured group"),
    ],
)  # fmt: skip
def test_bad_ipv6_joins_are_refused_before_the_kernel(server, mkernel, group, members, message):
    with pytest.raises(InvalidArgument) as caught:
        server.join(group, members)
    assert str(caught.value) == message
    assert mkernel.requests == []
    assert mkernel.state() == {}


def test_a_quit_of_the_other_family_is_refused(server, mkernel):
    server.join(G6, [M1])
    with pytest.raises(InvalidArgument, match=r"member 10\.0\.0\.1 is IPv4, the group is IPv6"):
        server.quit(G6, ["10.0.0.1"])
    assert mkernel.state() == {G6: (0, [M1])}


def test_the_fake_kernel_refuses_a_mix_on_its_own(mkernel):
    # what the module answers a tool that skipped the checks
    netlink = MultisNetlink(mkernel)
    with pytest.raises(InvalidArgument, match=r"^group ff15::1:5: member 10\.0\.0\.1 is IPv4$"):
        netlink.join(A6(G6), [IPv4Address("10.0.0.1")])
    assert mkernel.state() == {}


def test_an_ipv6_entry_is_added_listed_and_deleted(client, ckernel):
    result = client.add("2001:db8::1", 5000, G6)
    assert (result.server, result.port, result.group) == (A6("2001:db8::1"), 5000, A6(G6))
    assert [(e.server, e.port, e.group) for e in client.entries()] == [
        (A6("2001:db8::1"), 5000, A6(G6))
    ]
    assert client.entry("2001:db8::1", 5000).group == A6(G6)
    client.delete("2001:db8::1", 5000)
    assert ckernel.state() == {}


@pytest.mark.parametrize(
    ("server", "group", "message"),
    [
        ("2001:db8::1", "239.1.1.1", "group 239.1.1.1: server 2001:db8::1 is IPv6, the group"
         " is IPv4 (one family per group)"),
        ("10.0.0.1", G6, "group ff15::1:5: server 10.0.0.1 is IPv4, the group is IPv6"
         " (one family per group)"),
        ("ff02::1", G6, "server ff02::1 is a multicast address"),
        (MAPPED, G6, f"server {MAPPED} is an IPv4-mapped address"
         " (give 10.0.0.1 instead)"),
        ("2001:db8::1", "2001:db8::2", "group 2001:db8::2 is not a multicast address"
         " (ff00::/8)"),
    ],
)  # fmt: skip
def test_bad_ipv6_entries_are_refused(client, ckernel, server, group, message):
    with pytest.raises(InvalidArgument) as caught:
        client.add(server, 5000, group)
    assert str(caught.value) == message
    assert ckernel.requests == []
    assert ckernel.state() == {}


def test_entries_of_both_families_count_against_one_group_limit(client, ckernel):
    client.add("10.0.0.1", 5000, "239.1.1.1")
    client.add("2001:db8::1", 5000, G6)
    with pytest.raises(Exception, match="group limit 2 reached"):
        client.add("2001:db8::1", 5001, "ff15::1:6")
    assert len(ckernel.state()) == 2


# --- the CLIs -------------------------------------------------------------------------


def test_the_issue_commands(multis_admin, multic_admin, state_dir):
    run = multis_admin("-A", "-m", G6, "-j", f"{M1},{M2}")
    assert (run.exit_code, run.stdout) == (0, f"group {G6} created\ngroup {G6}: added {M1}, {M2}\n")
    run = multic_admin("-A", "-i", "2001:db8::1", "-p", "5000", "-m", G6)
    assert (run.exit_code, run.stdout) == (0, f"entry [2001:db8::1]:5000 -> {G6} added\n")
    shown = multis_admin("-S", "--json").json()
    assert [g["group"] for g in shown["groups"]] == [G6]
    listed = multis_admin("-L", "-m", G6, "--json").json()
    assert [m["address"] for m in listed["members"]] == [M1, M2]
    entries = multic_admin("-L", "--json").json()["entries"]
    assert [(e["server"], e["port"], e["group"]) for e in entries] == [("2001:db8::1", 5000, G6)]
    saved = json.loads((state_dir / "multis.json").read_text())
    assert saved["version"] == 2
    assert saved["groups"] == [
        {"group": G6, "broadcast": False, "vrrp": False, "members": [M1, M2]}
    ]
    saved = json.loads((state_dir / "multic.json").read_text())
    assert saved["entries"] == [{"server": "2001:db8::1", "port": 5000, "group": G6}]
    assert multic_admin("-D", "-i", "2001:db8::1", "-p", "5000").exit_code == 0


def test_a_mixed_family_cli_request_is_one_line_and_changes_nothing(
    multis_admin, multis_kernel, state_dir
):
    run = multis_admin("-A", "-m", "239.1.1.1", "-j", f"10.0.0.1,{M1}")
    assert run.exit_code != 0
    assert run.stderr == (
        "multis_admin: group 239.1.1.1: member 2001:db8::11 is IPv6, the group is IPv4"
        " (one family per group)\n"
    )
    assert run.stdout == ""
    assert multis_kernel.state() == {}
    assert multis_kernel.requests == []
    assert not (state_dir / "multis.json").exists()


# --- the state files ------------------------------------------------------------------


def test_a_version_1_file_is_still_read_and_saved_as_version_2(state_dir):
    SERVER.state_file().write(
        {
            "format": "multicast-proxy/multis",
            "version": 1,
            "groups": [{"group": "239.1.1.1", "members": ["10.0.0.1"]}],
        }
    )
    kernel = FakeMultisKernel()
    server = Server(MultisNetlink(kernel))
    assert SERVER.restore(server).ok
    assert kernel.state() == {"239.1.1.1": (0, ["10.0.0.1"])}
    server.join(G6, [M1])
    SERVER.save(server)
    saved = json.loads((state_dir / "multis.json").read_text())
    assert saved["version"] == 2
    assert [g["group"] for g in saved["groups"]] == ["239.1.1.1", G6]
    config = ServerConfig.from_json(saved)
    assert [g.group for g in config.groups] == [IPv4Address("239.1.1.1"), A6(G6)]


def test_a_client_file_with_ipv6_restores(state_dir):
    CLIENT.state_file().write(
        {
            "format": "multicast-proxy/multic",
            "version": 2,
            "entries": [{"server": "2001:db8::1", "port": 0, "group": G6}],
        }
    )
    kernel = FakeMulticKernel()
    assert CLIENT.restore(Client(MulticNetlink(kernel))).ok
    assert kernel.state() == {"2001:db8::1:0": G6}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            {"format": "multicast-proxy/multis", "version": 1,
             "groups": [{"group": G6, "members": [M1]}]},
            "groups[0]: an IPv6 address in a version 1 file",
        ),
        (
            {"format": "multicast-proxy/multis", "version": 2,
             "groups": [{"group": G6, "members": ["fe80::1%eth0"]}]},
            "groups[0].members[0] 'fe80::1%eth0' is not a valid IP address",
        ),
    ],
)  # fmt: skip
def test_bad_ipv6_state_is_refused(content, problem):
    from multicast_admin.config.schema import Invalid

    with pytest.raises(Invalid, match=problem.replace("[", r"\[").replace("]", r"\]")):
        ServerConfig.from_json(content)


def test_the_old_implementation_files_stay_ipv4_only():
    from multicast_admin.config.legacy import server_config_from_legacy
    from multicast_admin.config.schema import Invalid

    with pytest.raises(Invalid, match="is IPv6: the old implementation's files are IPv4 only"):
        server_config_from_legacy({"multi_group_array": [{"group_ip": G6, "member_array": [M1]}]})
