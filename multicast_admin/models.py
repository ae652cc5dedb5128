"""What the kernel reports, as plain immutable values.

``to_json()`` of each class is the stable ``--json`` schema of the CLIs
(documented in docs/usage.md): addresses as dotted-quad strings, counters as
integers, every key always present.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from .addresses import IPAddress

#: The ``version`` key of every ``--json`` answer.
JSON_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ServerCounters:
    """One multis counter space (namespace, group or member)."""

    datagrams: int = 0
    """Original datagrams fanned out."""
    packets: int = 0
    """Unicast copies handed to the stack."""
    bytes: int = 0
    """IP bytes of those copies."""
    drop_no_member: int = 0
    """Datagrams to a group with no member."""
    drop_nomem: int = 0
    """Copies not made: out of memory."""
    drop_no_route: int = 0
    """Copies with no route to the member."""
    drop_xmit: int = 0
    """Copies the output path refused."""
    drop_too_big: int = 0
    """Copies not sent: DF set, fragmenting not allowed, larger than the MTU to the member."""

    #: The counters a member carries (the kernel sends only these for a member).
    MEMBER_FIELDS = (
        "packets",
        "bytes",
        "drop_nomem",
        "drop_no_route",
        "drop_xmit",
        "drop_too_big",
    )

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def member_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.MEMBER_FIELDS}


@dataclass(frozen=True)
class ClientCounters:
    """One multic counter space (namespace or entry)."""

    packets: int = 0
    """Copies restored to their group."""
    bytes: int = 0
    """IP bytes of those."""
    not_local: int = 0
    """Marked and matched, but not addressed to this host: left alone."""
    drop_nomem: int = 0
    """Could not be made writable: dropped."""
    no_entry: int = 0
    """Namespace only: marked, but no entry for its server and port: left alone."""
    not_udp: int = 0
    """Namespace only: marked IPv6, not plain UDP after extension headers: left alone."""

    #: The counters an entry carries (the kernel sends only these for an entry).
    ENTRY_FIELDS = ("packets", "bytes", "not_local", "drop_nomem")

    def to_json(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def entry_json(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.ENTRY_FIELDS}


@dataclass(frozen=True)
class Group:
    """A multis group as GET_GROUP reports it (without its members)."""

    address: IPAddress
    broadcast: bool = False
    vrrp: bool = False
    member_count: int = 0
    stats: ServerCounters = field(default_factory=ServerCounters)

    def to_json(self) -> dict[str, Any]:
        return {
            "group": str(self.address),
            "broadcast": self.broadcast,
            "vrrp": self.vrrp,
            "member_count": self.member_count,
            "stats": self.stats.to_json(),
        }


@dataclass(frozen=True)
class Member:
    """A member of a multis group, with its own counters."""

    address: IPAddress
    stats: ServerCounters = field(default_factory=ServerCounters)

    def to_json(self) -> dict[str, Any]:
        return {"address": str(self.address), "stats": self.stats.member_json()}


@dataclass(frozen=True)
class ServerStatus:
    """Namespace-wide multis counters, counts and limits (GET_STATS)."""

    stats: ServerCounters
    group_count: int
    max_groups: int
    max_members: int
    marker_tos: int
    restored: bool = False
    """The namespace's configuration was restored from the saved state (SET_RESTORED)."""
    generation: int | None = None
    """The configuration's generation (GENERATION): random when the namespace's
    state was made, one more per request that changed it; None from a module
    that does not report it.  Not in to_json(): it says nothing to a reader."""

    def to_json(self) -> dict[str, Any]:
        return {
            "stats": self.stats.to_json(),
            "group_count": self.group_count,
            "max_groups": self.max_groups,
            "max_members": self.max_members,
            "marker_tos": self.marker_tos,
        }


@dataclass(frozen=True)
class ClientEntry:
    """A multic entry: copies from ``server`` to UDP ``port`` (0: any) go back to ``group``."""

    server: IPAddress
    port: int
    group: IPAddress
    stats: ClientCounters = field(default_factory=ClientCounters)

    @property
    def key(self) -> tuple[IPAddress, int]:
        return (self.server, self.port)

    @property
    def broadcast(self) -> bool:
        """Restored to a broadcast address (added with ``--broadcast``)."""
        return not self.group.is_multicast

    def to_json(self) -> dict[str, Any]:
        return {
            "server": str(self.server),
            "port": self.port,
            "group": str(self.group),
            "broadcast": self.broadcast,
            "stats": self.stats.entry_json(),
        }


@dataclass(frozen=True)
class ClientStatus:
    """Namespace-wide multic counters, counts and limits (GET_STATS)."""

    stats: ClientCounters
    entry_count: int
    group_count: int
    max_groups: int
    max_entries: int
    marker_tos: int
    restored: bool = False
    """The namespace's configuration was restored from the saved state (SET_RESTORED)."""
    generation: int | None = None
    """The configuration's generation (GENERATION): random when the namespace's
    state was made, one more per request that changed it; None from a module
    that does not report it.  Not in to_json(): it says nothing to a reader."""

    def to_json(self) -> dict[str, Any]:
        return {
            "stats": self.stats.to_json(),
            "entry_count": self.entry_count,
            "group_count": self.group_count,
            "max_groups": self.max_groups,
            "max_entries": self.max_entries,
            "marker_tos": self.marker_tos,
        }
