"""The joins of this namespace, read from the real /proc/net/igmp and /proc/net/igmp6."""

from __future__ import annotations

import socket
import struct
from ipaddress import IPv4Address, IPv6Address

from multicast_admin.fleet.membership import PROC_IGMP6, Membership, parse_igmp, parse_igmp6


def _join(group: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    request = socket.inet_aton(group) + socket.inet_aton("0.0.0.0")
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, request)
    return sock


def test_an_application_join_and_leave_are_seen():
    group = IPv4Address("239.77.1.2")
    assert group not in Membership().joined()
    first, second = _join(str(group)), _join(str(group))
    try:
        assert group in Membership().joined()
        first.close()
        assert group in Membership().joined()  # one application still in it
    finally:
        second.close()
    assert group not in Membership().joined()


def test_headers_and_interfaces_are_not_groups():
    text = (
        "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
        "1\tlo        :     1      V3\n"
        "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
    )
    groups = parse_igmp(text)
    assert len(groups) == 1
    assert next(iter(groups)).is_multicast


def _join6(group: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    for index in (0, socket.if_nametoindex("lo")):  # the default route's interface, else lo
        request = socket.inet_pton(socket.AF_INET6, group) + struct.pack("@I", index)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
            return sock
        except OSError:
            continue
    sock.close()
    raise AssertionError(f"cannot join {group} on this host")


def test_an_mld_join_and_leave_are_seen():
    group = IPv6Address("ff15::77:1:2")
    assert group not in Membership().joined()
    sock = _join6(str(group))
    try:
        assert group in Membership().joined()
        assert group in parse_igmp6(PROC_IGMP6.read_text())
    finally:
        sock.close()
    assert group not in Membership().joined()


def test_igmp6_lines_as_the_kernel_prints_them():
    text = (
        "1    lo              ff020000000000000000000000000001     1 0000000C 0\n"
        "4    eth0            ff150000000000000000000000010005     2 00000004 0\n"
        "4    eth0            ff0200000000000000000001ff00abcd     1 00000004 0\n"
        "garbage\n"
        "5    eth1            not-hex-not-hex-not-hex-not-hexx     1 00000004 0\n"
    )
    assert parse_igmp6(text) == {
        IPv6Address("ff02::1"),
        IPv6Address("ff15::1:5"),
        IPv6Address("ff02::1:ff00:abcd"),
    }


def test_both_families_are_read_and_a_missing_igmp6_is_no_group(tmp_path):
    igmp = tmp_path / "igmp"
    igmp.write_text(
        "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
        "2\teth0      :     1      V3\n"
        "\t\t\t\t010101EF     1 0:00000000\t\t0\n"
    )
    igmp6 = tmp_path / "igmp6"
    igmp6.write_text("4    eth0            ff150000000000000000000000010005     1 00000004 0\n")
    both = {IPv4Address("239.1.1.1"), IPv6Address("ff15::1:5")}
    assert Membership(igmp, igmp6).joined() == both
    assert Membership(igmp, tmp_path / "absent").joined() == {IPv4Address("239.1.1.1")}
