"""A domain as its keys say: definitions, sources, members and agents.

Built from a snapshot and kept current by the watch's events; the agent's
desired kernel state and ``multicast-proxy status`` are both read from it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from ..addresses import IPAddress
from .groups import GroupDefinition, ip_order
from .store import Event, Layout, Snapshot


@dataclass
class View:
    layout: Layout
    values: dict[str, str] = field(default_factory=dict)
    leases: dict[str, int] = field(default_factory=dict)
    revision: int = 0

    @classmethod
    def of(cls, layout: Layout, snapshot: Snapshot) -> View:
        view = cls(layout, revision=snapshot.revision)
        for key, entry in snapshot.entries.items():
            view.values[key] = entry.value
            view.leases[key] = entry.lease
        return view

    def apply(self, event: Event) -> None:
        if event.value is None:
            self.values.pop(event.key, None)
            self.leases.pop(event.key, None)
        else:
            self.values[event.key] = event.value
        self.revision = max(self.revision, event.revision)

    def _parts(self, kind: str, length: int) -> list[tuple[tuple[str, ...], str]]:
        found = []
        for key, value in self.values.items():
            parts = self.layout.split(key)
            if len(parts) == length and parts[0] == kind:
                found.append((parts, value))
        return found

    def definitions(self) -> dict[IPAddress, GroupDefinition]:
        found = {}
        for parts, value in self._parts("groups", 2):
            try:
                spec = GroupDefinition.from_value(parts[1], value)
            except (ValueError, KeyError, TypeError):
                continue  # not ours to judge: `group list` shows only valid ones
            found[spec.group] = spec
        return dict(sorted(found.items(), key=lambda item: ip_order(item[0])))

    def _by_group(self, kind: str) -> dict[IPAddress, set[IPAddress]]:
        """Every (group, host) key of ``kind``, of either family; a host of
        the other family than its group's is kept: the agent reports it."""
        found: dict[IPAddress, set[IPAddress]] = {}
        for parts, _ in self._parts(kind, 3):
            try:
                group, host = ip_address(parts[1]), ip_address(parts[2])
            except ValueError:
                continue
            found.setdefault(group, set()).add(host)
        return found

    def members(self) -> dict[IPAddress, set[IPAddress]]:
        return self._by_group("members")

    def sources(self) -> dict[IPAddress, set[IPAddress]]:
        return self._by_group("sources")

    def agents(self) -> dict[str, dict[str, Any]]:
        """The live agents' status keys (under their leases), by address."""
        return self._records("agents")

    def hosts(self) -> dict[str, dict[str, Any]]:
        """Every host's record (no lease: kept after its lease expired), by address."""
        return self._records("hosts")

    def _records(self, kind: str) -> dict[str, dict[str, Any]]:
        found = {}
        for parts, value in self._parts(kind, 2):
            try:
                found[parts[1]] = json.loads(value)
            except ValueError:
                found[parts[1]] = {}
        return dict(sorted(found.items()))
