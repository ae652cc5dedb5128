"""The bindings: message bytes, reply decoding, error mapping, dumps.

Most tests run against the in-memory kernels of fakes.py.  A few talk to the
host kernel's real generic netlink controller ("nlctrl"), which needs no
privilege and no module: they check how pyroute2 really surfaces a missing
family, an extack message and a multi-part dump.
"""

from __future__ import annotations

import errno
import struct
from ipaddress import IPv4Address

import pytest
from fakes import (
    FakeMulticKernel,
    FakeMultisKernel,
    kernel_member,
    kernel_multismsg,
    needs_genl,
    reply,
    wire,
)
from pyroute2.netlink import (
    CTRL_CMD_GETFAMILY,
    NLA_F_NESTED,
    NLM_F_ACK,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_MULTI,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_DONE,
    ctrlmsg,
    nlmsg,
)
from pyroute2.netlink.exceptions import NetlinkError

from multicast_admin import memberarray, uapi
from multicast_admin.errors import (
    AlreadyExists,
    InvalidArgument,
    KernelError,
    LimitReached,
    ModuleNotLoaded,
    NotFound,
    PermissionDenied,
)
from multicast_admin.netlink import (
    DUMP_ATTEMPTS,
    MAX_MEMBERS_PER_REQUEST,
    GenlTransport,
    MulticNetlink,
    MultisNetlink,
    Reply,
    build_message,
    extack_of,
    members_value,
    multicmsg,
    multismsg,
)

A = IPv4Address


def nlas(payload: bytes) -> list[tuple[int, bytes]]:
    """(type with flags, value) of each attribute in ``payload``."""
    found = []
    offset = 0
    while offset + 4 <= len(payload):
        length, kind = struct.unpack_from("HH", payload, offset)
        found.append((kind, payload[offset + 4 : offset + length]))
        offset += (length + 3) & ~3
    return found


def encoded(msg_class: type, cmd: int, attrs: list) -> bytes:
    msg = build_message(msg_class, cmd, 1, attrs)
    wire(msg_class, msg, NLM_F_REQUEST | NLM_F_ACK)
    return bytes(msg.data)


# --- message classes ---------------------------------------------------------


def test_nla_maps_cover_every_attribute_of_the_header():
    def names(msg_class: type) -> dict:
        return {name: key for key, name, _ in msg_class.nla_map}

    def enum(prefix: str) -> dict:
        return {
            n: v
            for n, v in vars(uapi).items()
            if n.startswith(prefix) and n != prefix + "MAX" and n != "MULTIS_A_MEMBER"
        }

    assert names(multismsg) == enum("MULTIS_A_")
    assert names(kernel_member) == enum("MULTIS_MEMBER_A_")  # the fake kernel's, below
    assert names(multismsg.stats) == enum("MULTIS_STATS_A_")
    assert names(multicmsg) == enum("MULTIC_A_")
    assert names(multicmsg.stats) == enum("MULTIC_STATS_A_")


def test_join_request_bytes():
    data = encoded(
        multismsg,
        uapi.MULTIS_CMD_JOIN,
        [
            ("MULTIS_A_GROUP_ADDR", "239.1.2.3"),
            ("MULTIS_A_GROUP_FLAGS", uapi.MULTIS_GROUP_F_VRRP),
            ("MULTIS_A_MEMBERS", members_value([A("10.0.0.1"), A("192.168.1.20")])),
        ],
    )
    length, _, flags = struct.unpack_from("IHH", data)
    assert length == len(data)
    assert flags == NLM_F_REQUEST | NLM_F_ACK
    assert data[16:20] == bytes([uapi.MULTIS_CMD_JOIN, uapi.MULTIS_GENL_VERSION, 0, 0])
    attrs = nlas(data[20:])
    assert attrs[0] == (uapi.MULTIS_A_GROUP_ADDR, bytes([239, 1, 2, 3]))  # network order
    assert attrs[1] == (uapi.MULTIS_A_GROUP_FLAGS, struct.pack("=I", uapi.MULTIS_GROUP_F_VRRP))
    kind, members = attrs[2]
    assert kind == uapi.MULTIS_A_MEMBERS | NLA_F_NESTED
    elements = nlas(members)
    assert [k for k, _ in elements] == [uapi.MULTIS_A_MEMBER | NLA_F_NESTED] * 2
    assert nlas(elements[0][1]) == [(uapi.MULTIS_MEMBER_A_ADDR, bytes([10, 0, 0, 1]))]
    assert nlas(elements[1][1]) == [(uapi.MULTIS_MEMBER_A_ADDR, bytes([192, 168, 1, 20]))]


def test_a_request_never_outgrows_one_attribute():
    # 5000 members fit in MULTIS_A_MEMBERS (64 KiB); more are refused, not wrapped
    many = [A(0x0A000000 + i) for i in range(1, MAX_MEMBERS_PER_REQUEST + 2)]
    data = encoded(
        multismsg,
        uapi.MULTIS_CMD_JOIN,
        [("MULTIS_A_MEMBERS", members_value(many[:MAX_MEMBERS_PER_REQUEST]))],
    )
    _kind, members = nlas(data[20:])[0]
    assert len(nlas(members)) == MAX_MEMBERS_PER_REQUEST
    with pytest.raises(InvalidArgument, match="at most 5000 per command"):
        members_value(many)


def test_client_add_request_bytes():
    data = encoded(
        multicmsg,
        uapi.MULTIC_CMD_ADD,
        [
            ("MULTIC_A_SERVER_ADDR", "10.1.2.3"),
            ("MULTIC_A_PORT", 5000),
            ("MULTIC_A_GROUP_ADDR", "224.0.0.251"),
        ],
    )
    attrs = nlas(data[20:])
    assert attrs == [
        (uapi.MULTIC_A_SERVER_ADDR, bytes([10, 1, 2, 3])),
        (uapi.MULTIC_A_PORT, struct.pack("=H", 5000)),  # host order, per the header
        (uapi.MULTIC_A_GROUP_ADDR, bytes([224, 0, 0, 251])),
    ]


def test_member_reply_decodes_counters_as_u64():
    big = 2**40 + 7
    msg = reply(
        multismsg,
        uapi.MULTIS_CMD_GET_MEMBERS,
        [
            ["MULTIS_A_GROUP_ADDR", "239.1.1.1"],
            [
                "MULTIS_A_MEMBERS",
                [
                    {
                        "attrs": [
                            ["MULTIS_MEMBER_A_ADDR", "10.0.0.9"],
                            [
                                "MULTIS_MEMBER_A_STATS",
                                {
                                    "attrs": [
                                        ["MULTIS_STATS_A_PACKETS", big],
                                        ["MULTIS_STATS_A_DROP_NO_ROUTE", 3],
                                    ]
                                },
                            ],
                        ]
                    }
                ],
            ],
        ],
    )
    members = MultisNetlink(_Canned([msg])).members(A("239.1.1.1"))
    assert [m.address for m in members] == [A("10.0.0.9")]
    assert members[0].stats.packets == big
    assert members[0].stats.drop_no_route == 3
    assert members[0].stats.bytes == 0  # absent counters are 0


def test_member_array_decoder_walks_attributes_as_the_kernel_lays_them_out():
    # What nla_put_u64_64bit may put in (a PAD before a u64), an attribute a
    # newer kernel adds, and the nest flags: skipped or understood, never misread.
    def attr(kind: int, payload: bytes) -> bytes:
        raw = struct.pack("=HH", 4 + len(payload), kind) + payload
        return raw + b"\0" * (-len(raw) % 4)

    stats = attr(uapi.MULTIS_STATS_A_PAD, b"") + attr(
        uapi.MULTIS_STATS_A_BYTES, struct.pack("=Q", 2**33)
    )
    stats += attr(200, b"\1\2\3")  # unknown to these bindings
    element = attr(uapi.MULTIS_MEMBER_A_ADDR, bytes([10, 9, 8, 7])) + attr(
        uapi.MULTIS_MEMBER_A_STATS | NLA_F_NESTED, stats
    )
    data = attr(uapi.MULTIS_A_MEMBER | NLA_F_NESTED, element) * 2
    members = memberarray.decode(data)
    assert [m.address for m in members] == [A("10.9.8.7")] * 2
    assert members[0].stats.bytes == 2**33
    assert members[0].stats.packets == 0
    # truncated, or a length past the end: refused with a message, not misparsed
    for bad in (data[:-3], data[:2], struct.pack("=HH", 400, 1) + data):
        with pytest.raises(KernelError, match="attribute"):
            memberarray.decode(bad)
    # an element without an address
    with pytest.raises(KernelError, match="without an address"):
        memberarray.decode(attr(uapi.MULTIS_A_MEMBER | NLA_F_NESTED, b""))


def test_member_array_encoding_is_what_pyroute2_builds():
    # the byte codec against pyroute2's generic nested-array encoding
    addresses = [A("10.0.0.1"), A("172.16.5.4"), A("192.168.1.20")]
    generic = build_message(
        kernel_multismsg,
        uapi.MULTIS_CMD_JOIN,
        1,
        [("MULTIS_A_MEMBERS", [{"attrs": [["MULTIS_MEMBER_A_ADDR", str(a)]]} for a in addresses])],
    )
    ours = build_message(
        multismsg, uapi.MULTIS_CMD_JOIN, 1, [("MULTIS_A_MEMBERS", members_value(addresses))]
    )
    assert bytes(wire(kernel_multismsg, generic, 0).data) == bytes(wire(multismsg, ours, 0).data)


def test_stats_nest_bytes_are_u64():
    msg = build_message(
        multismsg,
        uapi.MULTIS_CMD_GET_STATS,
        1,
        [("MULTIS_A_STATS", {"attrs": [["MULTIS_STATS_A_BYTES", 1]]})],
    )
    wire(multismsg, msg, 0)
    (kind, nest) = nlas(bytes(msg.data)[20:])[0]
    assert kind == uapi.MULTIS_A_STATS | NLA_F_NESTED
    assert nlas(nest) == [(uapi.MULTIS_STATS_A_BYTES, struct.pack("=Q", 1))]


class _Canned:
    """A transport that answers every request with the same messages."""

    family = "multis"

    def __init__(self, messages: list, error: Exception | None = None) -> None:
        self.messages = messages
        self.error = error
        self.flags: list[int] = []

    def request(self, msg, flags):
        self.flags.append(flags)
        if self.error is not None:
            raise self.error
        return Reply(list(self.messages))

    def close(self):
        pass


# --- error mapping -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (errno.EINVAL, InvalidArgument),
        (errno.ERANGE, InvalidArgument),
        (errno.ENOENT, NotFound),
        (errno.ENOSPC, LimitReached),
        (errno.E2BIG, LimitReached),
        (errno.EPERM, PermissionDenied),
        (errno.EEXIST, AlreadyExists),
        (errno.EIO, KernelError),
    ],
)
def test_errno_maps_to_a_domain_error_carrying_errno_and_extack(code, kind):
    text = "group 239.1.1.1: member limit 128 reached"
    backend = MultisNetlink(_Canned([], NetlinkError(code, text)))
    with pytest.raises(kind) as caught:
        backend.reset_stats()
    assert caught.value.errno == code
    assert caught.value.extack == text
    assert str(caught.value).startswith(text)


def test_error_without_extack_says_what_was_done():
    backend = MultisNetlink(_Canned([], NetlinkError(errno.EIO)))
    with pytest.raises(KernelError) as caught:
        backend.join(A("239.1.1.1"), [A("10.0.0.1")])
    assert caught.value.extack is None
    assert str(caught.value) == "group 239.1.1.1: adding members: EIO (Input/output error)"


def test_enoent_without_extack_names_the_missing_object():
    backend = MultisNetlink(_Canned([], NetlinkError(errno.ENOENT)))
    with pytest.raises(NotFound, match=r"^group 239\.9\.9\.9 does not exist$"):
        backend.get_group(A("239.9.9.9"))
    client = MulticNetlink(_Canned([], NetlinkError(errno.ENOENT)))
    with pytest.raises(NotFound, match=r"^no entry for 10\.0\.0\.1:7$"):
        client.delete(A("10.0.0.1"), 7)


def test_eperm_says_what_to_do():
    kernel = FakeMultisKernel()
    kernel.privileged = False
    with pytest.raises(PermissionDenied, match="root"):
        MultisNetlink(kernel).clear()


def test_extack_of_tells_a_kernel_message_from_strerror():
    assert extack_of(NetlinkError(errno.EINVAL, "bad member")) == "bad member"
    assert extack_of(NetlinkError(errno.EINVAL)) is None
    assert extack_of(NetlinkError(errno.EINVAL, "")) is None


# --- commands through the fake kernels --------------------------------------------


def test_flags_of_each_kind_of_request():
    kernel = FakeMulticKernel()
    client = MulticNetlink(kernel)
    client.add(A("10.0.0.1"), 0, A("239.0.0.1"))
    client.add(A("10.0.0.1"), 0, A("239.0.0.2"), replace=True)
    client.entries()
    client.get_entry(A("10.0.0.1"), 0)
    assert [r.flags for r in kernel.requests] == [
        NLM_F_REQUEST | NLM_F_ACK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE,
        NLM_F_REQUEST | NLM_F_DUMP,
        NLM_F_REQUEST,
    ]


def test_round_trip_of_every_server_command():
    kernel = FakeMultisKernel()
    nl = MultisNetlink(kernel)
    nl.join(A("239.1.1.1"), [A("10.0.0.1"), A("10.0.0.2")])
    nl.join(A("255.255.255.255"), [A("10.0.0.3")], flags=uapi.MULTIS_GROUP_F_BROADCAST)
    assert [g.address for g in nl.groups()] == [A("239.1.1.1"), A("255.255.255.255")]
    group = nl.get_group(A("255.255.255.255"))
    assert (group.broadcast, group.vrrp, group.member_count) == (True, False, 1)
    nl.quit(A("239.1.1.1"), [A("10.0.0.1")])
    assert [m.address for m in nl.members(A("239.1.1.1"))] == [A("10.0.0.2")]
    nl.delete_group(A("255.255.255.255"))
    status = nl.stats()
    assert (status.group_count, status.max_groups, status.max_members) == (1, 10, 128)
    assert status.marker_tos == 0xE0
    nl.clear()
    assert nl.groups() == []


def test_round_trip_of_every_client_command():
    kernel = FakeMulticKernel()
    nl = MulticNetlink(kernel)
    nl.add(A("10.0.0.1"), 1234, A("239.1.1.1"))
    nl.add(A("10.0.0.2"), 0, A("239.1.1.2"))
    entry = nl.get_entry(A("10.0.0.2"), 0)
    assert (entry.server, entry.port, entry.group) == (A("10.0.0.2"), 0, A("239.1.1.2"))
    assert [e.key for e in nl.entries()] == [(A("10.0.0.1"), 1234), (A("10.0.0.2"), 0)]
    nl.delete(A("10.0.0.1"), 1234)
    status = nl.stats()
    assert (status.entry_count, status.group_count, status.max_groups) == (1, 1, 10)
    nl.clear()
    assert nl.entries() == []


def test_a_dump_of_thousands_of_members_spans_many_messages():
    kernel = FakeMultisKernel(max_members=5000)
    members = [f"10.{i // 250}.{i % 250}.1" for i in range(3000)]
    kernel.set_group("239.5.5.5", members)
    got = MultisNetlink(kernel).members(A("239.5.5.5"))
    assert [str(m.address) for m in got] == members
    assert len(got) // kernel.members_per_message >= 50


def test_an_interrupted_dump_is_read_again():
    kernel = FakeMultisKernel()
    kernel.set_group("239.1.1.1", ["10.0.0.1"])
    kernel.interrupt_dumps = 2
    assert [g.address for g in MultisNetlink(kernel).groups()] == [A("239.1.1.1")]
    assert len(kernel.requests) == 3


def test_a_dump_that_keeps_being_interrupted_fails_clearly():
    kernel = FakeMultisKernel()
    kernel.interrupt_dumps = DUMP_ATTEMPTS
    with pytest.raises(KernelError, match="kept changing"):
        MultisNetlink(kernel).groups()


def test_kernel_refusals_keep_the_kernel_s_words():
    kernel = FakeMultisKernel(max_members=2)
    nl = MultisNetlink(kernel)
    with pytest.raises(LimitReached, match=r"^group 239\.1\.1\.1: member limit 2 reached$"):
        nl.join(A("239.1.1.1"), [A("10.0.0.1"), A("10.0.0.2"), A("10.0.0.3")])
    with pytest.raises(InvalidArgument, match=r"member 224\.1\.1\.1 is a multicast address"):
        nl.join(A("239.1.1.1"), [A("224.1.1.1")])
    assert kernel.groups == {}


# --- the real kernel's generic netlink controller ----------------------------------


def _family_registered(name: str) -> bool:
    transport = GenlTransport("nlctrl", ctrlmsg)
    try:
        msg = ctrlmsg()
        msg["cmd"] = CTRL_CMD_GETFAMILY
        msg["version"] = 1
        msg["attrs"].append(["CTRL_ATTR_FAMILY_NAME", name])
        transport.request(msg, NLM_F_REQUEST)
    except NetlinkError:
        return False
    finally:
        transport.close()
    return True


@needs_genl
@pytest.mark.parametrize("netlink_class", [MultisNetlink, MulticNetlink])
def test_missing_module_is_one_friendly_error(netlink_class):
    if _family_registered(netlink_class.name):
        pytest.skip(f"{netlink_class.name} is loaded here")
    with pytest.raises(ModuleNotLoaded) as caught:
        netlink_class.open()
    name = netlink_class.name
    assert str(caught.value) == (f"{name} kernel module is not loaded: run `service {name} start`")


@needs_genl
def test_real_kernel_extack_reaches_the_error():
    transport = GenlTransport("nlctrl", ctrlmsg)
    msg = ctrlmsg()
    msg["cmd"] = CTRL_CMD_GETFAMILY
    msg["version"] = 1
    msg["attrs"].append(["CTRL_ATTR_FAMILY_NAME", "x" * 40])  # longer than policy allows
    try:
        with pytest.raises(NetlinkError) as caught:
            transport.request(msg, NLM_F_REQUEST)
    finally:
        transport.close()
    assert caught.value.code == errno.EINVAL
    assert extack_of(caught.value) == "Attribute failed policy validation"


@needs_genl
def test_real_kernel_multipart_dump():
    transport = GenlTransport("nlctrl", ctrlmsg)
    msg = ctrlmsg()
    msg["cmd"] = CTRL_CMD_GETFAMILY
    msg["version"] = 1
    try:
        result = transport.request(msg, NLM_F_REQUEST | NLM_F_DUMP)
    finally:
        transport.close()
    names = {m.get_attr("CTRL_ATTR_FAMILY_NAME") for m in result.messages}
    assert "nlctrl" in names
    assert result.interrupted is False


# --- GenlTransport's reading of pyroute2's answer -------------------------------


class _StubSocket:
    """Stands in for pyroute2's socket: hands canned raw messages to the callback."""

    prid = 0x20

    def __init__(self, raw: list[bytes]) -> None:
        self.raw = raw

    def nlm_request(self, msg, msg_type, msg_flags, callback):
        delivered = []
        for data in self.raw:
            parsed = nlmsg(data)
            parsed.decode()
            callback(parsed)
            if parsed["header"]["type"] != NLMSG_DONE:
                delivered.append(parsed)
        return tuple(delivered)

    def close(self):
        pass


def _transport(raw: list[bytes]) -> GenlTransport:
    transport = GenlTransport.__new__(GenlTransport)
    transport.family = "multis"
    transport._socket = _StubSocket(raw)
    return transport


def _header(kind: int, flags: int, payload: bytes) -> bytes:
    return struct.pack("IHHII", 16 + len(payload), kind, flags, 1, 0) + payload


def test_transport_notices_dump_intr_on_any_message_including_done():
    data = _header(0x20, NLM_F_MULTI, b"\x01\x01\x00\x00")
    done = _header(NLMSG_DONE, NLM_F_MULTI | NLM_F_DUMP_INTR, struct.pack("i", 0))
    assert _transport([data, done]).request(None, NLM_F_DUMP).interrupted is True
    done = _header(NLMSG_DONE, NLM_F_MULTI, struct.pack("i", 0))
    assert _transport([data, done]).request(None, NLM_F_DUMP).interrupted is False


def test_transport_raises_the_errno_a_done_carries_without_extack():
    # pyroute2 would end such a dump silently, as if it were empty.
    done = _header(NLMSG_DONE, NLM_F_MULTI, struct.pack("i", -errno.ENOENT))
    with pytest.raises(NetlinkError) as caught:
        _transport([done]).request(None, NLM_F_DUMP)
    assert caught.value.code == errno.ENOENT
