"""Group definitions of a domain, and the rule that keeps receivers unambiguous.

A receiver maps (source, UDP port) to a group, and every sender is a source
of every defined group.  So two groups with the same port would need two
entries with the same key on every receiver: the copies could not be told
apart.  The rule, checked against the whole domain in one transaction:

- each group's port is used by no other group of the domain;
- port 0 (any port, and VRRP) matches every port, so a group with port 0
  must be the only group of its domain.

Groups are IPv4 (224.0.0.0/4, or a broadcast address) or IPv6 (ff00::/8,
scope above interface-local); the rule counts both families together: a
port is one group's in the whole domain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any

from ..addresses import IPAddress, check_group, parse_ip, parse_port
from ..errors import AlreadyExists, InvalidArgument, NotFound
from .store import Snapshot, Store, b64


def ip_order(address: IPAddress) -> tuple[int, int]:
    """Addresses of both families in one order: IPv4 first (sorted() refuses to
    compare an IPv4Address with an IPv6Address)."""
    return (address.version, int(address))


@dataclass(frozen=True)
class GroupDefinition:
    group: IPAddress
    port: int
    broadcast: bool = False
    vrrp: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "group": str(self.group),
            "port": self.port,
            "broadcast": self.broadcast,
            "vrrp": self.vrrp,
        }

    def value(self) -> str:
        return json.dumps({"port": self.port, "broadcast": self.broadcast, "vrrp": self.vrrp})

    @classmethod
    def from_value(cls, group: str, value: str) -> GroupDefinition:
        data = json.loads(value)
        return cls(
            ip_address(group), int(data["port"]), bool(data["broadcast"]), bool(data["vrrp"])
        )


def check_definition(
    group: str, port: int | str, *, broadcast: bool = False, vrrp: bool = False
) -> GroupDefinition:
    address = parse_ip(group, "group")
    check_group(address, broadcast=broadcast)
    return GroupDefinition(address, parse_port(port), broadcast, vrrp)


def conflict(new: GroupDefinition, others: list[GroupDefinition]) -> str | None:
    """Why ``new`` cannot be defined beside ``others``, or None."""
    for other in others:
        if other.group == new.group:
            continue
        if other.port == new.port:
            return (
                f"group {new.group}: port {new.port} is already group {other.group}'s; "
                "receivers map (source, port) to one group: give another port"
            )
        if 0 in (new.port, other.port):
            zero = new.group if new.port == 0 else other.group
            return (
                f"group {new.group}: group {zero} has port 0 (any port), which matches "
                f"every port: it must be the only group of the domain"
            )
    return None


def definitions(snapshot: Snapshot, store: Store) -> dict[IPAddress, GroupDefinition]:
    """The groups defined in a snapshot of the domain, by address."""
    found = {}
    for key, entry in snapshot.entries.items():
        parts = store.layout.split(key)
        if len(parts) == 2 and parts[0] == "groups":
            with_value = GroupDefinition.from_value(parts[1], entry.value)
            found[with_value.group] = with_value
    return dict(sorted(found.items(), key=lambda item: ip_order(item[0])))


def _version_compare(store: Store, snapshot: Snapshot) -> dict:
    key = store.layout.groups_version
    seen = snapshot.entries.get(key)
    return {
        "key": b64(key),
        "result": "EQUAL",
        "target": "MOD",
        "mod_revision": seen.mod_revision if seen else 0,
    }


def define(store: Store, new: GroupDefinition) -> bool:
    """Define ``new``; False when it was already defined exactly so.

    Refuses another definition of the same group, and any breach of the rule
    above; the check and the write are one transaction (retried when another
    definition changed in between), so two operators cannot break the rule.
    """
    while True:
        snapshot = store.snapshot()
        current = definitions(snapshot, store)
        existing = current.get(new.group)
        if existing == new:
            return False
        if existing is not None:
            raise AlreadyExists(
                f"group {new.group} is already defined with port {existing.port}"
                f"{' broadcast' if existing.broadcast else ''}{' vrrp' if existing.vrrp else ''}"
                ": delete it first to change it"
            )
        why = conflict(new, list(current.values()))
        if why:
            raise InvalidArgument(why)
        key = b64(store.layout.group(str(new.group)))
        done = store.txn(
            [_version_compare(store, snapshot)],
            [
                {"request_put": {"key": key, "value": b64(new.value())}},
                {"request_put": {"key": b64(store.layout.groups_version), "value": b64("")}},
            ],
        )
        if done:
            return True


def undefine(store: Store, group: str) -> None:
    """Delete a group's definition; its agents remove what they configured for it."""
    address = parse_ip(group, "group")
    while True:
        snapshot = store.snapshot()
        if address not in definitions(snapshot, store):
            raise NotFound(f"group {address} is not defined in domain {store.layout.domain}")
        done = store.txn(
            [_version_compare(store, snapshot)],
            [
                {"request_delete_range": {"key": b64(store.layout.group(str(address)))}},
                {"request_put": {"key": b64(store.layout.groups_version), "value": b64("")}},
            ],
        )
        if done:
            return
