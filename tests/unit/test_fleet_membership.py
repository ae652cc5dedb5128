"""The joins of this namespace, read from the real /proc/net/igmp."""

from __future__ import annotations

import socket
from ipaddress import IPv4Address

from multicast_admin.fleet.membership import Membership, parse_igmp


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
