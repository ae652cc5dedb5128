"""IPv6 (issue 11) on the simulated VPC, in a real kernel (one VM boot).

Guest side: tests/vm/guest/ipv6.py.  The VPC's switch drops IPv6 multicast
except neighbour discovery.  multis fans an IPv6 group out: before the
receivers have multic entries, each reads the copies on a socket bound to
its own address (after its stack, without rx checksum offload, verified the
UDP checksum), and the socket joined to the group stays empty.  Then multic
restores them: the joined socket gets every datagram, to the group.
"""

from __future__ import annotations

import errno

import pytest

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
        assert got[name]["joined"]["count"] == 0  # not restored: no multic entry yet
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


def test_multic_takes_ipv6_entries_from_the_cli_and_lists_them(facts):
    step = facts["multic_configure"]
    assert step["cli_add"]["code"] == 0, step["cli_add"]
    entry = ["2001:db8::1", 5000, G6]
    for name in RECEIVERS:
        assert step["entries"][name] == [entry]
    listed = step["cli_list"]
    assert [[e["server"], e["port"], e["group"]] for e in listed] == [entry]
    saved = step["state_file"]
    assert [[e["server"], e["port"], e["group"]] for e in saved["entries"]] == [entry]


def test_multic_restores_every_datagram_to_the_group(facts):
    step = facts["restore"]
    got = step["received"]
    for name in RECEIVERS:
        joined = got[name]["joined"]
        assert joined["count"] == COUNT, (name, joined)
        assert joined["intact"], "payloads differ"
        assert joined["sources"] == [SOURCE]
        assert joined["destinations"] == [G6]
        assert joined["tclasses"] == [MARKER]  # the marker stays, as IPv4's TOS
        assert joined["hop_limits"] == [64]
        assert got[name]["copies"]["count"] == 0  # none left as unicast
    size = step["wire_size"]
    for name in RECEIVERS:
        assert step["entry"][name] == {
            "packets": COUNT,
            "bytes": COUNT * size,
            "not_local": 0,
            "drop_nomem": 0,
        }
        assert step["multic"][name] == {
            "packets": COUNT,
            "bytes": COUNT * size,
            "not_local": 0,
            "drop_nomem": 0,
            "no_entry": 0,
            "not_udp": 0,
        }
    assert (step["group_stats"]["datagrams"], step["group_stats"]["packets"]) == (COUNT, COUNT * 3)


def test_restored_datagrams_have_right_checksums(facts):
    # the receivers verify every UDP checksum after multic rewrote the destination
    for name, errors in facts["restore"]["udp6_errors"].items():
        assert errors == {"Udp6InErrors": 0, "Udp6InCsumErrors": 0}, name


def test_an_8000_byte_datagram_arrives_whole_through_multic(facts):
    step = facts["big_datagram"]
    for name in RECEIVERS:
        joined = step["received"][name]["joined"]
        assert (joined["count"], joined["intact"], joined["sizes"]) == (2, True, [8000]), name
        assert joined["destinations"] == [G6]
        stats = step["multic"][name]
        assert (stats["packets"], stats["bytes"]) == (2, 2 * (40 + 8 + 8000)), name
    assert step["group_stats"]["datagrams"] == 2
    assert step["group_stats"]["packets"] == 6
    # reassembled before multic's hook: no fragment reached priority -300
    assert step["fragments_after_defrag"] == 0


def test_udp_gso_copies_are_segmented_with_right_checksums(facts):
    step = facts["udp_gso"]
    for name in RECEIVERS:
        joined = step["received"][name]["joined"]
        assert (joined["count"], joined["intact"], joined["sizes"]) == (4, True, [500]), name
        assert joined["tclasses"] == [MARKER]
        assert joined["destinations"] == [G6]
    stats = step["group_stats"]
    # one datagram, 4 segments per member, each 40 + 8 + 500 bytes on the wire
    assert (stats["datagrams"], stats["packets"], stats["bytes"]) == (1, 12, 3 * 4 * 548)


def test_hop_limit_zero_stays_on_the_host(facts):
    step = facts["hop_limit_zero"]
    for name in RECEIVERS:
        assert step["received"][name]["copies"]["count"] == 0
        assert step["received"][name]["joined"]["count"] == 0
    assert step["group_stats"]["datagrams"] == 0
    assert step["group_stats"]["packets"] == 0


def test_multic_counts_what_is_not_its_own(facts):
    stats = facts["not_ours"]["multic"]
    # 5 copies to a port without an entry everywhere; 3 marked ICMPv6 and 2
    # marked packets of an unknown next header to recv1 only
    for name in RECEIVERS:
        assert stats[name]["packets"] == 0, name
        assert stats[name]["no_entry"] == 5, name
        assert stats[name]["not_udp"] == (5 if name == "recv1" else 0), name
    assert facts["not_ours"]["cli_stats"]["not_udp"] == 5


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


def test_multic_refusals_name_the_reason_and_change_nothing(facts):
    step = facts["multic_refusals"]
    kernel = step["kernel"]
    refused(kernel["ipv4_server_ipv6_group"], "group ff15::1:5: server 10.0.0.1 is IPv4")
    refused(kernel["ipv6_server_ipv4_group"], "group 239.1.1.1: server 2001:db8::1 is IPv6")
    refused(kernel["unicast_group"], "group 2001:db8::99 is not multicast (ff00::/8)")
    refused(kernel["broadcast_group"], "group 2001:db8::99: IPv6 has no broadcast")
    refused(kernel["interface_local_group"], "group ff01::1: scope 1 never leaves the host")
    refused(kernel["mapped_server"], "server ::ffff:10.0.0.1 is IPv4-mapped (give 10.0.0.1)")
    refused(kernel["multicast_server"], "server ff02::1 is not a unicast address")
    refused(kernel["loopback_server"], "server ::1 is not a unicast address")
    refused(
        kernel["duplicate"],
        "entry [2001:db8::1]:5000 already maps to ff15::1:5",
        errno.EEXIST,
    )
    refused(kernel["missing"], "no entry for [2001:db8::2]:5000", errno.ENOENT)
    cli = step["cli"]
    expected = {
        "ipv4_server_ipv6_group": "group ff15::1:5: server 10.0.0.1 is IPv4",
        "unicast_group": "group 2001:db8::99 is not a multicast address (ff00::/8)",
        "mapped_server": "is an IPv4-mapped address (give 10.0.0.1 instead)",
    }
    for name, message in expected.items():
        run = cli[name]
        assert run["code"] == 2, (name, run)
        assert message in run["err"], (name, run)
        assert len(run["err"].strip().splitlines()) == 1, (name, run)
    assert step["unchanged"]
    assert step["file_unchanged"]


def test_the_multic_group_limit_counts_both_families(facts):
    step = facts["multic_refusals"]
    refused(step["eleventh6"], "group limit 10 reached", errno.ENOSPC)
    refused(step["eleventh4"], "group limit 10 reached", errno.ENOSPC)
    assert step["same_group_fits"] == {"ok": True}  # one more entry, no new group
    assert step["group_count"] == 10
    assert step["after"]


def test_ipv4_and_ipv6_groups_at_once(facts):
    step = facts["both_families"]
    for name in RECEIVERS:
        four = step["ipv4"][name]
        assert (four["count"], four["intact"], four["destinations"]) == (COUNT, True, [G4])
        six = step["ipv6"][name]["joined"]
        assert (six["count"], six["intact"], six["destinations"]) == (COUNT, True, [G6])
        assert step["ipv6"][name]["copies"]["count"] == 0
        assert step["entry4"][name]["packets"] == COUNT
        assert step["entry6"][name]["packets"] == COUNT
    for stats in (step["stats4"], step["stats6"]):
        assert (stats["datagrams"], stats["packets"]) == (COUNT, COUNT * 3)


@pytest.mark.parametrize("mode", ["csum", "zero_csum"])
def test_vxlan_over_an_ipv6_underlay_reaches_every_overlay(facts, mode):
    """Encapsulated IPv6: the outer UDP checksum right after both rewrites (zero stays zero)."""
    step = facts["vxlan6"][mode]
    assert step["group_stats"]["datagrams"] == 5, step
    for name in ("recv1", "recv2", "recv3"):
        assert step[name] == {"count": 5, "intact": True}, (name, step)
        assert step["udp6_errors"][name] == {"Udp6InErrors": 0, "Udp6InCsumErrors": 0}, step
        assert step["entry"][name]["packets"] == 5, step
    if mode == "zero_csum":
        assert "udp6zerocsumtx" in step["details"]


def test_iperf2_receives_the_group_through_multic(facts):
    step = facts["iperf"]
    assert step["sent"] > 50, step
    assert step["lost_total"] is not None, step
    lost, total = step["lost_total"]
    assert total >= step["sent"] - 2, step
    assert lost <= max(2, total // 50), step  # at most 2 %
    assert step["peer"], step["server"]  # bound to the group, from the sender


def test_removing_the_ipv6_entries_stops_delivery_and_the_hook(facts):
    step = facts["removal"]
    assert step["filter"] == ["multic_hook", "multic_hook6"]
    full = step["with_entries"]
    assert full["joined"] == dict.fromkeys(RECEIVERS, 5)
    assert full["copies"] == dict.fromkeys(RECEIVERS, 0)
    assert full["fragments"] == 0
    assert full["calls6"] > 0
    one = step["one_deleted"]
    assert one["joined"] == {"recv1": 0, "recv2": 5, "recv3": 5}
    assert one["copies"] == {"recv1": 5, "recv2": 0, "recv3": 0}
    assert one["calls6"] > 0  # recv2 and recv3 still have theirs
    none = step["all_deleted"]
    assert none["joined"] == dict.fromkeys(RECEIVERS, 0)
    assert none["copies"] == dict.fromkeys(RECEIVERS, 5)
    assert none["calls6"] == 0  # the IPv6 hook went with the last IPv6 entry
    for observed in (full, one, none):
        assert observed["ipv4"] == dict.fromkeys(RECEIVERS, 5)  # the IPv4 entries stay
        assert observed["calls4"] > 0
    if step["kernel"].startswith("5.10."):
        # nf_defrag_ipv6_disable() appeared in 5.13: defrag stays once enabled
        assert (one["fragments"], none["fragments"]) == (0, 0)
    else:
        assert one["fragments"] > 0
        assert none["fragments"] > 0
    assert step["entries"] == {n: [["10.0.0.1", 5000, G4]] for n in RECEIVERS}


def test_the_guest_ran_to_the_end_with_a_clean_kernel(facts):
    assert facts["unload"]["ok"]
    facts.assert_clean_end()
