"""Test doubles for the socket layer: small in-memory kernels that speak the protocol.

``FakeMultisKernel`` and ``FakeMulticKernel`` implement the
:class:`multicast_admin.netlink.Transport` interface.  They receive the
request message the bindings built, encode it to bytes and decode it the way
the kernel would see it, apply the command with the semantics the uapi header
documents (all or nothing, limits, extack-style refusals), and answer with
real encoded-then-decoded reply messages.  So a test through them exercises
the real message classes, the error mapping and the dump handling; only the
socket is fake.
"""

from __future__ import annotations

import errno
import secrets
import socket
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Any

import pytest
from pyroute2.netlink import (
    NLA_F_NESTED,
    NLM_F_DUMP,
    NLM_F_DUMP_INTR,
    NLM_F_MULTI,
    NLM_F_REPLACE,
    genlmsg,
    nla,
)
from pyroute2.netlink.exceptions import NetlinkError

from multicast_admin import uapi
from multicast_admin.addresses import host_port
from multicast_admin.netlink import Reply, build_message, multicmsg, multis_stats, multismsg

FAMILY_ID = 0x20
MULTICAST = IPv4Network("224.0.0.0/4")
LOOPBACK = IPv4Network("127.0.0.0/8")
ZERO_NETWORK = IPv4Network("0.0.0.0/8")
BCAST = IPv4Address("255.255.255.255")
MULTICAST6 = IPv6Network("ff00::/8")


def order(address: Any) -> tuple[int, int]:
    """The module's order: IPv4 kept IPv4-mapped (::ffff:a.b.c.d) sorts before IPv6 ones."""
    return (address.version, int(address))


def addr_of(msg: Any, name: str) -> Any:
    """The address of ``name`` or ``name``6; both is refused, as the module does."""
    v4, v6 = msg.get_attr(name), msg.get_attr(name + "6")
    if v4 is not None and v6 is not None:
        raise refuse(errno.EINVAL, f"give {name} or {name}6, not both")
    if v4 is not None:
        return IPv4Address(v4)
    return None if v6 is None else IPv6Address(v6)


def addr_attr(name: str, address: Any) -> list:
    return [name + "6" if address.version == 6 else name, str(address)]


def unicast6_problem(address: IPv6Address) -> str | None:
    if address in MULTICAST6:
        return "a multicast address"
    if address == IPv6Address("::1"):
        return "a loopback address"
    if address == IPv6Address("::"):
        return "an unspecified address"
    if address.ipv4_mapped is not None:
        return "an IPv4-mapped address"
    return None


def group6_problem(group: IPv6Address, flags: int) -> str | None:
    if flags:
        return f"group {group}: IPv6 has no broadcast"
    if group not in MULTICAST6:
        return f"group {group} is not multicast (ff00::/8)"
    if group.packed[1] & 0x0F <= 1:
        return f"group {group}: scope {group.packed[1] & 0x0F:x} never leaves the host"
    return None


def family_problem(group: Any, other: Any, what: str) -> str | None:
    if group.version == other.version:
        return None
    return f"group {group}: {what} {other} is IPv{other.version}"


SERVER_STATS = ("DATAGRAMS", "PACKETS", "BYTES", "DROP_NO_MEMBER", "DROP_NOMEM")
SERVER_STATS += ("DROP_NO_ROUTE", "DROP_XMIT", "DROP_TOO_BIG")
MEMBER_STATS = ("PACKETS", "BYTES", "DROP_NOMEM", "DROP_NO_ROUTE", "DROP_XMIT", "DROP_TOO_BIG")
CLIENT_STATS = ("PACKETS", "BYTES", "NOT_LOCAL", "DROP_NOMEM")  # an entry's
CLIENT_NAMESPACE_STATS = (*CLIENT_STATS, "NO_ENTRY", "NOT_UDP")


class kernel_member(nla):  # noqa: N801 (pyroute2 class naming)
    """One MULTIS_A_MEMBER element, as pyroute2's generic classes see it."""

    nla_flags = NLA_F_NESTED
    header_type = uapi.MULTIS_A_MEMBER | NLA_F_NESTED
    nla_map = (
        (uapi.MULTIS_MEMBER_A_UNSPEC, "MULTIS_MEMBER_A_UNSPEC", "none"),
        (uapi.MULTIS_MEMBER_A_ADDR, "MULTIS_MEMBER_A_ADDR", "ip4addr"),
        (uapi.MULTIS_MEMBER_A_STATS, "MULTIS_MEMBER_A_STATS", "stats"),
        (uapi.MULTIS_MEMBER_A_ADDR6, "MULTIS_MEMBER_A_ADDR6", "ip6addr"),
    )
    stats = multis_stats


class kernel_multismsg(genlmsg):  # noqa: N801
    """The fake kernel's view of the multis family: MULTIS_A_MEMBERS as an
    array of nested attributes built and parsed by pyroute2, independently of
    the bindings' own byte-level codec (multicast_admin.memberarray)."""

    nla_map = tuple(
        (key, name, "*member" if name == "MULTIS_A_MEMBERS" else kind)
        for key, name, kind in multismsg.nla_map
    )
    member = kernel_member
    stats = multis_stats


def wire(msg_class: type, msg: Any, flags: int, seq: int = 1) -> Any:
    """``msg`` encoded to bytes and decoded again, as the other side sees it."""
    msg["header"]["type"] = FAMILY_ID
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    decoded = msg_class(bytes(msg.data))
    decoded.decode()
    return decoded


def kernel_view(msg_class: type) -> type:
    """The class the fake kernel parses ``msg_class``'s requests with."""
    return kernel_multismsg if msg_class is multismsg else msg_class


def reply(msg_class: type, cmd: int, attrs: list, flags: int = 0) -> Any:
    """A reply the fake kernel builds, as the bindings' ``msg_class`` decodes it."""
    msg = build_message(kernel_view(msg_class), cmd, 1, [tuple(a) for a in attrs])
    return wire(msg_class, msg, flags)


def refuse(code: int, text: str) -> NetlinkError:
    return NetlinkError(code, text)


def stats_nest(prefix: str, names: tuple, values: dict) -> dict:
    return {"attrs": [[f"{prefix}{n}", values.get(n, 0)] for n in names]}


@dataclass
class Request:
    cmd: int
    flags: int
    msg: Any
    raw: bytes


class _FakeKernel:
    msg_class: type
    family: str

    def __init__(self, restored: bool = True) -> None:
        self.requests: list[Request] = []
        self.privileged = True
        self.interrupt_dumps = 0
        self.closed = False
        self.restored = restored
        """The namespace's SET_RESTORED mark.  True (the default) is a namespace
        the service has restored, which most tests start from; False is a
        module just loaded (by modprobe), as the real kernel starts."""
        self.generation = secrets.randbits(64)
        """The configuration's generation, as the module keeps it: random at
        first, one more per request that changed the configuration."""
        self.reports_generation = True
        """False: a module older than GENERATION (GET_STATS without it)."""

    def reload(self, *, restored: bool = False) -> None:
        """A module reload: the configuration gone, an unrelated generation,
        not restored (``restored=True``: and the service has restored an
        empty saved state already)."""
        self.clear_state()
        self.restored = restored
        self.generation = secrets.randbits(64)

    def changed(self) -> None:
        """A change made outside netlink (a test's helper: an operator's)."""
        self.generation += 1

    def dumps(self) -> int:
        """The dump requests seen so far."""
        return sum((r.flags & NLM_F_DUMP) == NLM_F_DUMP for r in self.requests)

    def request(self, msg: Any, flags: int) -> Reply:
        seen = wire(kernel_view(self.msg_class), msg, flags)
        return self.handle(seen, flags, bytes(msg.data))

    def handle(self, seen: Any, flags: int, raw: bytes) -> Reply:
        """A request as the kernel sees it (decoded from ``raw``)."""
        self.requests.append(Request(seen["cmd"], flags, seen, raw))
        if (flags & NLM_F_DUMP) == NLM_F_DUMP:  # as genetlink tests it: REPLACE is ROOT
            messages = self.dump(seen)
            interrupted = self.interrupt_dumps > 0
            if interrupted:
                self.interrupt_dumps -= 1
                for m in messages[-1:]:
                    m["header"]["flags"] |= NLM_F_DUMP_INTR
            return Reply(messages, interrupted)
        if seen["cmd"] in self.read_commands:  # GET_STATS, GET_*: nothing changes
            return Reply(self.do(seen, flags))
        before = (self.fingerprint(), self.restored)
        messages = self.do(seen, flags)
        if (self.fingerprint(), self.restored) != before:  # refused: raised, no new generation
            self.generation += 1
        return Reply(messages)

    def generation_attr(self, prefix: str) -> list:
        """GET_STATS's GENERATION, or none from an older module."""
        return [[f"{prefix}GENERATION", self.generation]] if self.reports_generation else []

    def changes(self) -> list[Request]:
        """The requests that asked for a change (neither a get nor a dump)."""
        return [r for r in self.requests if r.cmd not in self.read_commands]

    def need_admin(self) -> None:
        if not self.privileged:
            raise refuse(errno.EPERM, "")

    def need_restored(self, msg: Any, prefix: str) -> None:
        """REQUIRE_RESTORED on a change to a namespace not restored: -ESTALE."""
        if msg.get_attr(f"{prefix}REQUIRE_RESTORED") and not self.restored:
            raise refuse(
                errno.ESTALE,
                f"saved state not restored yet: run `service {self.family} start`",
            )

    def close(self) -> None:
        self.closed = True

    read_commands: tuple = ()

    def state(self) -> dict:
        raise NotImplementedError

    def fingerprint(self) -> object:
        """What :meth:`state` shows, unformatted (cheap): equal before and after
        a request that changed nothing.  The host bench's thousand agents make
        every request through it."""
        raise NotImplementedError

    def clear_state(self) -> None:
        raise NotImplementedError

    def dump(self, msg: Any) -> list:
        raise NotImplementedError

    def do(self, msg: Any, flags: int) -> list:
        raise NotImplementedError


@dataclass
class FakeGroup:
    flags: int = 0
    members: list = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    member_stats: dict = field(default_factory=dict)


class FakeMultisKernel(_FakeKernel):
    """The multis family as the header and kernel/multis/netlink.c describe it.

    Like the module, it keeps groups and members sorted by address.
    """

    msg_class = multismsg
    family = "multis"
    read_commands = (
        uapi.MULTIS_CMD_GET_GROUP,
        uapi.MULTIS_CMD_GET_MEMBERS,
        uapi.MULTIS_CMD_GET_STATS,
    )
    members_per_message = 50

    def __init__(self, max_groups: int = 10, max_members: int = 128, restored: bool = True) -> None:
        super().__init__(restored)
        self.max_groups = max_groups
        self.max_members = max_members
        self.groups: dict[Any, FakeGroup] = {}
        self.stats: dict[str, int] = {}

    # --- helpers for tests -------------------------------------------------

    def state(self) -> dict:
        """{group: (flags, [members])}, to compare before and after."""
        return {str(g): (f, [str(m) for m in ms]) for g, (f, ms) in self.fingerprint().items()}

    def fingerprint(self) -> object:
        return {g: (v.flags, tuple(v.members)) for g, v in self.groups.items()}

    def set_group(self, group: str, members: list = (), flags: int = 0) -> None:
        self.groups[ip_address(group)] = FakeGroup(
            flags, sorted((ip_address(m) for m in members), key=order)
        )
        self.groups = dict(sorted(self.groups.items(), key=lambda item: order(item[0])))
        self.changed()

    def clear_state(self) -> None:
        self.groups.clear()

    # --- commands ----------------------------------------------------------

    def do(self, msg: Any, flags: int) -> list:
        cmd = msg["cmd"]
        if cmd == uapi.MULTIS_CMD_GET_GROUP:
            group = self._group_addr(msg)
            return [self._group_message(group, 0)]
        if cmd == uapi.MULTIS_CMD_GET_STATS:
            return [
                reply(
                    multismsg,
                    cmd,
                    [
                        ["MULTIS_A_STATS", stats_nest("MULTIS_STATS_A_", SERVER_STATS, self.stats)],
                        ["MULTIS_A_GROUP_COUNT", len(self.groups)],
                        ["MULTIS_A_MAX_GROUPS", self.max_groups],
                        ["MULTIS_A_MAX_MEMBERS", self.max_members],
                        ["MULTIS_A_MARKER_TOS", uapi.MULTICAST_PROXY_MARKER_TOS],
                        ["MULTIS_A_RESTORED", int(self.restored)],
                        *self.generation_attr("MULTIS_A_"),
                    ],
                )
            ]
        self.need_admin()
        if cmd == uapi.MULTIS_CMD_SET_RESTORED:
            self.restored = True
            return []
        if cmd in (
            uapi.MULTIS_CMD_JOIN,
            uapi.MULTIS_CMD_QUIT,
            uapi.MULTIS_CMD_DEL_GROUP,
            uapi.MULTIS_CMD_CLEAR,
        ):
            self.need_restored(msg, "MULTIS_A_")
        if cmd == uapi.MULTIS_CMD_JOIN:
            self._join(msg)
        elif cmd == uapi.MULTIS_CMD_QUIT:
            self._quit(msg)
        elif cmd == uapi.MULTIS_CMD_DEL_GROUP:
            group = self._group_addr(msg)
            del self.groups[group]
        elif cmd == uapi.MULTIS_CMD_CLEAR:
            self.groups.clear()
        elif cmd == uapi.MULTIS_CMD_RESET_STATS:
            self.stats = {}
            for g in self.groups.values():
                g.stats = {}
                g.member_stats = {}
        else:
            raise refuse(errno.EOPNOTSUPP, "")
        return []

    def dump(self, msg: Any) -> list:
        cmd = msg["cmd"]
        if cmd == uapi.MULTIS_CMD_GET_GROUP:
            return [self._group_message(g, NLM_F_MULTI) for g in self.groups]
        if cmd == uapi.MULTIS_CMD_GET_MEMBERS:
            self.need_admin()  # GENL_UNS_ADMIN_PERM, as in the module
            group = self._group_addr(msg)
            members = self.groups[group].members
            messages = []
            step = self.members_per_message
            for start in range(0, len(members), step):
                chunk = members[start : start + step]
                messages.append(
                    reply(
                        multismsg,
                        cmd,
                        [
                            addr_attr("MULTIS_A_GROUP_ADDR", group),
                            ["MULTIS_A_MEMBERS", [self._member_nest(group, m) for m in chunk]],
                        ],
                        NLM_F_MULTI,
                    )
                )
            return messages
        raise refuse(errno.EOPNOTSUPP, "")

    def _member_nest(self, group: IPv4Address, member: IPv4Address) -> dict:
        counters = self.groups[group].member_stats.get(member, {})
        return {
            "attrs": [
                addr_attr("MULTIS_MEMBER_A_ADDR", member),
                ["MULTIS_MEMBER_A_STATS", stats_nest("MULTIS_STATS_A_", MEMBER_STATS, counters)],
            ]
        }

    def _group_message(self, group: IPv4Address, flags: int) -> Any:
        g = self.groups[group]
        return reply(
            multismsg,
            uapi.MULTIS_CMD_GET_GROUP,
            [
                addr_attr("MULTIS_A_GROUP_ADDR", group),
                ["MULTIS_A_GROUP_FLAGS", g.flags],
                ["MULTIS_A_MEMBER_COUNT", len(g.members)],
                ["MULTIS_A_STATS", stats_nest("MULTIS_STATS_A_", SERVER_STATS, g.stats)],
            ],
            flags,
        )

    def _group_addr(self, msg: Any, must_exist: bool = True) -> IPv4Address:
        group = addr_of(msg, "MULTIS_A_GROUP_ADDR")
        if group is None:
            raise refuse(errno.EINVAL, "missing group address")
        if must_exist and group not in self.groups:
            raise refuse(errno.ENOENT, f"group {group} does not exist")
        return group

    def _members(self, msg: Any) -> list:
        found = []
        for e in msg.get_attr("MULTIS_A_MEMBERS") or []:
            member = addr_of(e, "MULTIS_MEMBER_A_ADDR")
            if member is None:
                raise refuse(errno.EINVAL, "a member without an address")
            found.append(member)
        return found

    def _join(self, msg: Any) -> None:
        # The checks and words of kernel/multis/netlink.c, in its order.
        group = self._group_addr(msg, must_exist=False)
        flags_attr = msg.get_attr("MULTIS_A_GROUP_FLAGS")
        group_flags = flags_attr or 0
        if group_flags & ~uapi.MULTIS_GROUP_F_ALL:
            raise refuse(errno.EOPNOTSUPP, "unknown group flags")
        existing = self.groups.get(group)
        if existing is not None and flags_attr is not None and group_flags != existing.flags:
            raise refuse(
                errno.EEXIST, f"group {group} already exists with flags {existing.flags:#x}"
            )
        if existing is None:
            self._check_new_group(group, group_flags)
        current = list(existing.members) if existing else []
        for member in self._members(msg):
            mixed = family_problem(group, member, "member")
            if mixed:
                raise refuse(errno.EINVAL, mixed)
            if member.version == 6:
                why6 = "a configured group" if member in self.groups else unicast6_problem(member)
                if why6:
                    raise refuse(errno.EINVAL, f"member {member} is {why6}")
                if member not in current:
                    current.append(member)
                continue
            why = (
                "a configured group"
                if member in self.groups or member == group
                else "a multicast address"
                if member in MULTICAST
                else "a loopback address"
                if member in LOOPBACK
                else "an unspecified address"
                if member in ZERO_NETWORK
                else "the broadcast address"
                if member == BCAST
                else None
            )
            if why:
                raise refuse(errno.EINVAL, f"member {member} is {why}")
            if member not in current:
                current.append(member)
        if len(current) > self.max_members:
            raise refuse(errno.ENOSPC, f"group {group}: member limit {self.max_members} reached")
        if existing is None:
            self.groups[group] = FakeGroup(group_flags, sorted(current, key=order))
            self.groups = dict(sorted(self.groups.items(), key=lambda item: order(item[0])))
        else:
            existing.members = sorted(current, key=order)

    def _check_new_group(self, group: Any, group_flags: int) -> None:
        if group.version == 6:
            why = group6_problem(group, group_flags & uapi.MULTIS_GROUP_F_BROADCAST)
            if why:
                raise refuse(errno.EINVAL, why)
        elif group_flags & uapi.MULTIS_GROUP_F_BROADCAST:
            if group in MULTICAST or group in LOOPBACK or group in ZERO_NETWORK:
                raise refuse(errno.EINVAL, f"group {group} is not a broadcast address")
        elif group not in MULTICAST:
            raise refuse(
                errno.EINVAL,
                f"group {group} is not multicast (broadcast needs the broadcast flag)",
            )
        for other, g in self.groups.items():
            if group in g.members:
                raise refuse(errno.EINVAL, f"group {group} is a member of group {other}")
        if len(self.groups) >= self.max_groups:
            raise refuse(errno.ENOSPC, f"group limit {self.max_groups} reached")

    def _quit(self, msg: Any) -> None:
        group = self._group_addr(msg)
        members = self._members(msg)
        current = self.groups[group].members
        for member in members:
            if member not in current:
                raise refuse(errno.ENOENT, f"member {member} is not in group {group}")
        self.groups[group].members = [m for m in current if m not in members]


@dataclass
class FakeEntry:
    group: IPv4Address
    stats: dict = field(default_factory=dict)


class FakeMulticKernel(_FakeKernel):
    """The multic family as the header describes it."""

    msg_class = multicmsg
    family = "multic"
    read_commands = (uapi.MULTIC_CMD_GET_ENTRY, uapi.MULTIC_CMD_GET_STATS)

    def __init__(
        self, max_groups: int = 10, max_entries: int = 1024, restored: bool = True
    ) -> None:
        super().__init__(restored)
        self.max_groups = max_groups
        self.max_entries = max_entries
        self.entries: dict[tuple[Any, int], FakeEntry] = {}
        self.stats: dict[str, int] = {}

    def state(self) -> dict:
        return {f"{s}:{p}": str(group) for (s, p), group in self.fingerprint().items()}

    def fingerprint(self) -> object:
        return {key: e.group for key, e in self.entries.items()}

    def set_entry(self, server: str, port: int, group: str) -> None:
        self.entries[(ip_address(server), port)] = FakeEntry(ip_address(group))
        self.changed()

    def clear_state(self) -> None:
        self.entries.clear()

    def do(self, msg: Any, flags: int) -> list:
        cmd = msg["cmd"]
        if cmd == uapi.MULTIC_CMD_GET_ENTRY:
            self.need_admin()  # GENL_UNS_ADMIN_PERM, as in the module
            key = self._key(msg, must_exist=True)
            return [self._entry_message(key, 0)]
        if cmd == uapi.MULTIC_CMD_GET_STATS:
            return [
                reply(
                    multicmsg,
                    cmd,
                    [
                        [
                            "MULTIC_A_STATS",
                            stats_nest("MULTIC_STATS_A_", CLIENT_NAMESPACE_STATS, self.stats),
                        ],
                        ["MULTIC_A_ENTRY_COUNT", len(self.entries)],
                        ["MULTIC_A_GROUP_COUNT", len({e.group for e in self.entries.values()})],
                        ["MULTIC_A_MAX_GROUPS", self.max_groups],
                        ["MULTIC_A_MAX_ENTRIES", self.max_entries],
                        ["MULTIC_A_MARKER_TOS", uapi.MULTICAST_PROXY_MARKER_TOS],
                        ["MULTIC_A_RESTORED", int(self.restored)],
                        *self.generation_attr("MULTIC_A_"),
                    ],
                )
            ]
        self.need_admin()
        if cmd == uapi.MULTIC_CMD_SET_RESTORED:
            self.restored = True
            return []
        if cmd in (uapi.MULTIC_CMD_ADD, uapi.MULTIC_CMD_DEL, uapi.MULTIC_CMD_CLEAR):
            self.need_restored(msg, "MULTIC_A_")
        if cmd == uapi.MULTIC_CMD_ADD:
            self._add(msg, flags)
        elif cmd == uapi.MULTIC_CMD_DEL:
            del self.entries[self._key(msg, must_exist=True)]
        elif cmd == uapi.MULTIC_CMD_CLEAR:
            self.entries.clear()
        elif cmd == uapi.MULTIC_CMD_RESET_STATS:
            self.stats = {}
            for e in self.entries.values():
                e.stats = {}
        else:
            raise refuse(errno.EOPNOTSUPP, "")
        return []

    def dump(self, msg: Any) -> list:
        if msg["cmd"] == uapi.MULTIC_CMD_GET_ENTRY:
            self.need_admin()  # GENL_UNS_ADMIN_PERM, as in the module
            return [self._entry_message(k, NLM_F_MULTI) for k in self.entries]
        raise refuse(errno.EOPNOTSUPP, "")

    def _key(self, msg: Any, must_exist: bool = False) -> tuple[IPv4Address, int]:
        server = addr_of(msg, "MULTIC_A_SERVER_ADDR")
        port = msg.get_attr("MULTIC_A_PORT")
        if server is None or port is None:
            raise refuse(errno.EINVAL, "missing server address or port")
        key = (server, port)
        if must_exist and key not in self.entries:
            raise refuse(errno.ENOENT, f"no entry for {host_port(server, port)}")
        return key

    def _entry_message(self, key: tuple[IPv4Address, int], flags: int) -> Any:
        entry = self.entries[key]
        return reply(
            multicmsg,
            uapi.MULTIC_CMD_GET_ENTRY,
            [
                addr_attr("MULTIC_A_SERVER_ADDR", key[0]),
                ["MULTIC_A_PORT", key[1]],
                addr_attr("MULTIC_A_GROUP_ADDR", entry.group),
                [
                    "MULTIC_A_ENTRY_FLAGS",
                    0 if entry.group.is_multicast else uapi.MULTIC_ENTRY_F_BROADCAST,
                ],
                ["MULTIC_A_STATS", stats_nest("MULTIC_STATS_A_", CLIENT_STATS, entry.stats)],
            ],
            flags,
        )

    def _add(self, msg: Any, flags: int) -> None:
        key = self._key(msg)
        group = addr_of(msg, "MULTIC_A_GROUP_ADDR")
        if group is None:
            raise refuse(errno.EINVAL, "missing group address")
        server = key[0]
        entry_flags = int(msg.get_attr("MULTIC_A_ENTRY_FLAGS") or 0)
        mixed = family_problem(group, server, "server")
        if mixed:
            raise refuse(errno.EINVAL, mixed)
        if server.version == 6:
            why = unicast6_problem(server)
            if why:
                raise refuse(errno.EINVAL, f"server {server} is not a unicast address ({why})")
            why = group6_problem(group, entry_flags & uapi.MULTIC_ENTRY_F_BROADCAST)
            if why:
                raise refuse(errno.EINVAL, why)
        elif server in MULTICAST or server in LOOPBACK or server in ZERO_NETWORK or server == BCAST:
            raise refuse(errno.EINVAL, f"server {server} is not a unicast address")
        if entry_flags & ~uapi.MULTIC_ENTRY_F_ALL:
            raise refuse(errno.EOPNOTSUPP, f"unknown entry flags {entry_flags:#x}")
        if group.version == 6:
            pass
        elif not entry_flags & uapi.MULTIC_ENTRY_F_BROADCAST:
            if group not in MULTICAST:
                raise refuse(
                    errno.EINVAL,
                    f"group {group} is not multicast (broadcast needs the broadcast flag)",
                )
        elif group in MULTICAST or group in LOOPBACK or group in ZERO_NETWORK:
            raise refuse(errno.EINVAL, f"group {group} is not a broadcast address")
        existing = self.entries.get(key)
        if existing is not None and not flags & NLM_F_REPLACE:
            raise refuse(errno.EEXIST, f"entry {host_port(*key)} already maps to {existing.group}")
        if existing is None and len(self.entries) >= self.max_entries:
            raise refuse(errno.ENOSPC, f"entry limit {self.max_entries} reached")
        groups = {e.group for k, e in self.entries.items() if k != key} | {group}
        if len(groups) > self.max_groups:
            raise refuse(errno.ENOSPC, f"group limit {self.max_groups} reached")
        self.entries[key] = FakeEntry(group)


def genl_available() -> bool:
    """Whether this host has generic netlink (tests of the real controller need it)."""
    try:
        socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16).close()  # NETLINK_GENERIC
    except OSError:
        return False
    return True


needs_genl = pytest.mark.skipif(not genl_available(), reason="no generic netlink here")
