"""The kernel data plane on a simulated VPC, in a real kernel (one VM boot).

Guest side: tests/vm/guest/dataplane.py.  A sender and three receivers in
network namespaces, joined by a bridge whose nft rules drop IPv4 multicast and
broadcast.
"""

from __future__ import annotations

import errno

GUEST = "tests/vm/guest/dataplane.py"

RECEIVERS = ("recv1", "recv2", "recv3")
SENDER = "10.0.0.1"
G1, G2 = "239.1.1.1", "239.2.2.2"
COUNT = 20


def frames(switch, *, multicast=0, broadcast=0, marked=0):
    """The switch saw exactly these UDP frames (the receivers' IGMP is counted apart)."""
    assert {k: v for k, v in switch.items() if k != "igmp"} == {
        "udp_multicast": multicast,
        "udp_broadcast": broadcast,
        "udp_marked": marked,
    }, switch


def test_without_the_modules_nothing_arrives(facts):
    step = facts["baseline"]
    for name in RECEIVERS:
        assert step["received"][name]["count"] == 0
    # every datagram reached the switch once, and was dropped there
    frames(step["switch"], multicast=COUNT)
    assert step["module_missing"]["kind"] == "ModuleNotLoaded"
    assert "multis kernel module is not loaded" in step["module_missing"]["message"]


def test_modules_load_with_the_guide_limits(facts):
    step = facts["load"]
    assert sorted(step["lsmod"]) == ["multic", "multis"]
    assert step["params"] == {"max_groups": "10", "max_members": "128"}
    assert step["client_max_groups"] == "10"


def test_configuration_reads_back(facts):
    step = facts["configure"]
    assert step["groups"] == [G1, G2]
    assert step["members"] == ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    for name in RECEIVERS:
        assert step["entries"][name] == [f"{SENDER}:0>{G2}", f"{SENDER}:5000>{G1}"]


def test_every_receiver_gets_every_datagram_intact(facts):
    got = facts["delivery"]["received"]
    for name in RECEIVERS:
        assert got[name]["count"] == COUNT
        assert got[name]["intact"], "payloads differ or arrived out of order"
        assert got[name]["sources"] == [got["source"]]
        assert got[name]["destinations"] == [G1]
    assert got["source"].startswith(f"{SENDER}:")


def test_the_original_still_leaves_the_sender_next_to_the_copies(facts):
    # each original once (the switch drops it), and one marked copy per member
    frames(facts["delivery"]["switch"], multicast=COUNT, marked=COUNT * 3)


def test_server_counters_are_exact(facts):
    step = facts["delivery"]
    size = step["sent_bytes_ip"]
    assert step["group_stats"] == {
        "datagrams": COUNT,
        "packets": COUNT * 3,
        "bytes": size * 3,
        "drop_no_member": 0,
        "drop_nomem": 0,
        "drop_no_route": 0,
        "drop_xmit": 0,
        "drop_too_big": 0,
    }
    for member in ("10.0.0.11", "10.0.0.12", "10.0.0.13"):
        assert step["member_stats"][member] == {
            "packets": COUNT,
            "bytes": size,
            "drop_nomem": 0,
            "drop_no_route": 0,
            "drop_xmit": 0,
            "drop_too_big": 0,
        }
    assert step["server_totals"]["stats"]["datagrams"] == COUNT
    assert step["server_totals"]["stats"]["packets"] == COUNT * 3
    assert step["server_totals"]["group_count"] == 2


def test_client_counters_are_exact(facts):
    step = facts["delivery"]
    for name in RECEIVERS:
        assert step["client_entry_stats"][name] == {
            "packets": COUNT,
            "bytes": step["sent_bytes_ip"],
            "not_local": 0,
            "drop_nomem": 0,
        }
        assert step["client_totals"][name]["stats"]["packets"] == COUNT
        assert step["client_totals"][name]["entry_count"] == 2
        assert step["client_totals"][name]["group_count"] == 2


def test_any_port_entries_restore_every_port(facts):
    step = facts["any_port"]
    for port in ("port_6000", "port_6001"):
        for name in RECEIVERS:
            assert step[port][name]["count"] == 5
            assert step[port][name]["intact"]
            assert step[port][name]["destinations"] == [G2]


def test_other_groups_and_unicast_are_untouched(facts):
    step = facts["untouched"]
    for name in RECEIVERS:
        assert step["other_group"][name]["count"] == 0
    # they reached the switch, unmarked and uncopied, and were dropped there
    frames(step["other_group_switch"], multicast=5)
    assert step["unicast"] == {"payload": "plain unicast", "source": SENDER}


def test_a_4000_byte_datagram_arrives_whole(facts):
    got = facts["big_datagram"]["received"]
    for name in RECEIVERS:
        assert got[name]["count"] == 3
        assert got[name]["sizes"] == [4000]
        assert got[name]["intact"]


def test_udp_gso_segments_all_arrive(facts):
    got = facts["udp_gso"]["received"]
    for name in RECEIVERS:
        assert got[name] == [1000, 1000, 1000]


def test_datagrams_without_udp_checksum_arrive(facts):
    got = facts["no_checksum"]["received"]
    assert got == dict.fromkeys(RECEIVERS, True)


def test_a_zero_udp_checksum_stays_zero_on_the_wire(facts):
    wire = facts["no_checksum"]["on_the_wire"]
    copy = {
        "tos": 0xE0,
        "source": SENDER,
        "destination": "10.0.0.11",
        "sport": 40001,
        "dport": 5000,
        "checksum": 0,
    }
    assert wire == [copy] * 5, wire


def _refused(result, errno_code, *words):
    """Refused by the kernel, with its own extack message saying ``words``."""
    assert "ok" not in result, f"accepted, but should have been refused: {result}"
    assert result["errno"] == errno_code, result
    assert result["extack"], f"the kernel sent no extack message: {result}"
    for word in words:
        assert word in result["extack"], result


def test_broadcast_groups_cross_the_vpc(facts):
    step = facts["broadcast_and_vrrp"]
    for name in RECEIVERS:
        assert step["broadcast_baseline"][name]["count"] == 0
    frames(step["broadcast_baseline_switch"], broadcast=3)
    _refused(step["client_flag_missing"], errno.EINVAL, "10.0.0.255", "broadcast flag")
    for name in RECEIVERS:
        assert step["client_entries"][name] == [
            "7000>255.255.255.255:True",
            "7001>10.0.0.255:True",
        ]
    for group in ("255.255.255.255", "10.0.0.255"):
        got = step["broadcast"][group]
        for name in RECEIVERS:
            assert got[name]["count"] == 5, (group, got)
            assert got[name]["intact"], group
            assert got[name]["sources"] == [got["source"]]
            # restored to the broadcast address itself
            assert got[name]["destinations"] == [group]


def test_a_broadcast_of_another_subnet_is_left_alone(facts):
    step = facts["broadcast_and_vrrp"]
    got = step["foreign_broadcast"]
    assert got["recv1"]["count"] == 0  # its entry names 10.0.1.255
    assert got["recv2"]["count"] == got["recv3"]["count"] == 5
    assert step["foreign_broadcast_entry"] == {
        "packets": 0,
        "bytes": 0,
        "not_local": 5,
        "drop_nomem": 0,
    }


def test_vrrp_group_crosses_the_vpc_with_ttl_255(facts):
    step = facts["broadcast_and_vrrp"]
    for name in RECEIVERS:
        got = step["vrrp"][name]
        assert got["count"] == 5, got
        assert got["intact"]
        assert got["ttls"] == [255]
        assert got["sources"] == [SENDER]
        assert got["destinations"] == ["224.0.0.18"]
    assert step["vrrp_group_stats"]["datagrams"] == 5
    assert step["vrrp_group_stats"]["packets"] == 15


def test_bad_members_are_refused_and_change_nothing(facts):
    step = facts["bad_members"]
    _refused(step["group_itself"], errno.EINVAL, G1)
    _refused(step["another_group"], errno.EINVAL, G2)
    assert step["broadcast_group"] == {"ok": True}
    _refused(step["member_is_broadcast_group"], errno.EINVAL, "10.0.0.255", "group")
    _refused(step["group_is_member"], errno.EINVAL, "10.0.0.12", "member")
    _refused(step["multicast"], errno.EINVAL, "224.5.5.5", "multicast")
    _refused(step["loopback"], errno.EINVAL, "127.0.0.1", "loopback")
    _refused(step["unspecified"], errno.EINVAL, "0.0.0.0")
    _refused(step["broadcast_member"], errno.EINVAL, "255.255.255.255")
    _refused(step["mixed_batch"], errno.EINVAL, "127.0.0.2")
    # all or nothing: the good member of the refused batch was not added
    assert step["members_after"] == ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    _refused(step["group_not_multicast"], errno.EINVAL, "10.1.1.1")
    _refused(step["quit_unknown_member"], errno.ENOENT, "10.0.0.99")
    _refused(step["delete_unknown_group"], errno.ENOENT, "239.9.9.9")


def test_a_member_without_route_does_not_hurt_the_others(facts):
    step = facts["no_route"]
    for name in RECEIVERS:
        assert step["received"][name]["count"] == 5
        assert step["received"][name]["intact"]
    assert step["member_stats"]["10.9.9.9"]["packets"] == 0
    assert step["member_stats"]["10.9.9.9"]["drop_no_route"] == 5
    assert step["member_stats"]["10.0.0.11"]["packets"] == 5


def test_unprivileged_changes_get_eperm(facts):
    step = facts["unprivileged"]
    # reads work (2 groups), every change is refused with EPERM
    assert step["stdout"] == str([2] + [errno.EPERM] * 4 + [errno.EPERM] * 2), step["stderr"]
    assert step["groups_after"] == [G1, G2]


def test_the_11th_group_is_refused(facts):
    step = facts["group_limit"]
    assert step["accepted"] == 10
    _refused(step["eleventh"], errno.ENOSPC, "group limit 10")
    assert step["group_count"] == 10


def test_the_129th_member_is_refused(facts):
    step = facts["member_limit"]
    assert step["first_128"] == {"ok": True}
    _refused(step["the_129th"], errno.ENOSPC, G1, "member limit 128")
    assert step["count"] == 128


def test_the_11th_client_group_is_refused(facts):
    step = facts["member_limit"]
    assert all(r == {"ok": True} for r in step["client_results"][:10])
    _refused(step["client_results"][10], errno.ENOSPC, "group limit 10")
    assert step["client_entries"] == 10


def test_module_parameters_raise_the_limits(facts):
    step = facts["raised_limits"]
    assert step["groups"] == 21
    assert step["members"] == 3000
    assert step["members_equal"]
    assert step["client_entries"] == 30


def test_rmmod_while_traffic_flows_is_clean(facts):
    step = facts["rmmod_under_traffic"]
    assert step["sent"] > 0
    assert len(step["cycles"]) == 4
    for cycle in step["cycles"]:
        assert cycle["lsmod_after"] == "0"
        for name in RECEIVERS:
            # every cycle delivered to every receiver before its unload
            assert cycle["received"][name] > 0
    assert step["reload_ok"]


def test_kernel_log_is_clean(facts):
    facts.assert_clean_end()
