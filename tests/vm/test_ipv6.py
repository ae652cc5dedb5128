"""IPv6 fan-out (issue 11) on the simulated VPC, in a real kernel (one VM boot).

Guest side: tests/vm/guest/ipv6.py.  The VPC's switch drops IPv6 multicast
except neighbour discovery.  multis fans an IPv6 group out; multic does not
restore IPv6 yet, so each receiver reads the copies on a socket bound to its
own address (after its stack, without rx checksum offload, verified the UDP
checksum), and the socket joined to the group stays empty.
"""

from __future__ import annotations

import errno

GUEST = "tests/vm/guest/ipv6.py"

RECEIVERS = ("recv1", "recv2", "recv3")
ADDR6 = {"recv1": "2001:db8::11", "recv2": "2001:db8::12", "recv3": "2001:db8::13"}
SOURCE = "[2001:db8::1]:40000"
G6, G4 = "ff15::1:5", "239.1.1.1"
COUNT = 20
MARKER = 0xE0


def test_without_the_modules_nothing_arrives(facts):
    step = facts["baseline"]
    for name in RECEIVERS:
        assert step["received"][name]["joined"]["count"] == 0
        assert step["received"][name]["copies"]["count"] == 0
    assert step["switch"] == {"udp6_multicast": COUNT, "udp6_marked": 0}


def test_configuration_reads_back_in_ipv6(facts):
    step = facts["configure"]
    assert step["groups"] == [G6]
    assert step["members"] == [ADDR6[n] for n in RECEIVERS]
    assert step["group"] == G6


def test_every_member_gets_every_datagram_as_a_marked_copy(facts):
    step = facts["delivery"]
    got = step["received"]
    assert got["source"] == SOURCE
    for name in RECEIVERS:
        copies = got[name]["copies"]
        assert copies["count"] == COUNT, (name, copies)
        assert copies["intact"], "payloads differ"
        assert copies["sources"] == [SOURCE]
        assert copies["destinations"] == [ADDR6[name]]
        assert copies["tclasses"] == [MARKER]
        assert copies["hop_limits"] == [64]  # raised from the sender's 1
        assert got[name]["joined"]["count"] == 0  # not restored: multic has no IPv6 yet
    # the originals once each (dropped), one marked copy per member
    assert step["switch"] == {"udp6_multicast": COUNT, "udp6_marked": COUNT * 3}


def test_no_copy_had_a_wrong_checksum(facts):
    for name, errors in facts["delivery"]["udp6_errors"].items():
        assert errors == {"Udp6InErrors": 0, "Udp6InCsumErrors": 0}, name


def test_server_counters_are_exact(facts):
    step = facts["delivery"]
    size = step["wire_size"]
    assert step["group_stats"] == {
        "datagrams": COUNT,
        "packets": COUNT * 3,
        "bytes": COUNT * 3 * size,
        "drop_no_member": 0,
        "drop_nomem": 0,
        "drop_no_route": 0,
        "drop_xmit": 0,
        "drop_too_big": 0,
    }
    for name in RECEIVERS:
        assert step["member_stats"][ADDR6[name]] == {
            "packets": COUNT,
            "bytes": COUNT * size,
            "drop_nomem": 0,
            "drop_no_route": 0,
            "drop_xmit": 0,
            "drop_too_big": 0,
        }


def test_an_8000_byte_datagram_arrives_whole(facts):
    step = facts["big_datagram"]
    for name in RECEIVERS:
        copies = step["received"][name]["copies"]
        assert (copies["count"], copies["intact"], copies["sizes"]) == (2, True, [8000])
    assert step["group_stats"]["datagrams"] == 2
    assert step["group_stats"]["packets"] == 6


def test_udp_gso_copies_are_segmented_with_right_checksums(facts):
    step = facts["udp_gso"]
    for name in RECEIVERS:
        copies = step["received"][name]["copies"]
        assert (copies["count"], copies["intact"], copies["sizes"]) == (4, True, [500]), name
        assert copies["tclasses"] == [MARKER]
    stats = step["group_stats"]
    # one datagram, 4 segments per member, each 40 + 8 + 500 bytes on the wire
    assert (stats["datagrams"], stats["packets"], stats["bytes"]) == (1, 12, 3 * 4 * 548)


def test_hop_limit_zero_stays_on_the_host(facts):
    step = facts["hop_limit_zero"]
    for name in RECEIVERS:
        assert step["received"][name]["copies"]["count"] == 0
    assert step["group_stats"]["datagrams"] == 0
    assert step["group_stats"]["packets"] == 0


def refused(error, message, code=errno.EINVAL):
    assert error.get("errno") == code, error
    assert message in error["message"], error


def test_refusals_name_the_reason_and_change_nothing(facts):
    step = facts["refusals"]
    refused(
        step["ipv6_member_in_ipv4_group"],
        "group 239.1.1.1: member 2001:db8::11 is IPv6",
    )
    refused(
        step["ipv4_member_in_ipv6_group"],
        "group ff15::1:5: member 10.0.0.11 is IPv4",
    )
    refused(
        step["interface_local_group"],
        "group ff01::1: scope 1 never leaves the host",
    )
    refused(step["unicast_group"], "group 2001:db8::99 is not multicast (ff00::/8)")
    refused(step["loopback_member"], "member ::1 is a loopback address")
    refused(step["multicast_member"], "member ff02::1 is a multicast address")
    refused(step["mapped_member"], "is IPv4-mapped (give 10.0.0.11)")
    refused(step["group_as_member"], "member ff15::1:5 is a configured group")
    assert step["members_after"] == [ADDR6[n] for n in RECEIVERS]
    assert step["groups_after"] == [G4, G6]


def test_the_group_limit_counts_both_families(facts):
    step = facts["refusals"]
    refused(step["eleventh"], "group limit 10 reached", errno.ENOSPC)
    assert step["group_count"] == 10


def test_ipv4_and_ipv6_groups_at_once(facts):
    step = facts["both_families"]
    for name in RECEIVERS:
        four = step["ipv4"][name]
        assert (four["count"], four["intact"], four["destinations"]) == (COUNT, True, [G4])
        six = step["ipv6"][name]["copies"]
        assert (six["count"], six["intact"], six["tclasses"]) == (COUNT, True, [MARKER])
    for stats in (step["stats4"], step["stats6"]):
        assert (stats["datagrams"], stats["packets"]) == (COUNT, COUNT * 3)


def test_multic_refuses_an_ipv6_entry_and_changes_nothing(facts):
    # until multic restores IPv6: one refusal, no change (usage.md says so)
    step = facts["multic_refuses_ipv6"]
    assert step["refused"].get("errno") == errno.EINVAL, step
    assert step["unchanged"]


def test_the_guest_ran_to_the_end_with_a_clean_kernel(facts):
    assert facts["unload"]["ok"]
    facts.assert_clean_end()
