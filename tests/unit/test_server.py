"""The server domain API over the fake multis kernel: checks, idempotency, limits.

Syntax is refused before anything is sent; what the kernel decides comes back
as its words.  Every refusal must leave the kernel unchanged.
"""

from ipaddress import IPv4Address

import pytest
from fakes import FakeMultisKernel

from multicast_admin import uapi
from multicast_admin.errors import AlreadyExists, InvalidArgument, LimitReached, NotFound
from multicast_admin.netlink import MultisNetlink
from multicast_admin.server import Server

A = IPv4Address


@pytest.fixture
def kernel():
    return FakeMultisKernel()


@pytest.fixture
def server(kernel):
    return Server(MultisNetlink(kernel))


def refused(kernel, action, kind, message):
    """Run ``action``; it must raise ``kind`` with exactly ``message`` and change nothing."""
    before = kernel.state()
    with pytest.raises(kind) as caught:
        action()
    assert str(caught.value) == message
    assert kernel.state() == before


def syntax_refused(kernel, action, message):
    """A bad input: refused with ``message`` before anything is sent to the kernel."""
    sent = len(kernel.requests)
    refused(kernel, action, InvalidArgument, message)
    assert len(kernel.requests) == sent


def test_join_creates_the_group_and_adds_members(server, kernel):
    result = server.join("239.1.1.1", ["10.0.0.1,10.0.0.2", "10.0.0.3"])
    assert result.created
    assert result.added == (A("10.0.0.1"), A("10.0.0.2"), A("10.0.0.3"))
    assert kernel.state() == {"239.1.1.1": (0, ["10.0.0.1", "10.0.0.2", "10.0.0.3"])}
    assert len(kernel.changes()) == 1  # one all-or-nothing JOIN
    assert len(kernel.requests) == 2  # after one read of the members


def test_join_is_idempotent_and_says_so(server, kernel):
    server.join("239.1.1.1", ["10.0.0.1"])
    result = server.join("239.1.1.1", ["10.0.0.1", "10.0.0.2", "10.0.0.2"])
    assert not result.created
    assert result.added == (A("10.0.0.2"),)
    assert result.already == (A("10.0.0.1"),)
    assert result.repeated == (A("10.0.0.2"),)
    again = server.join("239.1.1.1", ["10.0.0.1"])
    assert (again.created, again.added) == (False, ())
    assert len(kernel.changes()) == 2  # nothing was sent for the last one


def test_a_join_without_members_creates_an_empty_group(server, kernel):
    assert server.join("239.1.1.1", []).created
    assert not server.join("239.1.1.1", []).created
    assert kernel.state() == {"239.1.1.1": (0, [])}


def test_broadcast_and_vrrp_groups_are_explicit(server, kernel):
    syntax_refused(
        kernel,
        lambda: server.join("255.255.255.255", ["10.0.0.1"]),
        "group 255.255.255.255 is not a multicast address "
        "(224.0.0.0/4; add --broadcast for a broadcast address)",
    )
    server.join("255.255.255.255", ["10.0.0.1"], broadcast=True)
    server.join("224.0.0.18", [], vrrp=True)
    flags = {g: f for g, (f, _) in kernel.state().items()}
    assert flags == {"255.255.255.255": uapi.MULTIS_GROUP_F_BROADCAST, "224.0.0.18": 2}
    group = server.group("224.0.0.18")
    assert (group.broadcast, group.vrrp) == (False, True)


def test_options_of_an_existing_group_are_not_changed_silently(server, kernel):
    server.join("224.0.0.18", [])
    refused(
        kernel,
        lambda: server.join("224.0.0.18", ["10.0.0.1"], vrrp=True),
        AlreadyExists,
        "group 224.0.0.18 already exists with flags 0x0",
    )
    refused(
        kernel,
        lambda: server.join("224.0.0.18", [], vrrp=True),
        AlreadyExists,
        "group 224.0.0.18 already exists with flags 0x0",
    )


def test_joining_a_vrrp_group_keeps_its_option(server, kernel):
    server.join("224.0.0.18", [], vrrp=True)
    result = server.join("224.0.0.18", ["10.0.0.1"])  # --vrrp need not be repeated
    assert result.added == (A("10.0.0.1"),)
    assert kernel.state() == {"224.0.0.18": (uapi.MULTIS_GROUP_F_VRRP, ["10.0.0.1"])}


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("224.1.1.1", "member 224.1.1.1 is a multicast address"),
        ("127.0.0.1", "member 127.0.0.1 is a loopback address"),
        ("0.0.0.0", "member 0.0.0.0 is an unspecified address"),
        ("255.255.255.255", "member 255.255.255.255 is the broadcast address"),
        (
            "10.0.0.300",
            "member '10.0.0.300' is not a valid IP address (expected a.b.c.d or an IPv6 address)",
        ),
    ],
)
def test_bad_members_refuse_the_whole_request(server, kernel, member, message):
    server.join("239.1.1.1", ["10.0.0.1"])
    check = refused if member == "224.1.1.1" else syntax_refused  # the kernel's, or syntax
    args = (InvalidArgument, message) if check is refused else (message,)
    check(kernel, lambda: server.join("239.1.1.1", ["10.0.0.2", member]), *args)


def test_a_member_may_not_be_a_group(server, kernel):
    server.join("255.255.255.255", ["10.0.0.1"], broadcast=True)
    refused(
        kernel,
        lambda: server.join("192.168.1.255", ["255.255.255.255"], broadcast=True),
        InvalidArgument,
        "member 255.255.255.255 is the broadcast address",
    )
    server.join("192.168.1.255", ["10.0.0.2"], broadcast=True)
    refused(
        kernel,
        lambda: server.join("10.0.0.255", ["192.168.1.255"], broadcast=True),
        InvalidArgument,
        "member 192.168.1.255 is a configured group",
    )
    refused(
        kernel,
        lambda: server.join("10.0.0.255", ["10.0.0.255"], broadcast=True),
        InvalidArgument,
        "member 10.0.0.255 is a configured group",
    )
    refused(
        kernel,
        lambda: server.join("10.0.0.2", [], broadcast=True),
        InvalidArgument,
        "group 10.0.0.2 is a member of group 192.168.1.255",
    )


def test_the_eleventh_group_is_refused(server, kernel):
    for i in range(10):
        server.join(f"239.0.0.{i + 1}", [])
    refused(
        kernel,
        lambda: server.join("239.0.0.11", []),
        LimitReached,
        "group limit 10 reached",
    )
    assert not server.join("239.0.0.1", []).created  # an existing one is still fine


def test_the_129th_member_is_refused(server, kernel):
    members = [f"10.0.{i // 200}.{i % 200 + 1}" for i in range(129)]
    server.join("239.1.1.1", members[:100])
    server.join("239.1.1.1", members[100:128])
    refused(
        kernel,
        lambda: server.join("239.1.1.1", members[128:]),
        LimitReached,
        "group 239.1.1.1: member limit 128 reached",
    )
    assert server.join("239.1.1.1", members[:128]).added == ()


def test_limits_come_from_the_kernel(kernel):
    kernel.max_members = 1000
    server = Server(MultisNetlink(kernel))
    members = [f"10.{i // 250}.{i % 250}.1" for i in range(1000)]
    server.join("239.1.1.1", members)
    assert len(server.members("239.1.1.1")) == 1000


def test_quit(server, kernel):
    server.join("239.1.1.1", ["10.0.0.1", "10.0.0.2", "10.0.0.3"])
    result = server.quit("239.1.1.1", ["10.0.0.1,10.0.0.3", "10.0.0.1"])
    assert result.removed == (A("10.0.0.1"), A("10.0.0.3"))
    assert result.repeated == (A("10.0.0.1"),)
    assert kernel.state() == {"239.1.1.1": (0, ["10.0.0.2"])}


def test_quitting_a_member_that_is_not_in_the_group(server, kernel):
    server.join("239.1.1.1", ["10.0.0.1", "10.0.0.2"])
    refused(
        kernel,
        lambda: server.quit("239.1.1.1", ["10.0.0.1", "10.0.0.9"]),
        NotFound,
        "member 10.0.0.9 is not in group 239.1.1.1",
    )
    refused(
        kernel,
        lambda: server.quit("239.1.1.1", ["10.0.0.8", "10.0.0.9"]),
        NotFound,
        "member 10.0.0.8 is not in group 239.1.1.1",
    )
    refused(
        kernel,
        lambda: server.quit("239.1.1.7", ["10.0.0.1"]),
        NotFound,
        "group 239.1.1.7 does not exist",
    )


def test_delete_and_clear(server, kernel):
    server.join("239.1.1.1", ["10.0.0.1"])
    server.join("239.1.1.2", ["10.0.0.1"])
    refused(kernel, lambda: server.delete("239.1.1.3"), NotFound, "group 239.1.1.3 does not exist")
    server.delete("239.1.1.1")
    assert list(kernel.state()) == ["239.1.1.2"]
    server.clear()
    assert kernel.state() == {}


def test_reads(server, kernel):
    server.join("239.1.1.1", ["10.0.0.1", "10.0.0.2"])
    kernel.groups[A("239.1.1.1")].stats = {"DATAGRAMS": 5, "PACKETS": 10, "BYTES": 1000}
    kernel.groups[A("239.1.1.1")].member_stats = {A("10.0.0.2"): {"PACKETS": 5, "DROP_XMIT": 1}}
    kernel.stats = {"DROP_NO_MEMBER": 4}
    (group,) = server.groups()
    assert (group.address, group.member_count, group.stats.packets) == (A("239.1.1.1"), 2, 10)
    members = server.members("239.1.1.1")
    assert [(m.address, m.stats.packets, m.stats.drop_xmit) for m in members] == [
        (A("10.0.0.1"), 0, 0),
        (A("10.0.0.2"), 5, 1),
    ]
    status = server.stats()
    assert (status.stats.drop_no_member, status.group_count, status.max_groups) == (4, 1, 10)
    server.reset_stats()
    assert server.group("239.1.1.1").stats.packets == 0
    with pytest.raises(NotFound, match=r"^group 239\.9\.9\.9 does not exist$"):
        server.members("239.9.9.9")


def test_a_member_that_is_a_multicast_group_is_named_a_group_first(server, kernel):
    # The kernel's order: "a configured group" says more than "a multicast address".
    server.join("239.1.1.2", [])
    refused(
        kernel,
        lambda: server.join("239.1.1.1", ["10.0.0.1", "239.1.1.2"]),
        InvalidArgument,
        "member 239.1.1.2 is a configured group",
    )
    refused(
        kernel,
        lambda: server.join("239.1.1.1", ["239.1.1.3"]),
        InvalidArgument,
        "member 239.1.1.3 is a multicast address",
    )
