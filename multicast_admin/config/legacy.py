"""The old implementation's files (/usr/local/etc/multi_{server,client}_*_config), read once.

A restore that finds none of our file reads the old startup file (or the old
running file, if no stop ever renamed it); the kernel state it produces is
then saved in our format.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path

from ..addresses import MULTICAST
from .schema import (
    ClientConfig,
    EntryConfig,
    GroupConfig,
    Invalid,
    ServerConfig,
    json_list,
    json_object,
    port,
)
from .schema import address as any_address


def address(value: object, what: str) -> IPv4Address:
    """The old implementation knew IPv4 only: an IPv6 address in its file is refused."""
    found = any_address(value, what)
    if not isinstance(found, IPv4Address):
        raise Invalid(f"{what} {found} is IPv6: the old implementation's files are IPv4 only")
    return found


@dataclass(frozen=True)
class Imported:
    """A configuration read from the old implementation's file, with what was left out."""

    config: ServerConfig | ClientConfig
    path: Path
    skipped: tuple[str, ...] = ()


def legacy_paths(directory: Path, name: str) -> list[Path]:
    """The old startup file, then the old running file of ``name`` (multi_server...)."""
    return [directory / f"{name}_startup_config", directory / f"{name}_running_config"]


def server_config_from_legacy(data: object) -> tuple[ServerConfig, list[str]]:
    """The old ``{"multi_group_array": [{"group_ip", "member_array"}]}`` format.

    As the old CLI did, multicast members are skipped (with a note), groups
    that are not multicast become broadcast groups, and a group listed
    twice (an old generator bug) gets the union of its member lists.
    """
    top = json_object(data)
    skipped: list[str] = []
    merged: dict[IPv4Address, list[IPv4Address]] = {}
    for i, item in enumerate(json_list(top, "multi_group_array", "")):
        if not isinstance(item, dict):
            raise Invalid(f"multi_group_array[{i}] must be an object")
        group = address(item.get("group_ip"), f"multi_group_array[{i}].group_ip")
        members = merged.setdefault(group, [])
        for j, raw in enumerate(json_list(item, "member_array", f"multi_group_array[{i}].")):
            member = address(raw, f"multi_group_array[{i}].member_array[{j}]")
            if member in MULTICAST:
                skipped.append(f"group {group}: member {member} is a multicast address")
            elif member not in members:
                members.append(member)
    groups = tuple(
        GroupConfig(group, tuple(members), broadcast=group not in MULTICAST)
        for group, members in merged.items()
    )
    return ServerConfig(groups), skipped


def client_config_from_legacy(data: object) -> tuple[ClientConfig, list[str]]:
    """The old ``{"multi_server_info_array": [{"server_ip", "group_ip", "client_port"}]}``."""
    top = json_object(data)
    entries: dict[tuple[IPv4Address, int], EntryConfig] = {}
    for i, item in enumerate(json_list(top, "multi_server_info_array", "")):
        where = f"multi_server_info_array[{i}]."
        if not isinstance(item, dict):
            raise Invalid(f"multi_server_info_array[{i}] must be an object")
        entry = EntryConfig(
            server=address(item.get("server_ip"), f"{where}server_ip"),
            port=port(item.get("client_port"), f"{where}client_port"),
            group=address(item.get("group_ip"), f"{where}group_ip"),
        )
        entries[(entry.server, entry.port)] = entry  # the old kernel kept the last one
    return ClientConfig(tuple(entries.values())), []
