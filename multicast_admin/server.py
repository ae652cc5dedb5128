"""The server (multis) domain API: groups and their members.

:class:`Server` checks the syntax of a request (addresses, options) and
leaves everything else to the kernel, the authority: limits, existence,
members that are groups, conflicting options come back as the kernel's own
extack message, mapped to the documented exit code.  What a result says
("created", "already a member") comes from one read of the group's members
before the one all-or-nothing command.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import lean
from .addresses import (
    Address,
    IPAddress,
    check_group,
    check_member,
    check_same_family,
    parse_ip,
    parse_ip_list,
    unique,
)
from .errors import InvalidArgument, NotFound
from .models import Group, Member, ServerStatus
from .restored import RestoredMark
from .uapi import MULTIS_GROUP_F_BROADCAST, MULTIS_GROUP_F_VRRP

if TYPE_CHECKING:
    from .netlink import MultisNetlink


@dataclass(frozen=True)
class JoinResult:
    """What a join did."""

    group: IPAddress
    created: bool
    """The group did not exist before."""
    added: tuple[IPAddress, ...] = ()
    """Members added, in the order given."""
    already: tuple[IPAddress, ...] = ()
    """Members given that were in the group already (left as they were)."""
    repeated: tuple[IPAddress, ...] = ()
    """Members given more than once (counted once)."""


@dataclass(frozen=True)
class QuitResult:
    """What a quit did."""

    group: IPAddress
    removed: tuple[IPAddress, ...]
    repeated: tuple[IPAddress, ...] = ()


def check_join(
    group: Address, members: Iterable[Address], *, broadcast: bool = False
) -> tuple[IPAddress, list[IPAddress], list[IPAddress]]:
    """The syntax of a join: (group, members once each, repeated ones).

    A multicast member is left to the kernel, which names it best (it may
    be a configured group).
    """
    address = parse_ip(group, "group")
    check_group(address, broadcast=broadcast)
    wanted, repeated = unique(parse_ip_list(members))
    for member in wanted:
        check_same_family(address, member)
        if member == address:
            raise InvalidArgument(f"member {member} is a configured group")
        if not member.is_multicast:
            check_member(member)
    return address, wanted, repeated


def check_quit(
    group: Address, members: Iterable[Address]
) -> tuple[IPAddress, list[IPAddress], list[IPAddress]]:
    """The checks of a quit that need no kernel: (group, members once each, repeated ones)."""
    address = parse_ip(group, "group")
    wanted, repeated = unique(parse_ip_list(members))
    for member in wanted:
        check_same_family(address, member)
    if not wanted:
        raise InvalidArgument(f"group {address}: no member to remove given")
    return address, wanted, repeated


def group_flags(*, broadcast: bool = False, vrrp: bool = False) -> int:
    """The MULTIS_GROUP_F_* bits of a group's options."""
    return (MULTIS_GROUP_F_BROADCAST if broadcast else 0) | (MULTIS_GROUP_F_VRRP if vrrp else 0)


class Server(RestoredMark):
    """Groups and members of the multis module in the current network namespace."""

    def __init__(self, backend: MultisNetlink) -> None:
        self.backend = backend

    @classmethod
    def open(cls) -> Server:
        """Connect to the kernel; raises ModuleNotLoaded if multis is not loaded."""
        # pyroute2 takes long to import: only when the kernel is really asked.
        return cls(lean.netlink().MultisNetlink.open())

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- changes ---------------------------------------------------------

    def join(
        self,
        group: Address,
        members: Iterable[Address],
        *,
        broadcast: bool = False,
        vrrp: bool = False,
    ) -> JoinResult:
        """Add ``members`` to ``group``, creating it if needed.

        All or nothing: one bad member or a limit refuses the whole request.
        Members already in the group, or given twice, are no error: the
        result lists them.  Options given must be the group's (the kernel
        refuses others as a conflict); none given keeps an existing group's
        options, so ``vrrp`` need not be repeated.
        """
        address, wanted, repeated = check_join(group, members, broadcast=broadcast)
        try:
            current = {m.address for m in self.backend.members(address)}
            created = False
        except NotFound:
            current, created = set(), True
        added = tuple(m for m in wanted if m not in current)
        already = tuple(m for m in wanted if m in current)
        flags = group_flags(broadcast=broadcast, vrrp=vrrp)
        if created or added or flags:
            self.backend.join(address, added, flags=flags or None)
        return JoinResult(address, created, added, already, tuple(repeated))

    def create(
        self,
        group: Address,
        members: Iterable[Address],
        *,
        broadcast: bool = False,
        vrrp: bool = False,
    ) -> None:
        """One JOIN and no read: a group with its members, for a restore into an
        empty kernel, or the agent, which knows what the group holds (an
        existing group is joined as the kernel does it)."""
        address, wanted, _ = check_join(group, members, broadcast=broadcast)
        flags = group_flags(broadcast=broadcast, vrrp=vrrp)
        self.backend.join(address, wanted, flags=flags or None)

    def quit(self, group: Address, members: Iterable[Address]) -> QuitResult:
        """Remove ``members`` from ``group``; all or nothing, every one must be a member."""
        address, wanted, repeated = check_quit(group, members)
        self.backend.quit(address, wanted)
        return QuitResult(address, tuple(wanted), tuple(repeated))

    def delete(self, group: Address) -> None:
        """Delete ``group`` and its members."""
        self.backend.delete_group(parse_ip(group, "group"))

    def clear(self) -> None:
        """Delete every group."""
        self.backend.clear()

    def reset_stats(self) -> None:
        """Zero every counter: namespace-wide, per group and per member."""
        self.backend.reset_stats()

    # --- reads -------------------------------------------------------------

    def groups(self) -> list[Group]:
        return self.backend.groups()

    def group(self, group: Address) -> Group:
        """One group with its counters; NotFound if it does not exist."""
        return self.backend.get_group(parse_ip(group, "group"))

    def members(self, group: Address) -> list[Member]:
        """The members of ``group`` with their counters; NotFound if it does not exist."""
        return self.backend.members(parse_ip(group, "group"))

    def stats(self) -> ServerStatus:
        return self.backend.stats()
