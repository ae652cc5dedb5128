"""The state file format (``version`` 1) and its values.

::

    {"format": "multicast-proxy/multis", "version": 1,
     "groups": [{"group": "239.1.1.1", "broadcast": false, "vrrp": false,
                 "members": ["10.0.0.1", "10.0.0.2"]}]}

    {"format": "multicast-proxy/multic", "version": 1,
     "entries": [{"server": "10.0.0.1", "port": 1234, "group": "239.1.1.1"}]}

Each configuration says what it holds in words (:meth:`summary`, one line
per group or entry in :meth:`lines`), which the service prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import Any

from ..addresses import MULTICAST, parse_ipv4
from ..errors import MulticastProxyError

FORMAT_VERSION = 1


class Invalid(Exception):
    """A problem in a file's content, said in a few words."""


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


@dataclass(frozen=True)
class GroupConfig:
    group: IPv4Address
    members: tuple[IPv4Address, ...] = ()
    broadcast: bool = False
    vrrp: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "group": str(self.group),
            "broadcast": self.broadcast,
            "vrrp": self.vrrp,
            "members": [str(m) for m in self.members],
        }

    def line(self) -> str:
        options = [name for name, on in (("broadcast", self.broadcast), ("vrrp", self.vrrp)) if on]
        suffix = f" ({', '.join(options)})" if options else ""
        members = ", ".join(str(m) for m in self.members) or "no member"
        return f"group {self.group}{suffix}: {members}"


@dataclass(frozen=True)
class EntryConfig:
    server: IPv4Address
    port: int
    group: IPv4Address

    @property
    def broadcast(self) -> bool:
        return self.group not in MULTICAST

    def to_json(self) -> dict[str, Any]:
        return {"server": str(self.server), "port": self.port, "group": str(self.group)}

    def line(self) -> str:
        return f"entry {self.server} port {self.port or 'any'} -> group {self.group}"


@dataclass(frozen=True)
class ServerConfig:
    groups: tuple[GroupConfig, ...] = ()

    ROLE = "multis"

    @property
    def items(self) -> tuple[GroupConfig, ...]:
        return self.groups

    def to_json(self) -> dict[str, Any]:
        return {**header(self.ROLE), "groups": [g.to_json() for g in self.groups]}

    def summary(self) -> str:
        members = sum(len(g.members) for g in self.groups)
        return f"{plural(len(self.groups), 'group')}, {plural(members, 'member')}"

    def lines(self) -> list[str]:
        return [g.line() for g in self.groups]

    @classmethod
    def from_json(cls, data: object) -> ServerConfig:
        """Our multis.json content; raises Invalid."""
        top = check_header(data, cls.ROLE)
        groups = []
        for i, item in enumerate(json_list(top, "groups", "")):
            where = f"groups[{i}]."
            if not isinstance(item, dict):
                raise Invalid(f"groups[{i}] must be an object")
            flags = {}
            for key in ("broadcast", "vrrp"):
                flags[key] = item.get(key, False)
                if not isinstance(flags[key], bool):
                    raise Invalid(f"{where}{key} must be true or false")
            members = json_list(item, "members", where)
            groups.append(
                GroupConfig(
                    group=address(item.get("group"), f"{where}group"),
                    members=tuple(
                        address(m, f"{where}members[{j}]") for j, m in enumerate(members)
                    ),
                    **flags,
                )
            )
        return cls(tuple(groups))


@dataclass(frozen=True)
class ClientConfig:
    entries: tuple[EntryConfig, ...] = ()

    ROLE = "multic"

    @property
    def items(self) -> tuple[EntryConfig, ...]:
        return self.entries

    def to_json(self) -> dict[str, Any]:
        return {**header(self.ROLE), "entries": [e.to_json() for e in self.entries]}

    def summary(self) -> str:
        return plural(len(self.entries), "entry", "entries")

    def lines(self) -> list[str]:
        return [e.line() for e in self.entries]

    @classmethod
    def from_json(cls, data: object) -> ClientConfig:
        """Our multic.json content; raises Invalid."""
        top = check_header(data, cls.ROLE)
        entries = []
        for i, item in enumerate(json_list(top, "entries", "")):
            where = f"entries[{i}]."
            if not isinstance(item, dict):
                raise Invalid(f"entries[{i}] must be an object")
            entries.append(
                EntryConfig(
                    server=address(item.get("server"), f"{where}server"),
                    port=port(item.get("port"), f"{where}port"),
                    group=address(item.get("group"), f"{where}group"),
                )
            )
        return cls(tuple(entries))


def header(role: str) -> dict[str, Any]:
    return {"format": f"multicast-proxy/{role}", "version": FORMAT_VERSION}


def check_header(data: object, role: str) -> dict:
    top = json_object(data)
    if top.get("format") != f"multicast-proxy/{role}":
        raise Invalid(f'"format" must be "multicast-proxy/{role}", not {top.get("format")!r}')
    version = top.get("version")
    if version != FORMAT_VERSION:
        raise Invalid(f'"version" {version!r} is not supported (this tool writes {FORMAT_VERSION})')
    return top


def json_object(data: object) -> dict:
    if not isinstance(data, dict):
        raise Invalid("the top level must be a JSON object")
    return data


def json_list(data: dict, key: str, where: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise Invalid(f"{where}{key} must be a list")
    return value


def address(value: object, what: str) -> IPv4Address:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be an address string, not {value!r}")
    try:
        return parse_ipv4(value, what)
    except MulticastProxyError as error:
        raise Invalid(str(error)) from None


def port(value: object, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise Invalid(f"{what} must be a port 0-65535, not {value!r}")
    return value
