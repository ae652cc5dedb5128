"""Parsing and checking of the addresses and ports an operator types.

The kernel is the authority and refuses the same things with the same words;
checking here first gives one clear line before anything is sent, and lets the
CLI refuse a whole request without touching the kernel.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Union

from .errors import InvalidArgument

IPAddress = Union[IPv4Address, IPv6Address]
Address = Union[str, IPv4Address, IPv6Address]

MULTICAST = IPv4Network("224.0.0.0/4")
LOOPBACK = IPv4Network("127.0.0.0/8")
ZERO_NETWORK = IPv4Network("0.0.0.0/8")
LIMITED_BROADCAST = IPv4Address("255.255.255.255")
_NOT_UNICAST = (
    (MULTICAST, "multicast"),
    (LOOPBACK, "loopback"),
    (ZERO_NETWORK, "zero network"),
    (IPv4Network(f"{LIMITED_BROADCAST}/32"), "broadcast"),
)
MULTICAST6 = IPv6Network("ff00::/8")
#: RFC 4291 2.7: scopes 0 (reserved) and 1 (interface-local) never leave the host
SCOPE_INTERFACE_LOCAL = 1
PORT_ANY = 0
PORT_MAX = 65535


def parse_ipv4(value: Address, what: str = "address") -> IPv4Address:
    """``value`` as an IPv4 address, in dotted-quad form only (no '1.2.3', no leading zeros)."""
    if isinstance(value, IPv4Address):
        return value
    text = value.strip()
    try:
        # inet_pton is as strict as IPv4Address(str) (dotted quad, no leading
        # zeros) and 20 times faster: a saved state may hold millions
        return IPv4Address(socket.inet_pton(socket.AF_INET, text))
    except (OSError, ValueError):
        raise InvalidArgument(
            f"{what} {value!r} is not a valid IPv4 address (expected a.b.c.d)"
        ) from None


def parse_ip(value: Address, what: str = "address") -> IPAddress:
    """``value`` as an IPv4 (dotted quad) or IPv6 address (RFC 4291 text, no zone, no prefix)."""
    if isinstance(value, (IPv4Address, IPv6Address)):
        return value
    text = value.strip()
    if ":" not in text:
        try:
            return IPv4Address(socket.inet_pton(socket.AF_INET, text))
        except (OSError, ValueError):
            pass
    else:
        try:
            return IPv6Address(socket.inet_pton(socket.AF_INET6, text))
        except (OSError, ValueError):
            pass
    raise InvalidArgument(
        f"{what} {value!r} is not a valid IP address (expected a.b.c.d or an IPv6 address)"
    )


def parse_ip_list(values: Iterable[Address], what: str = "member") -> list[IPAddress]:
    """IPv4 or IPv6 addresses from values that may each be a comma-separated list."""
    result: list[IPAddress] = []
    for value in values:
        if isinstance(value, (IPv4Address, IPv6Address)):
            result.append(value)
            continue
        for item in value.split(","):
            if not item.strip():
                raise InvalidArgument(
                    f"empty {what} in list {value!r} (separate addresses with single commas)"
                )
            result.append(parse_ip(item, what))
    return result


def host_port(address: IPAddress, port: int) -> str:
    """``a.b.c.d:port``, ``[v6]:port``: an address and a port as operators read them."""
    return f"[{address}]:{port}" if address.version == 6 else f"{address}:{port}"


def family_name(address: IPAddress) -> str:
    return f"IPv{address.version}"


def check_same_family(group: IPAddress, other: IPAddress, what: str = "member") -> None:
    """A group's members (an entry's server) are of the group's family."""
    if other.version != group.version:
        raise InvalidArgument(
            f"group {group}: {what} {other} is {family_name(other)}, "
            f"the group is {family_name(group)} (one family per group)"
        )


def unique(addresses: Iterable[IPAddress]) -> tuple[list[IPAddress], list[IPAddress]]:
    """(first occurrences in order, repeated ones)."""
    seen: set[IPAddress] = set()
    first: list[IPAddress] = []
    repeated: list[IPAddress] = []
    for address in addresses:
        if address in seen:
            repeated.append(address)
        else:
            seen.add(address)
            first.append(address)
    return first, repeated


def check_group6(group: IPv6Address, *, broadcast: bool = False) -> None:
    """An IPv6 group: ff00::/8 with a scope above interface-local; IPv6 has no broadcast."""
    if broadcast:
        raise InvalidArgument(f"group {group}: IPv6 has no broadcast (drop --broadcast)")
    if group not in MULTICAST6:
        raise InvalidArgument(f"group {group} is not a multicast address (ff00::/8)")
    scope = group.packed[1] & 0x0F
    if scope <= SCOPE_INTERFACE_LOCAL:
        raise InvalidArgument(
            f"group {group} has scope {scope:x} (interface-local or reserved):"
            " it never leaves the host"
        )


def check_unicast6(address: IPv6Address, what: str) -> None:
    """An IPv6 member or server: unicast, and not loopback, unspecified or IPv4-mapped."""
    if address in MULTICAST6:
        raise InvalidArgument(f"{what} {address} is a multicast address")
    if address == IPv6Address("::1"):
        raise InvalidArgument(f"{what} {address} is a loopback address")
    if address == IPv6Address("::"):
        raise InvalidArgument(f"{what} {address} is an unspecified address")
    if address.ipv4_mapped is not None:
        raise InvalidArgument(
            f"{what} {address} is an IPv4-mapped address (give {address.ipv4_mapped} instead)"
        )


def check_group(group: IPAddress, *, broadcast: bool = False) -> None:
    """A group is multicast; a broadcast group (only when asked for) is a broadcast address.

    The same rule on both sides: multis fans a group out, multic restores
    copies to it.  A broadcast address is 255.255.255.255 or a subnet's
    broadcast; which addresses are a subnet's broadcast depends on interface
    configuration, so (as in the kernel) any address that is not multicast,
    loopback or in 0.0.0.0/8 is accepted when asked for explicitly.
    """
    if isinstance(group, IPv6Address):
        check_group6(group, broadcast=broadcast)
        return
    if not broadcast:
        if group not in MULTICAST:
            raise InvalidArgument(
                f"group {group} is not a multicast address "
                "(224.0.0.0/4; add --broadcast for a broadcast address)"
            )
        return
    if group in MULTICAST:
        raise InvalidArgument(
            f"group {group} is not a broadcast address (it is multicast: drop --broadcast)"
        )
    if group in LOOPBACK or group in ZERO_NETWORK:
        raise InvalidArgument(f"group {group} is not a broadcast address")


def check_member(member: IPAddress) -> None:
    """A member is a unicast address another host can be reached at (as multis checks it)."""
    if isinstance(member, IPv6Address):
        check_unicast6(member, "member")
        return
    # by the first octet: IPv4Network.__contains__ is slow for millions
    first = int(member) >> 24
    if first >= 224 and member in MULTICAST:
        raise InvalidArgument(f"member {member} is a multicast address")
    if first == 127:
        raise InvalidArgument(f"member {member} is a loopback address")
    if first == 0:
        raise InvalidArgument(f"member {member} is an unspecified address")
    if member == LIMITED_BROADCAST:
        raise InvalidArgument(f"member {member} is the broadcast address")


def check_server(server: IPAddress) -> None:
    """The sending host a client entry names: a unicast address (as multic checks it)."""
    if isinstance(server, IPv6Address):
        check_unicast6(server, "server")
        return
    for network, reason in _NOT_UNICAST:
        if server in network:
            raise InvalidArgument(f"server {server} is not a unicast address ({reason})")


def parse_port(value: int | str) -> int:
    """A UDP port typed as digits (or given as an int), 0 meaning any port."""
    if isinstance(value, str):
        text = value.strip()
        if not re.fullmatch(r"[0-9]+", text):
            raise InvalidArgument(f"port {value!r} is not a number: use 0-65535 (0 = any port)")
        value = int(text)
    check_port(value)
    return value


def check_port(port: int) -> None:
    """A UDP port, 0 meaning any port."""
    if isinstance(port, bool) or not isinstance(port, int) or not PORT_ANY <= port <= PORT_MAX:
        raise InvalidArgument(f"port {port!r} is out of range: use 0-65535 (0 = any port)")
