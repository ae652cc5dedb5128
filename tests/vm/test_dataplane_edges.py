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


def test_a_restored_copy_is_a_multicast_or_broadcast_packet(facts):
    step = facts["restored_packet"]
    for name in RECEIVERS:
        for kind in ("multicast", "broadcast"):
            got = step[kind][name]
            assert got["count"] == 5, (name, kind, step)
            assert got["intact"], (name, kind)
        assert step["multicast"][name]["destinations"] == ["239.5.5.5"]
        assert step["broadcast"][name]["destinations"] == ["255.255.255.255"]
        counts = step["counts"][name]
        # after multic's hook, and at local input, nft sees the packet type
        # of the restored destination, never the copy's "to this host"
        assert counts["pre_mcast"] == 5, (name, counts)
        assert counts["in_mcast"] == 5, (name, counts)
        assert counts["pre_mcast_as_host"] == 0, (name, counts)
        assert counts["pre_bcast"] == 5, (name, counts)
        assert counts["in_bcast"] == 5, (name, counts)
        assert counts["pre_bcast_as_host"] == 0, (name, counts)
        assert counts["pre_vrrp_mcast"] == 5, (name, counts)
        stats = step["entry_stats"][name]
        assert [stats[p]["packets"] for p in ("7005", "7006", "0")] == [5, 5, 5], stats


def test_a_vrrp_advert_lowered_on_the_way_arrives_with_ttl_255(facts):
    step = facts["restored_packet"]
    for name in RECEIVERS:
        # the hop really lowered it: multic was handed TTL 200
        assert step["counts"][name]["wire_vrrp_ttl_200"] == 5, (name, step["counts"][name])
        got = step["vrrp"][name]
        assert got["count"] == 5, (name, got)
        assert got["intact"], name
        assert got["destinations"] == ["224.0.0.18"]
        assert got["ttls"] == [255], (name, got)


def test_kernel_log_is_clean(facts):
    assert facts.kernel_trouble() == []
    assert "guest: done" in facts.result.output
