"""The kernel side of the agent: multis and multic through the domain API.

:class:`KernelBackend` makes the kernel hold what etcd says, touching only
what its :class:`~.ledger.Ledger` says the agent added: a member or an entry
an operator configured (the guide's commands) is left alone even when etcd
wants the same, and never removed.  Every change is sent with
REQUIRE_RESTORED, so nothing is added to a namespace whose saved state the
service has not restored yet.  A refusal (a limit, a conflicting static
entry) is a *problem*: reported, logged, retried later, never half applied
(a group's missing members go in one all-or-nothing join).

Each module reports its configuration's generation in GET_STATS (one more
per request that changed the namespace's configuration, random at a load).
:meth:`KernelBackend.probe` reads it with the roles; each apply notes in
:attr:`KernelBackend.left` the generation it left the module at, if nothing
but its own requests changed it while it ran (after == before + its own
changes), else None.  The agent reconciles again only when a probe's
generation differs from what the last round left (docs/design.md, "One
loop per agent").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

from ..addresses import IPAddress, host_port
from ..client import AddOutcome, Client
from ..errors import ModuleNotLoaded, MulticastProxyError
from ..server import Server
from .groups import GroupDefinition, ip_order
from .ledger import Ledger

EntryMap = Mapping[tuple[IPAddress, int], IPAddress]
"""(source, port) -> group, each of the group's family (IPv4 or IPv6)."""


@dataclass(frozen=True)
class Roles:
    sender: bool
    """multis is loaded: this host copies to the groups' members."""
    receiver: bool
    """multic is loaded: this host restores copies from the groups' sources."""

    def names(self) -> list[str]:
        return [name for name, on in (("sender", self.sender), ("receiver", self.receiver)) if on]


SENDER = "multis"
RECEIVER = "multic"


@dataclass(frozen=True)
class Probe:
    """What one look at the two modules' GET_STATS says."""

    roles: Roles
    generations: dict[str, int | None]
    """Each loaded module's configuration generation (SENDER, RECEIVER); None
    from a module that does not report one."""


class _Counted:
    """A round's own successful changes, between two generation reads."""

    def __init__(self, before: int | None) -> None:
        self.before = before
        self.changes = 0

    def left(self, after: int | None) -> int | None:
        """``after`` if only the round's own changes moved the generation, else None."""
        if self.before is None or after is None or after != self.before + self.changes:
            return None
        return after


class KernelBackend:
    def __init__(
        self,
        open_server: Callable[[], Server],
        open_client: Callable[[], Client],
        ledger: Ledger,
    ) -> None:
        self.open_server = open_server
        self.open_client = open_client
        self.ledger = ledger
        self.left: dict[str, int | None] = {}
        """The generation each module was left at by the last apply (None: unknown)."""
        self._groups: dict[IPAddress, tuple[bool, bool]] = {}
        self._members: dict[IPAddress, set[IPAddress]] = {}
        self._entries: dict[tuple[IPAddress, int], IPAddress] = {}
        """What the kernel held when the last apply left it (groups with their
        (broadcast, vrrp), the members of the groups it read, multic's
        entries): valid while the module's generation is still the one that
        apply left, so the next apply reads no dump."""

    def probe(self) -> Probe:
        """The roles (which modules are loaded) and their generations: one
        GET_STATS each, no dump."""
        generations: dict[str, int | None] = {}
        for name, opener in ((SENDER, self.open_server), (RECEIVER, self.open_client)):
            try:
                generations[name] = self._generation(opener)
            except ModuleNotLoaded:
                continue
        return Probe(Roles(SENDER in generations, RECEIVER in generations), generations)

    @staticmethod
    def _generation(opener: Callable[[], Server | Client]) -> int | None:
        with opener() as side:
            return side.stats().generation

    # --- sender ------------------------------------------------------------

    def apply_sender(
        self,
        wanted: Mapping[IPAddress, set[IPAddress]],
        definitions: Mapping[IPAddress, GroupDefinition],
    ) -> list[str]:
        """multis's members: the agent's own equal to ``wanted`` (group -> members)."""
        problems: list[str] = []
        ledger = self.ledger
        before = (set(ledger.members), set(ledger.created_groups))
        left, self.left[SENDER] = self.left.get(SENDER), None
        with self.open_server() as server, server.requiring_restored():
            round_ = _Counted(server.stats().generation)
            if round_.before is None or round_.before != left:
                self._groups = {g.address: (g.broadcast, g.vrrp) for g in server.groups()}
                self._members = {}
            kernel, held = self._groups, self._members
            groups = set(wanted) | {g for g, _ in ledger.members} | ledger.created_groups
            for group in sorted(groups, key=ip_order):
                present = kernel.get(group)
                if present is None:
                    held[group] = set()
                elif group not in held:
                    held[group] = {m.address for m in server.members(group)}
                current = held[group]
                mine = {m for g, m in ledger.members if g == group}
                ledger.members -= {(group, m) for m in mine - current}  # removed by an operator
                mine &= current
                want = wanted.get(group, set())
                try:
                    gone = sorted(mine - want, key=ip_order)
                    if gone:
                        server.quit(group, gone)
                        round_.changes += 1
                        current -= set(gone)
                        ledger.members -= {(group, m) for m in gone}
                    add = sorted(want - current, key=ip_order)
                    if add:
                        if present is None:
                            spec = definitions[group]
                            server.create(group, add, broadcast=spec.broadcast, vrrp=spec.vrrp)
                            kernel[group] = (spec.broadcast, spec.vrrp)
                            ledger.created_groups.add(group)
                        else:
                            # no read: the members are known, and JOIN keeps those in
                            server.create(group, add, broadcast=present[0], vrrp=present[1])
                        round_.changes += 1
                        current |= set(add)
                        ledger.members |= {(group, m) for m in add}
                except MulticastProxyError as error:
                    problems.append(f"multis group {group}: {error}")
                round_.changes += self._drop_created(server, group, want)
            self.left[SENDER] = round_.left(server.stats().generation)
        ledger.dirty |= (ledger.members, ledger.created_groups) != before
        if ledger.dirty:
            ledger.save()  # a failure stays a problem until a save succeeds
        return problems

    def _drop_created(self, server: Server, group: IPAddress, want: set[IPAddress]) -> int:
        """A group the agent created goes when nobody is left in it and none is
        wanted; the number of changes made (0 or 1)."""
        if group not in self.ledger.created_groups or want:
            return 0
        deleted = 0
        try:
            if server.group(group).member_count == 0:
                server.delete(group)
                self._groups.pop(group, None)
                self._members.pop(group, None)
                deleted = 1
            self.ledger.created_groups.discard(group)
        except MulticastProxyError:
            self.ledger.created_groups.discard(group)  # gone already
        return deleted

    # --- receiver ----------------------------------------------------------

    def apply_receiver(
        self, wanted: EntryMap, definitions: Mapping[IPAddress, GroupDefinition]
    ) -> list[str]:
        """multic's entries: the agent's own equal to ``wanted`` ((source, port) -> group)."""
        problems: list[str] = []
        ledger = self.ledger
        before = set(ledger.entries)
        left, self.left[RECEIVER] = self.left.get(RECEIVER), None
        with self.open_client() as client, client.requiring_restored():
            round_ = _Counted(client.stats().generation)
            if round_.before is None or round_.before != left:
                self._entries = {e.key: e.group for e in client.entries()}
            current = self._entries
            ledger.entries = {e for e in ledger.entries if current.get(e[:2]) == e[2]}
            for source, port, group in sorted(ledger.entries, key=_entry_order):
                if wanted.get((source, port)) != group:
                    try:
                        client.delete(source, port)
                        round_.changes += 1
                        ledger.entries.discard((source, port, group))
                        del current[(source, port)]
                    except MulticastProxyError as error:
                        problems.append(f"multic entry {host_port(source, port)}: {error}")
            for (source, port), group in sorted(wanted.items(), key=lambda i: _entry_order(i[0])):
                have = current.get((source, port))
                if have == group:
                    continue
                if have is not None:
                    problems.append(
                        f"multic entry {host_port(source, port)} is static and restores to {have}, "
                        f"not to group {group}: left as it is"
                    )
                    continue
                try:
                    added = client.add(source, port, group, broadcast=definitions[group].broadcast)
                    # a race with an operator's add makes it UNCHANGED or MOVED (one change)
                    round_.changes += added.outcome is not AddOutcome.UNCHANGED
                    current[(source, port)] = group
                    ledger.entries.add((source, port, group))
                except MulticastProxyError as error:
                    problems.append(f"multic entry {host_port(source, port)} -> {group}: {error}")
            self.left[RECEIVER] = round_.left(client.stats().generation)
        ledger.dirty |= ledger.entries != before
        if ledger.dirty:
            ledger.save()
        return problems


def _entry_order(key: tuple) -> tuple:
    return (ip_order(key[0]), key[1])
