"""The client domain API over the fake multic kernel."""

from ipaddress import IPv4Address

import pytest
from fakes import FakeMulticKernel

from multicast_admin.client import AddOutcome, Client
from multicast_admin.errors import AlreadyExists, InvalidArgument, LimitReached, NotFound
from multicast_admin.netlink import MulticNetlink

A = IPv4Address


@pytest.fixture
def kernel():
    return FakeMulticKernel()


@pytest.fixture
def client(kernel):
    return Client(MulticNetlink(kernel))


def refused(kernel, action, kind, message):
    """``action`` raises ``kind`` with ``message`` and changes nothing; a bad input
    (InvalidArgument: every one here is syntax) is refused before anything is sent."""
    before = kernel.state()
    sent = len(kernel.requests)
    with pytest.raises(kind) as caught:
        action()
    assert str(caught.value) == message
    assert kernel.state() == before
    if kind is InvalidArgument:
        assert len(kernel.requests) == sent


def test_add_unchanged_and_moved(client, kernel):
    def add(*args):
        sent = len(kernel.requests)
        result = client.add(*args)
        return result, len(kernel.requests) - sent

    added, trips = add("10.0.0.1", 1234, "239.1.1.1")
    assert (added.outcome, trips) == (AddOutcome.ADDED, 1)  # one ADD, nothing read
    unchanged, trips = add("10.0.0.1", 1234, "239.1.1.1")
    assert (unchanged.outcome, trips) == (AddOutcome.UNCHANGED, 2)  # refused ADD, one read
    moved, trips = add("10.0.0.1", 1234, "239.1.1.2")
    assert (moved.outcome, moved.previous_group, trips) == (AddOutcome.MOVED, A("239.1.1.1"), 3)
    assert client.add("10.0.0.1", 0, "224.0.0.251").outcome is AddOutcome.ADDED  # port 0: any
    assert kernel.state() == {"10.0.0.1:1234": "239.1.1.2", "10.0.0.1:0": "224.0.0.251"}


@pytest.mark.parametrize(
    ("server", "port", "group", "message"),
    [
        (
            "10.0.0",
            1,
            "239.1.1.1",
            "server '10.0.0' is not a valid IP address (expected a.b.c.d or an IPv6 address)",
        ),
        ("224.0.0.1", 1, "239.1.1.1", "server 224.0.0.1 is not a unicast address (multicast)"),
        ("0.1.2.3", 1, "239.1.1.1", "server 0.1.2.3 is not a unicast address (zero network)"),
        ("127.0.0.1", 1, "239.1.1.1", "server 127.0.0.1 is not a unicast address (loopback)"),
        ("10.0.0.1", 65536, "239.1.1.1", "port 65536 is out of range: use 0-65535 (0 = any port)"),
        ("10.0.0.1", -1, "239.1.1.1", "port -1 is out of range: use 0-65535 (0 = any port)"),
        (
            "10.0.0.1",
            1,
            "10.1.1.1",
            "group 10.1.1.1 is not a multicast address "
            "(224.0.0.0/4; add --broadcast for a broadcast address)",
        ),
        (
            "10.0.0.1",
            1,
            "255.255.255.255",
            "group 255.255.255.255 is not a multicast address "
            "(224.0.0.0/4; add --broadcast for a broadcast address)",
        ),
    ],
)
def test_bad_input_is_refused(client, kernel, server, port, group, message):
    refused(kernel, lambda: client.add(server, port, group), InvalidArgument, message)


def test_a_client_belongs_to_ten_groups_at_most(client, kernel):
    for i in range(10):
        client.add("10.0.0.1", 1000 + i, f"239.0.0.{i + 1}")
    client.add("10.0.0.2", 1000, "239.0.0.1")  # an 11th entry in a known group is fine
    refused(
        kernel,
        lambda: client.add("10.0.0.2", 2000, "239.0.0.11"),
        LimitReached,
        "group limit 10 reached",
    )
    # moving the only entry of a group to a new group keeps the count at 10
    assert client.add("10.0.0.1", 1009, "239.0.0.11").outcome is AddOutcome.MOVED


def test_entry_limit(kernel):
    kernel.max_entries = 2
    client = Client(MulticNetlink(kernel))
    client.add("10.0.0.1", 1, "239.0.0.1")
    client.add("10.0.0.1", 2, "239.0.0.1")
    refused(
        kernel,
        lambda: client.add("10.0.0.1", 3, "239.0.0.1"),
        LimitReached,
        "entry limit 2 reached",
    )


def test_delete(client, kernel):
    client.add("10.0.0.1", 1234, "239.1.1.1")
    refused(
        kernel,
        lambda: client.delete("10.0.0.1", 1235),
        NotFound,
        "no entry for 10.0.0.1:1235",
    )
    client.delete("10.0.0.1", 1234)
    assert kernel.state() == {}


def test_broadcast_entries_are_explicit(client, kernel):
    client.add("10.0.0.1", 0, "255.255.255.255", broadcast=True)
    assert kernel.state() == {"10.0.0.1:0": "255.255.255.255"}
    refused(
        kernel,
        lambda: client.add("10.0.0.1", 1, "239.1.1.1", broadcast=True),
        InvalidArgument,
        "group 239.1.1.1 is not a broadcast address (it is multicast: drop --broadcast)",
    )


def test_the_kernel_refuses_an_existing_key_without_replace(kernel):
    kernel.set_entry("10.0.0.1", 5, "239.1.1.1")
    with pytest.raises(AlreadyExists, match=r"entry 10\.0\.0\.1:5 already maps to 239\.1\.1\.1"):
        MulticNetlink(kernel).add(A("10.0.0.1"), 5, A("239.1.1.2"))


def test_reads_and_clear(client, kernel):
    client.add("10.0.0.1", 1234, "239.1.1.1")
    kernel.entries[(A("10.0.0.1"), 1234)].stats = {"PACKETS": 3, "NOT_LOCAL": 1}
    kernel.stats = {"PACKETS": 3, "BYTES": 300}
    (entry,) = client.entries()
    assert (entry.stats.packets, entry.stats.not_local) == (3, 1)
    assert client.entry("10.0.0.1", 1234) == entry
    status = client.stats()
    assert (status.stats.bytes, status.entry_count, status.group_count) == (300, 1, 1)
    client.reset_stats()
    assert client.entry("10.0.0.1", 1234).stats.packets == 0
    client.clear()
    assert client.entries() == []
