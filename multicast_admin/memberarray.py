"""MULTIS_A_MEMBERS, the one large attribute, encoded and decoded with ``struct``.

A full state holds up to max_groups x max_members members (1000 x 4096 with
raised limits).  pyroute2's generic attribute classes build and parse each
member as a tree of Python objects: about 38 us per member to encode and
105 us to decode on the build machine, 25-30 times that in the test VM.  The
array has a fixed layout, so here it is plain bytes (a pyroute2 ``cdata``
attribute with NLA_F_NESTED, see :mod:`multicast_admin.netlink`):

    MULTIS_A_MEMBERS (nested)
      MULTIS_A_MEMBER (nested)        one per member
        MULTIS_MEMBER_A_ADDR  be32        (an IPv4 member) or
        MULTIS_MEMBER_A_ADDR6 16 bytes    (an IPv6 member)
        MULTIS_MEMBER_A_STATS (nested) dumps only
          MULTIS_STATS_A_<NAME> u64  (MULTIS_STATS_A_PAD for alignment)

Decoding walks the attributes by their headers, so it accepts what the
kernel may add (unknown attributes are skipped) and refuses what is
malformed, as the kernel's own nla_parse does.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv6Address

from . import uapi
from .addresses import IPAddress
from .errors import KernelError
from .models import Member, ServerCounters

NLA_HDRLEN = 4
NLA_F_NESTED = 1 << 15
NLA_TYPE_MASK = ~((1 << 15) | (1 << 14))

_HEADER = struct.Struct("=HH")
_U64 = struct.Struct("=Q")
# one request element: the MEMBER nest's header, then the ADDR attribute's
_ELEMENT_HEAD = struct.pack(
    "=HHHH", 12, uapi.MULTIS_A_MEMBER | NLA_F_NESTED, 8, uapi.MULTIS_MEMBER_A_ADDR
)
_ELEMENT_HEAD6 = struct.pack(
    "=HHHH", 24, uapi.MULTIS_A_MEMBER | NLA_F_NESTED, 20, uapi.MULTIS_MEMBER_A_ADDR6
)
#: bytes one member takes in MULTIS_A_MEMBERS, by IP version
ELEMENT_SIZE = {4: 12, 6: 24}

#: MULTIS_STATS_A_<NAME> value -> ServerCounters field, from the uapi constants
_COUNTER_FIELDS = frozenset(ServerCounters.__dataclass_fields__)
_COUNTERS = {
    value: name[len("MULTIS_STATS_A_") :].lower()
    for name, value in vars(uapi).items()
    if name.startswith("MULTIS_STATS_A_")
    and name[len("MULTIS_STATS_A_") :].lower() in _COUNTER_FIELDS
}


_NO_COUNTERS = ServerCounters()


def encode(addresses: Iterable[IPAddress]) -> bytes:
    """The payload of MULTIS_A_MEMBERS for a JOIN or QUIT of ``addresses``."""
    head, head6 = _ELEMENT_HEAD, _ELEMENT_HEAD6
    return b"".join(
        (head if address.version == 4 else head6) + address.packed for address in addresses
    )


def _attributes(data: bytes, start: int, end: int, what: str) -> list[tuple[int, int, int]]:
    """(type, payload start, payload end) of each attribute in data[start:end],
    as nla_for_each_attr walks them."""
    found = []
    unpack = _HEADER.unpack_from
    while start < end:
        if end - start < NLA_HDRLEN:
            raise KernelError(f"{what}: truncated attribute at byte {start}")
        length, kind = unpack(data, start)
        if length < NLA_HDRLEN or start + length > end:
            raise KernelError(f"{what}: attribute of length {length} at byte {start}")
        found.append((kind & NLA_TYPE_MASK, start + NLA_HDRLEN, start + length))
        start += (length + 3) & ~3
    return found


def _counters(data: bytes, start: int, end: int) -> ServerCounters:
    values: dict[str, int] = {}
    for kind, first, last in _attributes(data, start, end, "member counters"):
        name = _COUNTERS.get(kind)
        if name is not None and last - first == 8:
            values[name] = _U64.unpack_from(data, first)[0]
    return ServerCounters(**values)


def decode(data: bytes | None) -> list[Member]:
    """The members of a MULTIS_A_MEMBERS payload (of a GET_MEMBERS dump)."""
    if not data:
        return []
    data = bytes(data)
    members = []
    for kind, first, last in _attributes(data, 0, len(data), "members"):
        if kind != uapi.MULTIS_A_MEMBER:
            continue
        address: IPAddress | None = None
        stats = _NO_COUNTERS
        for field, begin, stop in _attributes(data, first, last, "member"):
            if field == uapi.MULTIS_MEMBER_A_ADDR and stop - begin == 4:
                address = IPv4Address(data[begin:stop])
            elif field == uapi.MULTIS_MEMBER_A_ADDR6 and stop - begin == 16:
                address = IPv6Address(data[begin:stop])
            elif field == uapi.MULTIS_MEMBER_A_STATS:
                stats = _counters(data, begin, stop)
        if address is None:
            raise KernelError("members: an element without an address")
        members.append(Member(address=address, stats=stats))
    return members
