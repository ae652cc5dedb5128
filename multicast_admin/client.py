"""The client (multic) domain API: (server, port) entries mapped back to groups.

:class:`Client` checks the syntax of a request (addresses, port, options)
and leaves the rest to the kernel, the authority: limits and existence come
back as its extack message.  An add is one ADD; only when the kernel says the
key exists is the entry read once, to tell "unchanged" from "moved".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

from . import lean
from .addresses import (
    Address,
    IPAddress,
    check_group,
    check_same_family,
    check_server,
    parse_ip,
    parse_port,
)
from .errors import AlreadyExists
from .models import ClientEntry, ClientStatus
from .restored import RestoredMark

if TYPE_CHECKING:
    from .netlink import MulticNetlink


class AddOutcome(Enum):
    ADDED = "added"
    UNCHANGED = "unchanged"
    MOVED = "moved"


@dataclass(frozen=True)
class AddResult:
    """What an add did; ``previous_group`` is set when an existing key was moved."""

    server: IPAddress
    port: int
    group: IPAddress
    outcome: AddOutcome
    previous_group: IPAddress | None = None


def parse_key(server: Address, port: int | str) -> tuple[IPAddress, int]:
    return parse_ip(server, "server"), parse_port(port)


def check_add(
    server: Address, port: int | str, group: Address, *, broadcast: bool = False
) -> tuple[IPAddress, int, IPAddress]:
    """The checks of an add that need no kernel: (server, port, group)."""
    address, port = parse_key(server, port)
    check_server(address)
    target = parse_ip(group, "group")
    check_group(target, broadcast=broadcast)
    check_same_family(target, address, "server")
    return address, port, target


class Client(RestoredMark):
    """Entries of the multic module in the current network namespace."""

    def __init__(self, backend: MulticNetlink) -> None:
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
        try:
            self.backend.add(address, port, target)
            return AddResult(address, port, target, AddOutcome.ADDED)
        except AlreadyExists:
            existing = self.backend.get_entry(address, port)
        if existing.group == target:
            return AddResult(address, port, target, AddOutcome.UNCHANGED)
        self.backend.add(address, port, target, replace=True)
        return AddResult(address, port, target, AddOutcome.MOVED, existing.group)

    def delete(self, server: Address, port: int | str) -> None:
        """Remove the entry (server, port); NotFound if there is none."""
        self.backend.delete(*parse_key(server, port))

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
