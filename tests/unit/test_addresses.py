from ipaddress import IPv4Address

import pytest

from multicast_admin.addresses import (
    check_group,
    check_member,
    check_port,
    check_server,
    parse_ip_list,
    parse_ipv4,
    unique,
)
from multicast_admin.errors import InvalidArgument

A = IPv4Address


@pytest.mark.parametrize("text", ["1.2.3", "256.1.1.1", "01.2.3.4", "a.b.c.d", "", "1.2.3.4/32"])
def test_invalid_addresses_are_refused(text):
    with pytest.raises(InvalidArgument, match="is not a valid IPv4 address"):
        parse_ipv4(text, "group")


def test_address_parsing():
    assert parse_ipv4(" 239.1.1.1 ") == A("239.1.1.1")
    assert parse_ipv4(A("10.0.0.1")) == A("10.0.0.1")
    assert parse_ip_list(["10.0.0.1,10.0.0.2", "10.0.0.3"]) == [
        A("10.0.0.1"),
        A("10.0.0.2"),
        A("10.0.0.3"),
    ]
    with pytest.raises(InvalidArgument, match="empty member"):
        parse_ip_list(["10.0.0.1,,10.0.0.2"])
    with pytest.raises(InvalidArgument, match="'x' is not a valid"):
        parse_ip_list(["10.0.0.1,x"])


def test_unique_keeps_the_first_occurrence_in_order():
    first, repeated = unique([A("10.0.0.2"), A("10.0.0.1"), A("10.0.0.2")])
    assert first == [A("10.0.0.2"), A("10.0.0.1")]
    assert repeated == [A("10.0.0.2")]


def test_groups():
    check_group(A("224.0.0.1"))
    check_group(A("239.255.255.255"))
    with pytest.raises(InvalidArgument, match=r"group 10\.0\.0\.1 is not a multicast.*--broadcast"):
        check_group(A("10.0.0.1"))
    with pytest.raises(InvalidArgument, match="not a multicast"):
        check_group(A("255.255.255.255"))
    check_group(A("255.255.255.255"), broadcast=True)
    check_group(A("192.168.1.255"), broadcast=True)
    with pytest.raises(InvalidArgument, match="drop --broadcast"):
        check_group(A("239.1.1.1"), broadcast=True)
    with pytest.raises(InvalidArgument, match="not a broadcast"):
        check_group(A("127.0.0.1"), broadcast=True)


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("224.1.1.1", "is a multicast address"),
        ("239.255.0.1", "is a multicast address"),
        ("127.0.0.1", "is a loopback address"),
        ("127.8.9.10", "is a loopback address"),
        ("0.0.0.0", "is an unspecified address"),
        ("255.255.255.255", "is the broadcast address"),
    ],
)
def test_members_that_are_refused(member, why):
    with pytest.raises(InvalidArgument) as caught:
        check_member(A(member))
    assert str(caught.value) == f"member {member} {why}"


def test_members_and_servers_that_are_accepted():
    for address in ("10.0.0.1", "172.16.1.1", "192.168.255.254", "8.8.8.8"):
        check_member(A(address))
        check_server(A(address))
    with pytest.raises(InvalidArgument, match=r"server 224\.0\.0\.1 is not a unicast address"):
        check_server(A("224.0.0.1"))


def test_broadcast_groups_only_when_asked_for():
    check_group(A("224.0.0.251"))
    check_group(A("255.255.255.255"), broadcast=True)
    check_group(A("192.168.1.255"), broadcast=True)  # a subnet's broadcast
    for address in ("255.255.255.255", "192.168.1.255"):
        with pytest.raises(InvalidArgument, match="add --broadcast"):
            check_group(A(address))
    for address in ("127.0.0.255", "0.0.0.0"):
        with pytest.raises(InvalidArgument, match=r"is not a broadcast address$"):
            check_group(A(address), broadcast=True)


@pytest.mark.parametrize("port", [0, 1, 65535])
def test_ports_in_range(port):
    check_port(port)


@pytest.mark.parametrize("port", [-1, 65536, 10**6, True, "80"])
def test_ports_out_of_range(port):
    with pytest.raises(InvalidArgument, match=r"use 0-65535 \(0 = any port\)"):
        check_port(port)
