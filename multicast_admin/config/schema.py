"""The state file format (``version`` 2) and its values.

::

    {"format": "multicast-proxy/multis", "version": 2,
     "groups": [{"group": "239.1.1.1", "broadcast": false, "vrrp": false,
                 "members": ["10.0.0.1", "10.0.0.2"]},
                {"group": "ff15::1:5", "broadcast": false, "vrrp": false,
                 "members": ["2001:db8::11"]}]}

    {"format": "multicast-proxy/multic", "version": 2,
     "entries": [{"server": "10.0.0.1", "port": 1234, "group": "239.1.1.1"}]}

Version 2 added IPv6 addresses (issue 11); version 1 files (IPv4 only) are
still read, and the next save writes them as version 2.

Each configuration says what it holds in words (:meth:`summary`, one line
per group or entry in :meth:`lines`), which the service prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from ..addresses import IPAddress, host_port, parse_ip
from ..errors import MulticastProxyError

FORMAT_VERSION = 2
#: the versions this tool reads: 1 (IPv4 only) and 2 (IPv4 and IPv6)
READ_VERSIONS = (1, 2)


class Invalid(Exception):
    """A problem in a file's content, said in a few words."""


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count} {word if count == 1 else words or word + 's'}"


@dataclass(frozen=True)
class GroupConfig:
    group: IPAddress
    members: tuple[IPAddress, ...] = ()
    broadcast: bool = False
    vrrp: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "group": str(self.group),
            "broadcast": self.broadcast,
            "vrrp": self.vrrp,
            "members": [str(m) for m in self.members],
        }

    def label(self) -> str:
        return f"group {self.group}"

    def addresses(self) -> tuple[IPAddress, ...]:
        return (self.group, *self.members)

    def line(self) -> str:
        options = [name for name, on in (("broadcast", self.broadcast), ("vrrp", self.vrrp)) if on]
        suffix = f" ({', '.join(options)})" if options else ""
        members = ", ".join(str(m) for m in self.members) or "no member"
        return f"group {self.group}{suffix}: {members}"


@dataclass(frozen=True)
class EntryConfig:
    server: IPAddress
    port: int
    group: IPAddress

    @property
    def broadcast(self) -> bool:
        return not self.group.is_multicast

    def to_json(self) -> dict[str, Any]:
        return {"server": str(self.server), "port": self.port, "group": str(self.group)}

    def label(self) -> str:
        return f"entry {host_port(self.server, self.port)}"

    def addresses(self) -> tuple[IPAddress, ...]:
        return (self.server, self.group)

    def line(self) -> str:
        return f"entry {self.server} port {self.port or 'any'} -> group {self.group}"


S = TypeVar("S", bound="StateConfig")


class StateConfig:
    """What both configurations share: a role, a list of items under a key."""

    ROLE: ClassVar[str]
    LEGACY: ClassVar[str]
    KEY: ClassVar[str]

    @property
    def items(self) -> tuple[Any, ...]:
        return getattr(self, self.KEY)

    def to_json(self) -> dict[str, Any]:
        return {**header(self.ROLE), self.KEY: [i.to_json() for i in self.items]}

    def lines(self) -> list[str]:
        return [i.line() for i in self.items]

    @classmethod
    def from_json(cls: type[S], data: object) -> S:
        """Our file's content; raises Invalid."""
        top = check_header(data, cls.ROLE)
        items = []
        for i, item in enumerate(json_list(top, cls.KEY, "")):
            if not isinstance(item, dict):
                raise Invalid(f"{cls.KEY}[{i}] must be an object")
            items.append(cls.item_from_json(item, f"{cls.KEY}[{i}]."))
            if top["version"] == 1 and any(a.version == 6 for a in items[-1].addresses()):
                raise Invalid(f"{cls.KEY}[{i}]: an IPv6 address in a version 1 file")
        return cls(tuple(items))  # type: ignore[call-arg]

    @staticmethod
    def item_from_json(item: dict, where: str) -> object:
        raise NotImplementedError


@dataclass(frozen=True)
class ServerConfig(StateConfig):
    groups: tuple[GroupConfig, ...] = ()

    ROLE = "multis"
    LEGACY = "multi_server"
    KEY = "groups"

    def summary(self) -> str:
        members = sum(len(g.members) for g in self.groups)
        return f"{plural(len(self.groups), 'group')}, {plural(members, 'member')}"

    @staticmethod
    def item_from_json(item: dict, where: str) -> GroupConfig:
        flags = {}
        for key in ("broadcast", "vrrp"):
            flags[key] = item.get(key, False)
            if not isinstance(flags[key], bool):
                raise Invalid(f"{where}{key} must be true or false")
        members = json_list(item, "members", where)
        return GroupConfig(
            group=address(item.get("group"), f"{where}group"),
            members=tuple(address(m, f"{where}members[{j}]") for j, m in enumerate(members)),
            **flags,
        )


@dataclass(frozen=True)
class ClientConfig(StateConfig):
    entries: tuple[EntryConfig, ...] = ()

    ROLE = "multic"
    LEGACY = "multi_client"
    KEY = "entries"

    def summary(self) -> str:
        return plural(len(self.entries), "entry", "entries")

    @staticmethod
    def item_from_json(item: dict, where: str) -> EntryConfig:
        return EntryConfig(
            server=address(item.get("server"), f"{where}server"),
            port=port(item.get("port"), f"{where}port"),
            group=address(item.get("group"), f"{where}group"),
        )


def header(role: str) -> dict[str, Any]:
    return {"format": f"multicast-proxy/{role}", "version": FORMAT_VERSION}


def check_header(data: object, role: str) -> dict:
    top = json_object(data)
    if top.get("format") != f"multicast-proxy/{role}":
        raise Invalid(f'"format" must be "multicast-proxy/{role}", not {top.get("format")!r}')
    version = top.get("version")
    if isinstance(version, bool) or version not in READ_VERSIONS:
        raise Invalid(
            f'"version" {version!r} is not supported'
            f" (this tool reads 1 and 2, writes {FORMAT_VERSION})"
        )
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


def address(value: object, what: str) -> IPAddress:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be an address string, not {value!r}")
    try:
        return parse_ip(value, what)
    except MulticastProxyError as error:
        raise Invalid(str(error)) from None


def port(value: object, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise Invalid(f"{what} must be a port 0-65535, not {value!r}")
    return value
