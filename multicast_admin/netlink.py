"""Generic netlink bindings for the "multis" and "multic" families (pyroute2).

Three layers, each small:

* message classes (``multismsg``, ``multicmsg``): declarative pyroute2
  ``genlmsg``/``nla`` classes whose attribute tables are built from the
  names and values of :mod:`multicast_admin.uapi`;
* a :class:`Transport` that sends one request and returns the replies: the
  real one (:class:`GenlTransport`) wraps pyroute2's ``GenericNetlinkSocket``,
  tests use a double;
* :class:`MultisNetlink` and :class:`MulticNetlink`: one method per kernel
  command, taking and returning the values of :mod:`multicast_admin.models`,
  turning kernel refusals into :mod:`multicast_admin.errors` (with the
  kernel's extack text) and retrying interrupted dumps.
"""

from __future__ import annotations

import contextlib
import errno
import os
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Protocol, TypeVar

from pyroute2.netlink import (
    NLA_F_NESTED,
    NLM_F_ACK,
    NLM_F_ACK_TLVS,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_DONE,
    genlmsg,
    nla,
)
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.generic import GenericNetlinkSocket

from . import memberarray, uapi
from .addresses import IPAddress, host_port
from .errors import (
    InvalidArgument,
    KernelError,
    ModuleNotLoaded,
    MulticastProxyError,
    NotFound,
    from_errno,
)
from .models import (
    ClientCounters,
    ClientEntry,
    ClientStatus,
    Group,
    Member,
    ServerCounters,
    ServerStatus,
)

#: How often a dump the kernel marks NLM_F_DUMP_INTR (the table changed while
#: it was being read) is started again before giving up.
DUMP_ATTEMPTS = 5


# Constants that share an attribute prefix but are not members of its enum.
_NOT_ATTRIBUTES = frozenset({"MULTIS_A_MEMBER"})


def _nla_map(prefix: str, types: dict[str, str]) -> tuple[tuple[int, str, str], ...]:
    """An explicit-key pyroute2 nla_map for every uapi constant ``<prefix><NAME>``.

    ``types`` gives the pyroute2 type of each attribute by its short name;
    UNSPEC and PAD are ``none``.  An attribute of the header without a type
    here is an error at import time, so the header cannot grow unnoticed.
    """
    table = []
    for name, value in vars(uapi).items():
        if not name.startswith(prefix) or name == prefix + "MAX" or name in _NOT_ATTRIBUTES:
            continue
        short = name[len(prefix) :]
        kind = "none" if short in ("UNSPEC", "PAD") else types.pop(short)
        table.append((value, name, kind))
    if types:
        raise ValueError(f"not in uapi: {prefix}{sorted(types)}")
    if len({value for value, _, _ in table}) != len(table):
        raise ValueError(f"two {prefix}* attributes share a value")
    return tuple(sorted(table))


# --- messages: multis --------------------------------------------------------


class multis_stats(nla):
    """enum multis_stats_attr: one counter space."""

    nla_flags = NLA_F_NESTED
    prefix = "MULTIS_STATS_A_"
    nla_map = _nla_map(
        prefix,
        {
            "DATAGRAMS": "uint64",
            "PACKETS": "uint64",
            "BYTES": "uint64",
            "DROP_NO_MEMBER": "uint64",
            "DROP_NOMEM": "uint64",
            "DROP_NO_ROUTE": "uint64",
            "DROP_XMIT": "uint64",
            "DROP_TOO_BIG": "uint64",
        },
    )


class multismsg(genlmsg):
    """A message of the multis family: enum multis_attr."""

    prefix = "MULTIS_A_"
    nla_map = _nla_map(
        prefix,
        {
            "GROUP_ADDR": "ip4addr",
            "GROUP_FLAGS": "uint32",
            # bytes, built and parsed by multicast_admin.memberarray
            "MEMBERS": "cdata|nested",
            "MEMBER_COUNT": "uint32",
            "STATS": "stats",
            "GROUP_COUNT": "uint32",
            "MAX_GROUPS": "uint32",
            "MAX_MEMBERS": "uint32",
            "MARKER_TOS": "uint8",
            "RESTORED": "uint8",
            "REQUIRE_RESTORED": "flag",
            "GROUP_ADDR6": "ip6addr",
            "GENERATION": "uint64",
        },
    )
    stats = multis_stats


# --- messages: multic --------------------------------------------------------


class multic_stats(nla):
    """enum multic_stats_attr: one counter space."""

    nla_flags = NLA_F_NESTED
    prefix = "MULTIC_STATS_A_"
    nla_map = _nla_map(
        prefix,
        {
            "PACKETS": "uint64",
            "BYTES": "uint64",
            "NOT_LOCAL": "uint64",
            "DROP_NOMEM": "uint64",
            "NO_ENTRY": "uint64",
            "NOT_UDP": "uint64",
        },
    )


class multicmsg(genlmsg):
    """A message of the multic family: enum multic_attr."""

    prefix = "MULTIC_A_"
    nla_map = _nla_map(
        prefix,
        {
            "SERVER_ADDR": "ip4addr",
            "PORT": "uint16",
            "GROUP_ADDR": "ip4addr",
            "STATS": "stats",
            "ENTRY_COUNT": "uint32",
            "GROUP_COUNT": "uint32",
            "MAX_GROUPS": "uint32",
            "MAX_ENTRIES": "uint32",
            "MARKER_TOS": "uint8",
            "ENTRY_FLAGS": "uint32",
            "RESTORED": "uint8",
            "REQUIRE_RESTORED": "flag",
            "SERVER_ADDR6": "ip6addr",
            "GROUP_ADDR6": "ip6addr",
            "GENERATION": "uint64",
        },
    )
    stats = multic_stats


def build_message(
    msg_class: type[genlmsg], cmd: int, version: int, attrs: Sequence[tuple[str, Any]] = ()
) -> genlmsg:
    """A request message: ``attrs`` are (uapi attribute name, value) pairs."""
    msg = msg_class()
    msg["cmd"] = cmd
    msg["version"] = version
    msg["reserved"] = 0
    msg["attrs"] = [[name, value] for name, value in attrs]
    return msg


#: The most members one JOIN or QUIT carries, by IP version.  A netlink
#: attribute is at most 64 KiB and each member takes 12 bytes (IPv4) or 24
#: (IPv6) of MULTIS_A_MEMBERS; past that the length field would wrap.  A
#: request stays all or nothing, so a longer list is refused rather than
#: split behind the operator's back.
MAX_MEMBERS_PER_REQUEST = 5000
MAX_MEMBERS6_PER_REQUEST = 2700


def address_attr(name: str, address: IPAddress) -> tuple[str, str]:
    """The (attribute, value) naming ``address``: ``name`` for IPv4, ``name`` + 6 for IPv6."""
    return (name + "6" if address.version == 6 else name, str(address))


def address_of(msg: Any, name: str) -> IPAddress:
    """The address a reply carries in ``name`` (IPv4) or ``name`` + 6 (IPv6)."""
    value = msg.get_attr(name)
    if value is not None:
        return IPv4Address(value)
    value = msg.get_attr(name + "6")
    if value is None:
        raise KernelError(f"a reply without {name} or {name}6")
    return IPv6Address(value)


def members_value(addresses: Sequence[IPAddress]) -> bytes:
    """The value of a MULTIS_A_MEMBERS attribute listing ``addresses``."""
    most = MAX_MEMBERS_PER_REQUEST
    if addresses and addresses[0].version == 6:
        most = MAX_MEMBERS6_PER_REQUEST
    if len(addresses) > most:
        raise InvalidArgument(
            f"{len(addresses)} members in one request: give at most {most}"
            " per command and run it again for the rest"
        )
    return memberarray.encode(addresses)


# --- transport ---------------------------------------------------------------


@dataclass
class Reply:
    """The messages a request got back, and whether a dump was interrupted."""

    messages: list[Any] = field(default_factory=list)
    interrupted: bool = False


class Transport(Protocol):
    """Sends one request of a bound family and collects its replies.

    Kernel refusals are raised as pyroute2 ``NetlinkError(code, text)``
    where ``text`` is the extack message if the kernel gave one.
    """

    family: str

    def request(self, msg: genlmsg, flags: int) -> Reply: ...

    def close(self) -> None: ...


class _QuietGenlSocket(GenericNetlinkSocket):
    # bind() logs "protocol not found" at error level; that case becomes
    # ModuleNotLoaded here, which says it better.  pyroute2 < 0.9 reads
    # this attribute here, 0.9 on its asyncio core (below).
    module_err_level = "debug"


try:
    from pyroute2.netlink.generic import AsyncGenericNetlinkSocket
except ImportError:  # pyroute2 < 0.9 has no asyncio core
    pass
else:

    class _QuietAsyncGenlSocket(AsyncGenericNetlinkSocket):
        module_err_level = "debug"

    _QuietGenlSocket.async_class = _QuietAsyncGenlSocket


def extack_of(error: NetlinkError) -> str | None:
    """The kernel's extack text carried by a pyroute2 NetlinkError, if any.

    pyroute2 (0.7 to 0.9) raises ``NetlinkError(code, NLMSGERR_ATTR_MSG)``
    and, when the kernel sent no message, fills in ``os.strerror(code)``.
    """
    args = error.args
    text = args[1] if len(args) > 1 else None
    if not isinstance(text, str) or not text or text == os.strerror(error.code):
        return None
    return text


class GenlTransport:
    """A pyroute2 generic netlink socket bound to one family."""

    def __init__(self, family: str, msg_class: type[genlmsg]) -> None:
        self.family = family
        try:
            self._socket = _QuietGenlSocket(ext_ack=True)
        except OSError as error:
            raise KernelError(
                f"cannot open a generic netlink socket: {error.strerror}", errno=error.errno
            ) from None
        try:
            self._socket.bind(family, msg_class)
        except NetlinkError as error:
            self._socket.close()
            if error.code == errno.ENOENT:
                raise ModuleNotLoaded(family) from None
            raise from_errno(
                error.code, extack_of(error), f"{family}: resolving the family"
            ) from None
        except BaseException:
            self._socket.close()
            raise

    def request(self, msg: genlmsg, flags: int) -> Reply:
        reply = Reply()
        done_errno = [0]

        def watch(message: Any) -> bool:
            # Sees every message of the answer, NLMSG_DONE included (pyroute2
            # swallows DONE): note an interrupted dump and an error carried
            # by a DONE without extack, which pyroute2 would not raise.
            header = message["header"]
            if header.get("flags", 0) & NLM_F_DUMP_INTR:
                reply.interrupted = True
            if header.get("type") == NLMSG_DONE and not header.get("flags", 0) & NLM_F_ACK_TLVS:
                data, offset = message.data, message.offset
                if len(data) >= offset + 20:
                    done_errno[0] = struct.unpack_from("i", data, offset + 16)[0]
            return False

        reply.messages = list(
            self._socket.nlm_request(
                msg, msg_type=self._socket.prid, msg_flags=flags, callback=watch
            )
        )
        if done_errno[0] < 0:
            raise NetlinkError(-done_errno[0])
        return reply

    def close(self) -> None:
        self._socket.close()


# --- families ----------------------------------------------------------------

DO = NLM_F_REQUEST | NLM_F_ACK
GET = NLM_F_REQUEST
DUMP = NLM_F_REQUEST | NLM_F_DUMP


_F = TypeVar("_F", bound="_Family")


class _Family:
    """What both families share: requests, error mapping, dump retries."""

    name: str
    msg_class: type[genlmsg]
    version: int
    prefix: str
    set_restored_cmd: int

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.require_restored = False
        """Send every change with <prefix>REQUIRE_RESTORED (:meth:`requiring_restored`)."""

    @contextlib.contextmanager
    def requiring_restored(self) -> Iterator[None]:
        """Changes made inside are refused (NotRestored) unless the namespace is restored."""
        before, self.require_restored = self.require_restored, True
        try:
            yield
        finally:
            self.require_restored = before

    def set_restored(self) -> None:
        """Mark the namespace restored from the saved state."""
        self._do(self.set_restored_cmd, [], "marking the saved state restored")

    @classmethod
    def open(cls: type[_F]) -> _F:
        """Bind a real socket; raises ModuleNotLoaded if the module is not loaded."""
        return cls(GenlTransport(cls.name, cls.msg_class))

    def close(self) -> None:
        self.transport.close()

    def __enter__(self: _F) -> _F:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(
        self,
        cmd: int,
        attrs: Sequence[tuple[str, Any]],
        flags: int,
        doing: str,
        missing: str | None = None,
    ) -> list[Any]:
        """Send a request; ``missing`` is the message for ENOENT without extack."""
        msg = build_message(self.msg_class, cmd, self.version, attrs)
        try:
            reply = self.transport.request(msg, flags)
        except NetlinkError as error:
            extack = extack_of(error)
            if missing and error.code == errno.ENOENT and not extack:
                raise NotFound(missing, errno=error.code) from None
            raise from_errno(error.code, extack, doing) from None
        except MulticastProxyError:
            raise
        except OSError as error:
            raise KernelError(f"{doing}: {error.strerror or error}", errno=error.errno) from None
        if reply.interrupted:
            raise _Interrupted
        return [m for m in reply.messages if m.get("cmd") is not None]

    def _do(
        self,
        cmd: int,
        attrs: Sequence[tuple[str, Any]],
        doing: str,
        flags: int = 0,
        missing: str | None = None,
    ) -> None:
        if self.require_restored:
            attrs = [*attrs, (f"{self.prefix}REQUIRE_RESTORED", True)]
        self._call(cmd, attrs, DO | flags, doing, missing)

    def _get(
        self,
        cmd: int,
        attrs: Sequence[tuple[str, Any]],
        doing: str,
        missing: str | None = None,
    ) -> Any:
        messages = self._call(cmd, attrs, GET, doing, missing)
        if not messages:
            raise KernelError(f"{doing}: the kernel sent no answer")
        return messages[0]

    def _dump(
        self,
        cmd: int,
        attrs: Sequence[tuple[str, Any]],
        doing: str,
        missing: str | None = None,
    ) -> list[Any]:
        for _ in range(DUMP_ATTEMPTS):
            try:
                return self._call(cmd, attrs, DUMP, doing, missing)
            except _Interrupted:
                continue
        raise KernelError(
            f"{doing}: the table kept changing while it was read "
            f"({DUMP_ATTEMPTS} attempts); try again",
            errno=errno.EINTR,
        )


class _Interrupted(Exception):
    """A dump the kernel marked NLM_F_DUMP_INTR."""


def _attr(msg: Any, name: str, default: Any = None) -> Any:
    value = msg.get_attr(name)
    return default if value is None else value


def _counters(nest: Any, prefix: str, names: Iterable[str]) -> dict[str, int]:
    if nest is None:
        return {}
    return {name: int(_attr(nest, prefix + name.upper(), 0)) for name in names}


def server_counters(nest: Any) -> ServerCounters:
    """A multis STATS nest as ServerCounters (absent counters are 0)."""
    names = ServerCounters.__dataclass_fields__.keys()
    return ServerCounters(**_counters(nest, "MULTIS_STATS_A_", names))


def client_counters(nest: Any) -> ClientCounters:
    """A multic STATS nest as ClientCounters (absent counters are 0)."""
    names = ClientCounters.__dataclass_fields__.keys()
    return ClientCounters(**_counters(nest, "MULTIC_STATS_A_", names))


def group_from_message(msg: Any) -> Group:
    flags = int(_attr(msg, "MULTIS_A_GROUP_FLAGS", 0))
    return Group(
        address=address_of(msg, "MULTIS_A_GROUP_ADDR"),
        broadcast=bool(flags & uapi.MULTIS_GROUP_F_BROADCAST),
        vrrp=bool(flags & uapi.MULTIS_GROUP_F_VRRP),
        member_count=int(_attr(msg, "MULTIS_A_MEMBER_COUNT", 0)),
        stats=server_counters(msg.get_attr("MULTIS_A_STATS")),
    )


def members_from_message(msg: Any) -> list[Member]:
    return memberarray.decode(msg.get_attr("MULTIS_A_MEMBERS"))


def entry_from_message(msg: Any) -> ClientEntry:
    return ClientEntry(
        server=address_of(msg, "MULTIC_A_SERVER_ADDR"),
        port=int(_attr(msg, "MULTIC_A_PORT", 0)),
        group=address_of(msg, "MULTIC_A_GROUP_ADDR"),
        stats=client_counters(msg.get_attr("MULTIC_A_STATS")),
    )


def group_missing(group: IPAddress) -> str:
    return f"group {group} does not exist"


def entry_missing(server: IPAddress, port: int) -> str:
    return f"no entry for {host_port(server, port)}"


class MultisNetlink(_Family):
    """The multis (server) family, one method per command."""

    name = uapi.MULTIS_GENL_NAME
    msg_class = multismsg
    version = uapi.MULTIS_GENL_VERSION
    prefix = "MULTIS_A_"
    set_restored_cmd = uapi.MULTIS_CMD_SET_RESTORED

    def join(
        self,
        group: IPAddress,
        members: Sequence[IPAddress] = (),
        *,
        flags: int | None = None,
    ) -> None:
        """Create ``group`` if needed, then add ``members`` (all or nothing).

        ``flags`` (MULTIS_GROUP_F_*) are the group's options: a new group gets
        them, an existing one must have them (the kernel refuses others with
        EEXIST).  None sends none: a new group is a plain multicast group, an
        existing one keeps its options.
        """
        attrs: list[tuple[str, Any]] = [address_attr("MULTIS_A_GROUP_ADDR", group)]
        if flags is not None:
            attrs.append(("MULTIS_A_GROUP_FLAGS", flags))
        if members:
            attrs.append(("MULTIS_A_MEMBERS", members_value(members)))
        self._do(uapi.MULTIS_CMD_JOIN, attrs, f"group {group}: adding members")

    def quit(self, group: IPAddress, members: Sequence[IPAddress]) -> None:
        """Remove ``members`` from ``group`` (all or nothing)."""
        self._do(
            uapi.MULTIS_CMD_QUIT,
            [
                address_attr("MULTIS_A_GROUP_ADDR", group),
                ("MULTIS_A_MEMBERS", members_value(members)),
            ],
            f"group {group}: removing members",
            missing=f"group {group}: a member given is not in the group",
        )

    def delete_group(self, group: IPAddress) -> None:
        self._do(
            uapi.MULTIS_CMD_DEL_GROUP,
            [address_attr("MULTIS_A_GROUP_ADDR", group)],
            f"group {group}: deleting",
            missing=group_missing(group),
        )

    def clear(self) -> None:
        self._do(uapi.MULTIS_CMD_CLEAR, [], "clearing every group")

    def get_group(self, group: IPAddress) -> Group:
        msg = self._get(
            uapi.MULTIS_CMD_GET_GROUP,
            [address_attr("MULTIS_A_GROUP_ADDR", group)],
            f"group {group}",
            group_missing(group),
        )
        return group_from_message(msg)

    def groups(self) -> list[Group]:
        return [
            group_from_message(m)
            for m in self._dump(uapi.MULTIS_CMD_GET_GROUP, [], "listing groups")
        ]

    def members(self, group: IPAddress) -> list[Member]:
        messages = self._dump(
            uapi.MULTIS_CMD_GET_MEMBERS,
            [address_attr("MULTIS_A_GROUP_ADDR", group)],
            f"group {group}: listing members",
            group_missing(group),
        )
        return [member for msg in messages for member in members_from_message(msg)]

    def stats(self) -> ServerStatus:
        msg = self._get(uapi.MULTIS_CMD_GET_STATS, [], "reading statistics")
        return ServerStatus(
            stats=server_counters(msg.get_attr("MULTIS_A_STATS")),
            group_count=int(_attr(msg, "MULTIS_A_GROUP_COUNT", 0)),
            max_groups=int(_attr(msg, "MULTIS_A_MAX_GROUPS", 0)),
            max_members=int(_attr(msg, "MULTIS_A_MAX_MEMBERS", 0)),
            marker_tos=int(_attr(msg, "MULTIS_A_MARKER_TOS", uapi.MULTICAST_PROXY_MARKER_TOS)),
            restored=bool(_attr(msg, "MULTIS_A_RESTORED", 0)),
            generation=_attr(msg, "MULTIS_A_GENERATION"),  # None: an older module
        )

    def reset_stats(self) -> None:
        self._do(uapi.MULTIS_CMD_RESET_STATS, [], "resetting statistics")


class MulticNetlink(_Family):
    """The multic (client) family, one method per command."""

    name = uapi.MULTIC_GENL_NAME
    msg_class = multicmsg
    version = uapi.MULTIC_GENL_VERSION
    prefix = "MULTIC_A_"
    set_restored_cmd = uapi.MULTIC_CMD_SET_RESTORED

    @staticmethod
    def _key(server: IPAddress, port: int) -> list[tuple[str, Any]]:
        return [address_attr("MULTIC_A_SERVER_ADDR", server), ("MULTIC_A_PORT", port)]

    def add(self, server: IPAddress, port: int, group: IPAddress, *, replace: bool = False) -> None:
        """Map copies from ``server`` to ``port`` back to ``group``; ``replace`` moves a key.

        A group that is not multicast is sent with the broadcast flag, which
        the kernel requires for it: the domain API has checked that it was
        asked for (``--broadcast``).
        """
        flags = 0 if group.is_multicast else uapi.MULTIC_ENTRY_F_BROADCAST
        self._do(
            uapi.MULTIC_CMD_ADD,
            [
                *self._key(server, port),
                address_attr("MULTIC_A_GROUP_ADDR", group),
                ("MULTIC_A_ENTRY_FLAGS", flags),
            ],
            f"entry {host_port(server, port)}: adding",
            NLM_F_REPLACE if replace else 0,
        )

    def delete(self, server: IPAddress, port: int) -> None:
        self._do(
            uapi.MULTIC_CMD_DEL,
            self._key(server, port),
            f"entry {host_port(server, port)}: deleting",
            missing=entry_missing(server, port),
        )

    def clear(self) -> None:
        self._do(uapi.MULTIC_CMD_CLEAR, [], "clearing every entry")

    def get_entry(self, server: IPAddress, port: int) -> ClientEntry:
        msg = self._get(
            uapi.MULTIC_CMD_GET_ENTRY,
            self._key(server, port),
            f"entry {host_port(server, port)}",
            entry_missing(server, port),
        )
        return entry_from_message(msg)

    def entries(self) -> list[ClientEntry]:
        return [
            entry_from_message(m)
            for m in self._dump(uapi.MULTIC_CMD_GET_ENTRY, [], "listing entries")
        ]

    def stats(self) -> ClientStatus:
        msg = self._get(uapi.MULTIC_CMD_GET_STATS, [], "reading statistics")
        return ClientStatus(
            stats=client_counters(msg.get_attr("MULTIC_A_STATS")),
            entry_count=int(_attr(msg, "MULTIC_A_ENTRY_COUNT", 0)),
            group_count=int(_attr(msg, "MULTIC_A_GROUP_COUNT", 0)),
            max_groups=int(_attr(msg, "MULTIC_A_MAX_GROUPS", 0)),
            max_entries=int(_attr(msg, "MULTIC_A_MAX_ENTRIES", 0)),
            marker_tos=int(_attr(msg, "MULTIC_A_MARKER_TOS", uapi.MULTICAST_PROXY_MARKER_TOS)),
            restored=bool(_attr(msg, "MULTIC_A_RESTORED", 0)),
            generation=_attr(msg, "MULTIC_A_GENERATION"),  # None: an older module
        )

    def reset_stats(self) -> None:
        self._do(uapi.MULTIC_CMD_RESET_STATS, [], "resetting statistics")
