"""The server (multis) domain API: groups and their members.

:class:`Server` checks a request the way the kernel will (same refusals, same
words), makes repeated requests harmless and says so in its results, then
sends one all-or-nothing command.  It works on any :class:`ServerBackend`:
the real :class:`~multicast_admin.netlink.MultisNetlink`, or a test double.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Protocol

from . import lean
from .addresses import (
    MULTICAST,
    Address,
    check_group,
    check_member,
    parse_ipv4,
    parse_ipv4_list,
    unique,
)
from .errors import AlreadyExists, InvalidArgument, LimitReached, NotFound
from .models import Group, Member, ServerStatus
from .uapi import MULTIS_GROUP_F_BROADCAST, MULTIS_GROUP_F_VRRP


class ServerBackend(Protocol):
    """The multis commands (what MultisNetlink implements)."""

    def join(
        self,
        group: IPv4Address,
        members: Sequence[IPv4Address] = (),
        *,
        flags: int = 0,
        exclusive: bool = False,
    ) -> None: ...

    def quit(self, group: IPv4Address, members: Sequence[IPv4Address]) -> None: ...

    def delete_group(self, group: IPv4Address) -> None: ...

    def clear(self) -> None: ...

    def get_group(self, group: IPv4Address) -> Group: ...

    def groups(self) -> list[Group]: ...

    def members(self, group: IPv4Address) -> list[Member]: ...

    def stats(self) -> ServerStatus: ...

    def reset_stats(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class JoinResult:
    """What a join (or add_group) did."""

    group: IPv4Address
    created: bool
    """The group did not exist before."""
    added: tuple[IPv4Address, ...] = ()
    """Members added, in the order given."""
    already: tuple[IPv4Address, ...] = ()
    """Members given that were in the group already (left as they were)."""
    repeated: tuple[IPv4Address, ...] = ()
    """Members given more than once (counted once)."""

    @property
    def changed(self) -> bool:
        return self.created or bool(self.added)


@dataclass(frozen=True)
class QuitResult:
    """What a quit did."""

    group: IPv4Address
    removed: tuple[IPv4Address, ...]
    repeated: tuple[IPv4Address, ...] = ()


def check_join(
    group: Address,
    members: Iterable[Address],
    *,
    broadcast: bool = False,
    groups: Collection[IPv4Address] | None = None,
) -> tuple[IPv4Address, list[IPv4Address], list[IPv4Address]]:
    """The checks of a join: (group, members once each, repeated ones).

    With ``groups`` (the configured groups) every check is made, in the
    kernel's order: a member that is a configured group is named so first.
    Without (before the kernel is asked), a multicast member is left for
    then, since it may be such a group.
    """
    address = parse_ipv4(group, "group")
    check_group(address, broadcast=broadcast)
    wanted, repeated = unique(parse_ipv4_list(members))
    for member in wanted:
        if member == address or (groups is not None and member in groups):
            raise InvalidArgument(f"member {member} is a configured group")
        if groups is None and member in MULTICAST:
            continue
        check_member(member)
    return address, wanted, repeated


def check_quit(
    group: Address, members: Iterable[Address]
) -> tuple[IPv4Address, list[IPv4Address], list[IPv4Address]]:
    """The checks of a quit that need no kernel: (group, members once each, repeated ones)."""
    address = parse_ipv4(group, "group")
    wanted, repeated = unique(parse_ipv4_list(members))
    if not wanted:
        raise InvalidArgument(f"group {address}: no member to remove given")
    return address, wanted, repeated


def group_flags(*, broadcast: bool = False, vrrp: bool = False) -> int:
    """The MULTIS_GROUP_F_* bits of a group's options."""
    return (MULTIS_GROUP_F_BROADCAST if broadcast else 0) | (MULTIS_GROUP_F_VRRP if vrrp else 0)


def _options(broadcast: bool, vrrp: bool) -> str:
    names = [name for name, on in (("--broadcast", broadcast), ("--vrrp", vrrp)) if on]
    return "options " + " ".join(names) if names else "no options"


class Server:
    """Groups and members of the multis module in the current network namespace."""

    def __init__(self, backend: ServerBackend) -> None:
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

    def add_group(
        self, group: Address, *, broadcast: bool = False, vrrp: bool = False
    ) -> JoinResult:
        """Create ``group`` with no member; an existing group with the same options is kept."""
        return self.join(group, (), broadcast=broadcast, vrrp=vrrp)

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
        result lists them.  An existing group keeps its options: ``vrrp``
        need not be repeated, but asking for it on a group without it is a
        conflict (``broadcast`` always matches: it follows from the address).
        """
        address, wanted, repeated = check_join(group, members, broadcast=broadcast)
        groups = {g.address: g for g in self.backend.groups()}
        check_join(address, wanted, broadcast=broadcast, groups=groups.keys())
        existing = groups.get(address)
        status = self.backend.stats()
        if existing is None:
            if len(groups) >= status.max_groups:
                raise LimitReached(
                    f"group limit {status.max_groups} reached: {address} would be one too many "
                    "(delete a group first, or raise the multis max_groups parameter)"
                )
            if broadcast:
                self._refuse_group_that_is_a_member(address, groups)
            current: set[IPv4Address] = set()
        else:
            if broadcast != existing.broadcast or (vrrp and not existing.vrrp):
                raise AlreadyExists(
                    f"group {address} already exists with "
                    f"{_options(existing.broadcast, existing.vrrp)} "
                    "(delete it first to change its options)"
                )
            vrrp = existing.vrrp
            current = {m.address for m in self.backend.members(address)}

        added = tuple(m for m in wanted if m not in current)
        already = tuple(m for m in wanted if m in current)
        if len(current) + len(added) > status.max_members:
            raise LimitReached(
                f"group {address}: member limit {status.max_members} reached "
                f"({len(current)} + {len(added)} new; raise the multis max_members parameter)"
            )
        if existing is None or added:
            self.backend.join(address, added, flags=group_flags(broadcast=broadcast, vrrp=vrrp))
        return JoinResult(address, existing is None, added, already, tuple(repeated))

    def _refuse_group_that_is_a_member(
        self, address: IPv4Address, groups: dict[IPv4Address, Group]
    ) -> None:
        # Only a broadcast group can be a unicast-looking address that is
        # also some group's member (a copy to it would be fanned out again).
        for other in groups:
            if any(m.address == address for m in self.backend.members(other)):
                raise InvalidArgument(f"group {address} is a member of group {other}")

    def quit(self, group: Address, members: Iterable[Address]) -> QuitResult:
        """Remove ``members`` from ``group``; all or nothing, every one must be a member."""
        address, wanted, repeated = check_quit(group, members)
        current = {m.address for m in self.members(address)}
        missing = [m for m in wanted if m not in current]
        if missing:
            listed = ", ".join(str(m) for m in missing)
            noun = "member" if len(missing) == 1 else "members"
            verb = "is" if len(missing) == 1 else "are"
            raise NotFound(f"{noun} {listed} {verb} not in group {address}")
        self.backend.quit(address, wanted)
        return QuitResult(address, tuple(wanted), tuple(repeated))

    def delete(self, group: Address) -> None:
        """Delete ``group`` and its members."""
        address = parse_ipv4(group, "group")
        self.group(address)
        self.backend.delete_group(address)

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
        return self.backend.get_group(parse_ipv4(group, "group"))

    def members(self, group: Address) -> list[Member]:
        """The members of ``group`` with their counters; NotFound if it does not exist."""
        address = parse_ipv4(group, "group")
        self.group(address)
        return self.backend.members(address)

    def stats(self) -> ServerStatus:
        return self.backend.stats()
