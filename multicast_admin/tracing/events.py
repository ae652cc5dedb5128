"""The modules' trace events as Python values, and their words for an operator.

The BPF program (probe.py) hands over one fixed C struct per tracepoint hit
(``RAW_EVENT``); :func:`decode` makes it an :class:`Event`.  A datagram's
``multis_not_sent`` events come before its ``multis_fanout``, from the same
CPU and task: :class:`Joiner` puts them together into one :class:`Fanout`, so
one line says what happened to the datagram.
"""

from __future__ import annotations

import socket
import struct
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Union

from .. import uapi

# enum event_kind of probe.py's C text
KIND_FANOUT, KIND_NOT_SENT, KIND_RESTORE, KIND_SKIP, KIND_UNMARKED = range(5)

# struct event of probe.py, packed, native byte order
RAW_EVENT = struct.Struct("=QIIII4s4s4sHHIIIiiBBBx")

SENDER_REASONS = {
    uapi.MULTIS_TRACE_NO_ROUTE: "no_route",
    uapi.MULTIS_TRACE_NOMEM: "nomem",
    uapi.MULTIS_TRACE_TOO_BIG: "too_big",
    uapi.MULTIS_TRACE_POLICY: "policy",
    uapi.MULTIS_TRACE_XMIT: "xmit",
}
RECEIVER_REASONS = {
    uapi.MULTIC_TRACE_NO_ENTRY: "no_entry",
    uapi.MULTIC_TRACE_NOT_LOCAL: "not_local",
    uapi.MULTIC_TRACE_NOMEM: "nomem",
}
_SENDER_WORDS = {
    "no_route": "no route to {member}",
    "nomem": "out of memory copying for {member}",
    "too_big": "larger than the path MTU to {member} (DF set)",
    "policy": "refused by this host's output policy for {member}",
    "xmit": "refused by the output path for {member} (error {err})",
}


@dataclass(frozen=True)
class NotSent:
    member: str
    reason: str
    err: int

    def words(self) -> str:
        return _SENDER_WORDS[self.reason].format(member=self.member, err=self.err)


@dataclass
class Fanout:
    """One datagram fanned out by multis."""

    ts: float
    netns: int
    group: str
    port: int
    source: str
    sport: int
    length: int
    members: int
    sent: int
    not_sent: list[NotSent] = field(default_factory=list)
    side = "sender"

    def words(self) -> str:
        head = f"{self.group}:{self.port} from {self.source}:{self.sport}"
        if not self.members:
            return f"{head} -> no copies: the group has no members"
        text = f"{head} -> {self.sent} {'copy' if self.sent == 1 else 'copies'}"
        if self.not_sent:
            text += f", {len(self.not_sent)} not sent: " + "; ".join(
                n.words() for n in self.not_sent
            )
        return text

    def to_json(self) -> dict:
        return {
            "side": self.side,
            "event": "fanout",
            "netns": self.netns,
            "group": self.group,
            "port": self.port,
            "source": self.source,
            "sport": self.sport,
            "bytes": self.length,
            "members": self.members,
            "sent": self.sent,
            "not_sent": [
                {"member": n.member, "reason": n.reason, "error": n.err} for n in self.not_sent
            ],
        }

    def tally(self) -> Iterator[tuple[str, str, int]]:
        yield "datagrams", self.group, 1
        yield "copies", self.group, self.sent
        if not self.members:
            yield "no_member", self.group, 1
        for n in self.not_sent:
            yield n.reason, self.group, 1


@dataclass
class Received:
    """One copy multic restored, left alone or dropped, or an unmarked datagram."""

    ts: float
    kind: int
    netns: int
    server: str
    sport: int
    daddr: str
    port: int
    group: str
    length: int = 0
    reason: str = ""
    tos: int = 0
    marker: int = 0
    side = "receiver"

    @property
    def event(self) -> str:
        return {KIND_RESTORE: "restored", KIND_SKIP: self.reason, KIND_UNMARKED: "unmarked"}[
            self.kind
        ]

    def words(self) -> str:
        head = f"{self.server}:{self.sport} -> {self.daddr}:{self.port}"
        if self.kind == KIND_RESTORE:
            return f"{head} restored to {self.group} ({self.length} bytes)"
        if self.kind == KIND_UNMARKED:
            return (
                f"{head} not restored: TOS 0x{self.tos:02x} arrived, the marker is "
                f"0x{self.marker:02x} (the network rewrote it); entry group {self.group}"
            )
        if self.reason == "no_entry":
            return f"{head} left alone: no entry for server {self.server} port {self.port}"
        if self.reason == "not_local":
            return f"{head} left alone: {self.daddr} is not an address of this host"
        return f"{head} dropped: out of memory making it writable (group {self.group})"

    def to_json(self) -> dict:
        out = {
            "side": self.side,
            "event": self.event,
            "netns": self.netns,
            "server": self.server,
            "sport": self.sport,
            "destination": self.daddr,
            "port": self.port,
            "group": self.group if self.kind != KIND_SKIP or self.reason != "no_entry" else None,
        }
        if self.kind == KIND_RESTORE:
            out["bytes"] = self.length
        if self.kind == KIND_UNMARKED:
            out["tos"] = self.tos
            out["marker"] = self.marker
        return out

    def tally(self) -> Iterator[tuple[str, str, int]]:
        group = self.group if self.group != "0.0.0.0" else f"{self.server}:{self.port}"
        yield self.event, group, 1


Event = Union[Fanout, Received]


@dataclass(frozen=True)
class Raw:
    """struct event as read from the ring buffer."""

    ts_ns: int
    kind: int
    netns: int
    cpu: int
    pid: int
    group: str
    addr: str
    peer: str
    sport: int
    port: int
    length: int
    members: int
    sent: int
    reason: int
    err: int
    protocol: int
    tos: int
    marker: int

    @classmethod
    def unpack(cls, data: bytes) -> Raw:
        f = RAW_EVENT.unpack_from(data)
        ntoa = socket.inet_ntoa
        return cls(f[0], f[1], f[2], f[3], f[4], ntoa(f[5]), ntoa(f[6]), ntoa(f[7]), *f[8:])


class Clock:
    """Kernel monotonic nanoseconds (bpf_ktime_get_ns) to wall-clock seconds."""

    def __init__(self) -> None:
        self.offset = time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)

    def wall(self, ts_ns: int) -> float:
        return self.offset + ts_ns / 1e9


class Joiner:
    """Raw events in ring-buffer order to Events: a fanout with its copies not sent."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.pending: dict[tuple[int, int], list[NotSent]] = {}

    def feed(self, raw: Raw) -> Event | None:
        ts = self.clock.wall(raw.ts_ns)
        if raw.kind == KIND_NOT_SENT:
            reason = SENDER_REASONS.get(raw.reason, f"reason {raw.reason}")
            self.pending.setdefault((raw.cpu, raw.pid), []).append(
                NotSent(raw.peer, reason, raw.err)
            )
            return None
        if raw.kind == KIND_FANOUT:
            return Fanout(
                ts,
                raw.netns,
                raw.group,
                raw.port,
                raw.addr,
                raw.sport,
                raw.length,
                raw.members,
                raw.sent,
                self.pending.pop((raw.cpu, raw.pid), []),
            )
        return Received(
            ts,
            raw.kind,
            raw.netns,
            raw.addr,
            raw.sport,
            raw.peer,
            raw.port,
            raw.group,
            raw.length,
            receiver_reason(raw) if raw.kind == KIND_SKIP else "",
            raw.tos,
            raw.marker,
        )


def receiver_reason(raw: Raw) -> str:
    return RECEIVER_REASONS.get(raw.reason, f"reason {raw.reason}")


def line(event: Event) -> str:
    """``10:00:01.123 sender 239.1.1.1:5000 from 10.0.0.1:40000 -> 3 copies``."""
    stamp = time.strftime("%H:%M:%S", time.localtime(event.ts)) + f".{int(event.ts % 1 * 1000):03d}"
    return f"{stamp} {event.side} {event.words()}"


def as_json(event: Event) -> dict:
    return {"time": round(event.ts, 6), **event.to_json()}


class Summary:
    """Counts per side, group and what happened, for ``--count``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, event: Event) -> None:
        for what, group, n in event.tally():
            self.counts[(event.side, group, what)] += n

    def take(self) -> list[dict]:
        rows = [
            {"side": side, "group": group, "what": what, "count": n}
            for (side, group, what), n in sorted(self.counts.items())
        ]
        self.counts.clear()
        return rows

    @staticmethod
    def lines(rows: list[dict], stamp: float) -> list[str]:
        head = time.strftime("%H:%M:%S", time.localtime(stamp))
        if not rows:
            return [f"{head} no events"]
        return [f"{head} {r['side']} {r['group']} {r['what']}: {r['count']}" for r in rows]
