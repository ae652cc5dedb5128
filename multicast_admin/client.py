"""The client (multic) domain API: (server, port) entries mapped back to groups.

:class:`Client` checks a request the way the kernel will, makes a repeated
add harmless, moves an existing key to a new group explicitly, then sends one
command.  It works on any :class:`ClientBackend`: the real
:class:`~multicast_admin.netlink.MulticNetlink`, or a test double.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from ipaddress import IPv4Address
from typing import Protocol

from . import lean
from .addresses import Address, check_group, check_server, parse_ipv4, parse_port
from .errors import LimitReached
from .models import ClientEntry, ClientStatus


class ClientBackend(Protocol):
    """The multic commands (what MulticNetlink implements)."""

    def add(
        self, server: IPv4Address, port: int, group: IPv4Address, *, replace: bool = False
    ) -> None: ...

    def delete(self, server: IPv4Address, port: int) -> None: ...

    def clear(self) -> None: ...

    def get_entry(self, server: IPv4Address, port: int) -> ClientEntry: ...

    def entries(self) -> list[ClientEntry]: ...

    def stats(self) -> ClientStatus: ...

    def reset_stats(self) -> None: ...

    def close(self) -> None: ...


class AddOutcome(Enum):
    ADDED = "added"
    UNCHANGED = "unchanged"
    MOVED = "moved"


@dataclass(frozen=True)
class AddResult:
    """What an add did; ``previous_group`` is set when an existing key was moved."""

    server: IPv4Address
    port: int
    group: IPv4Address
    outcome: AddOutcome
    previous_group: IPv4Address | None = None

    @property
    def changed(self) -> bool:
        return self.outcome is not AddOutcome.UNCHANGED


def parse_key(server: Address, port: int | str) -> tuple[IPv4Address, int]:
    return parse_ipv4(server, "server"), parse_port(port)


def check_add(
    server: Address, port: int | str, group: Address, *, broadcast: bool = False
) -> tuple[IPv4Address, int, IPv4Address]:
    """The checks of an add that need no kernel: (server, port, group)."""
    address, port = parse_key(server, port)
    check_server(address)
    target = parse_ipv4(group, "group")
    check_group(target, broadcast=broadcast)
    return address, port, target


class Client:
    """Entries of the multic module in the current network namespace."""

    def __init__(self, backend: ClientBackend) -> None:
        self.backend = backend

    @classmethod
    def open(cls) -> Client:
        """Connect to the kernel; raises ModuleNotLoaded if multic is not loaded."""
        # pyroute2 takes long to import: only when the kernel is really asked.
        return cls(lean.netlink().MulticNetlink.open())

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self, server: Address, port: int | str, group: Address, *, broadcast: bool = False
    ) -> AddResult:
        """Restore copies from ``server`` to UDP ``port`` (0: any port) to ``group``.

        The same entry again changes nothing; an existing (server, port)
        with another group is moved to ``group``.
        """
        address, port, target = check_add(server, port, group, broadcast=broadcast)
        entries = self.backend.entries()
        existing = next((e for e in entries if e.key == (address, port)), None)
        if existing is not None and existing.group == target:
            return AddResult(address, port, target, AddOutcome.UNCHANGED)

        status = self.backend.stats()
        if existing is None and len(entries) >= status.max_entries:
            raise LimitReached(
                f"entry limit {status.max_entries} reached "
                "(delete an entry first, or raise the multic max_entries parameter)"
            )
        groups_before = {e.group for e in entries}
        groups_after = {e.group for e in entries if e is not existing} | {target}
        if target not in groups_before and len(groups_after) > status.max_groups:
            raise LimitReached(
                f"group limit {status.max_groups} reached: {target} would be one group too many "
                "(delete the entries of another group, or raise the multic max_groups parameter)"
            )
        self.backend.add(address, port, target, replace=existing is not None)
        if existing is None:
            return AddResult(address, port, target, AddOutcome.ADDED)
        return AddResult(address, port, target, AddOutcome.MOVED, existing.group)

    def delete(self, server: Address, port: int | str) -> None:
        """Remove the entry (server, port); NotFound if there is none."""
        address, port = parse_key(server, port)
        self.backend.get_entry(address, port)
        self.backend.delete(address, port)

    def clear(self) -> None:
        """Remove every entry."""
        self.backend.clear()

    def reset_stats(self) -> None:
        """Zero every counter."""
        self.backend.reset_stats()

    def entries(self) -> list[ClientEntry]:
        return self.backend.entries()

    def entry(self, server: Address, port: int | str) -> ClientEntry:
        """One entry with its counters; NotFound if there is none."""
        return self.backend.get_entry(*parse_key(server, port))

    def stats(self) -> ClientStatus:
        return self.backend.stats()
