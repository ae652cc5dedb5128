"""The data path's edge cases on a simulated VPC, in a real kernel (one VM boot).

Guest side: tests/vm/guest/dataplane_edges.py.  The switch's ports run
without checksum offload and the hosts verify checksums in software, so a
copy with a wrong UDP checksum is dropped by its receiver.
"""

from __future__ import annotations

GUEST = "tests/vm/guest/dataplane_edges.py"

RECEIVERS = ("recv1", "recv2", "recv3")
HOSTS = ("sender", *RECEIVERS)
OVERLAY_SENDER = "192.168.100.1"
OVERLAY_BROADCAST = "192.168.100.255"


def test_the_vpc_computes_and_verifies_checksums_in_software(facts):
    step = facts["offloads"]
    for name in HOSTS:
        # the wire: every packet leaves the switch with its checksum computed
        assert step["switch_ports"][name] == {
            "tx-checksumming": "off",
            "rx-checksumming": "off",
        }, name
        # the hosts verify in software; they keep tx offload (CHECKSUM_PARTIAL, UDP GSO)
        assert step["hosts"][name] == {"tx-checksumming": "on", "rx-checksumming": "off"}, name


def test_without_the_proxy_the_vxlan_overlay_is_cut(facts):
    step = facts["vxlan_baseline"]
    assert "vxlan id 42 group 239.1.1.100" in step["vxlan_details"]  # a real VXLAN device
    for name in RECEIVERS:
        assert step["received"][name]["count"] == 0


def _assert_overlay_broadcast_arrives(step):
    for name in RECEIVERS:
        got = step["received"][name]
        assert got["count"] == 5, (name, step)
        assert got["intact"], name
        assert got["sources"] == [f"{OVERLAY_SENDER}:40000"]
        assert got["destinations"] == [OVERLAY_BROADCAST]
        assert step["udp_in_csum_errors"][name] == 0
        assert step["entry_stats"][name]["packets"] == 5
    assert step["group_stats"]["datagrams"] == 5
    assert step["group_stats"]["packets"] == 15
    assert step["group_stats"]["drop_xmit"] == 0


def test_vxlan_without_outer_udp_checksum_crosses_the_vpc(facts):
    # outer checksum 0, inner CHECKSUM_PARTIAL: the copy's outer checksum stays 0
    _assert_overlay_broadcast_arrives(facts["vxlan_noudpcsum"])


def test_vxlan_with_outer_udp_checksum_crosses_the_vpc(facts):
    # local checksum offload: a full outer checksum next to the inner seed
    _assert_overlay_broadcast_arrives(facts["vxlan_udpcsum"])


def test_a_multicast_with_ttl_0_stays_on_the_host(facts):
    step = facts["ttl_zero"]
    zero, one = step["ttl_0"], step["ttl_1"]
    for name in RECEIVERS:
        assert zero["received"][name]["count"] == 0, name
    assert zero["group_stats"]["datagrams"] == 0
    assert zero["group_stats"]["packets"] == 0
    # the local loopback copy is still delivered
    assert zero["local"]["count"] == 5
    assert zero["local"]["intact"]
    # the same socket with TTL 1 reaches every member
    for name in RECEIVERS:
        assert one["received"][name]["count"] == 5, name
        assert one["received"][name]["intact"]
    assert one["group_stats"]["datagrams"] == 5
    assert one["local"]["count"] == 5


def test_unicast_to_a_broadcast_group_that_is_unicast_is_not_duplicated(facts):
    step = facts["unicast_group"]
    members = ["10.0.0.11", "10.0.0.12", "10.0.0.13"]
    assert step["join"] == {"10.0.0.50": members, "10.0.0.255": members}
    for name in RECEIVERS:
        assert step["unicast"][name]["count"] == 0, name
    assert step["unicast_group_stats"]["datagrams"] == 0
    assert step["unicast_group_stats"]["packets"] == 0
    # a real broadcast group still fans out (no multic entry: plain unicast copies)
    for name, addr in zip(RECEIVERS, members, strict=True):
        got = step["broadcast"][name]
        assert got["count"] == 5, name
        assert got["intact"]
        assert got["destinations"] == [addr]
    assert step["broadcast_group_stats"]["datagrams"] == 5


def test_a_copy_into_a_tunnel_over_a_group_is_not_fanned_out_again(facts):
    step = facts["tunnel_recursion"]
    assert step["received"]["recv1"]["count"] == 5
    assert step["received"]["recv1"]["intact"]
    assert step["group_stats"]["datagrams"] == 5
    assert step["group_stats"]["packets"] == 10
    for member in ("10.0.0.11", "172.16.0.2"):
        assert step["member_stats"][member]["packets"] == 5, member
        assert step["member_stats"][member]["drop_xmit"] == 0, member


def test_an_output_rule_dropping_the_group_stops_every_copy(facts):
    step = facts["egress_filter"]
    assert "error" not in step, step.get("error")
    dropped, allowed = step["dropped"], step["allowed"]
    assert "drop" in dropped["rule"]
    assert dropped["refused"] == 5  # the sender is told: EPERM
    for name in RECEIVERS:
        assert dropped["received"][name]["count"] == 0, name
    # the hook never saw the datagram: nothing fanned out, nothing counted
    assert dropped["group_stats"]["datagrams"] == 0
    assert dropped["group_stats"]["packets"] == 0
    # the rule removed, every copy arrives again
    for name in RECEIVERS:
        assert allowed["received"][name]["count"] == 5, name
        assert allowed["received"][name]["intact"], name
    assert allowed["group_stats"]["datagrams"] == 5
    assert allowed["group_stats"]["packets"] == 15


def test_a_rule_on_the_owner_drops_that_senders_copies_only(facts):
    step = facts["egress_owner"]
    assert "error" not in step, step.get("error")
    assert "skuid 1234" in step["rule"]
    uid, root = step["uid"], step["root"]
    # uid 1234's copy to recv1 is its packet, and the rule drops it
    assert uid["received"]["recv1"]["count"] == 0
    assert uid["member_stats"]["10.0.0.11"]["drop_xmit"] == 5
    for name in ("recv2", "recv3"):
        assert uid["received"][name]["count"] == 5, name
        assert uid["received"][name]["intact"], name
    assert uid["group_stats"]["datagrams"] == 5
    # root's copies are not uid 1234's
    for name in RECEIVERS:
        assert root["received"][name]["count"] == 5, name
    assert root["group_stats"]["drop_xmit"] == 0


def test_a_df_copy_over_a_members_mtu_is_counted_not_lost_silently(facts):
    step = facts["egress_df"]
    assert "error" not in step, step.get("error")
    do, want = step["do"], step["want"]
    # IP_PMTUDISC_DO: recv3 is behind MTU 1000, the 1228-byte copies are not sent
    assert do["received"]["recv3"]["count"] == 0
    assert do["member_stats"]["10.0.0.13"]["drop_too_big"] == 5
    assert do["member_stats"]["10.0.0.13"]["packets"] == 0
    assert do["group_stats"]["drop_too_big"] == 5
    for name in ("recv1", "recv2"):
        assert do["received"][name]["count"] == 5, name
        assert do["received"][name]["intact"], name
    # the default (IP_PMTUDISC_WANT) lets the stack fragment: all arrive
    for name in RECEIVERS:
        assert want["received"][name]["count"] == 5, name
        assert want["received"][name]["intact"], name
    assert want["group_stats"]["drop_too_big"] == 0


def test_copies_from_a_vrf_are_routed_in_the_vrf(facts):
    step = facts["egress_vrf"]
    assert "error" not in step, step.get("error")
    assert "10.0.1.0/24" not in step["main_routes"]
    assert "10.0.1.0/24" in step["vrf_routes"]
    # bound to the VRF (SO_BINDTODEVICE), or multicasting out of its device
    for how in ("bound", "mcast_if"):
        got = step[how]
        assert got["side"]["count"] == 5, (how, got)
        assert got["side"]["intact"], how
        assert got["member_stats"]["10.0.1.2"]["packets"] == 5, how
        # recv1 is not reachable in the VRF: no copy leaks out of it
        assert got["recv1"]["count"] == 0, how
        assert got["member_stats"]["10.0.0.11"]["drop_no_route"] == 5, how


def test_kernel_log_is_clean(facts):
    assert facts.kernel_trouble() == []
    assert "guest: done" in facts.result.output
