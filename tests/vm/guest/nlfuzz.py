"""Guest side: a seeded generic-netlink fuzzer for the multis and multic families.

Raw ``AF_NETLINK``/``NETLINK_GENERIC`` sockets, no pyroute2 on the hot path:
one message is built, sent, and its answer awaited before the next.  Every
message the fuzzer sends is a request with ``NLM_F_ACK`` (among random other
flags) and a consistent ``nlmsg_len``, so the kernel owes it an answer: an
``NLMSG_ERROR`` (the ack or the error) or, for a dump, ``NLMSG_DONE``.  A
message with no answer within the receive timeout is a failure, reported with
the seed, the message's index and its bytes, so the same seed
replays it (one PRNG stream per family).  (Frames the kernel is entitled to ignore, a length field
longer than the datagram, are sent separately and followed by a probe that
must be answered.)

What the messages are, chosen per message by the seeded PRNG:

* ``random``: a random command (including ones past the family's last), a
  random version and flags, a random attribute tree (random types, the
  nested and byte-order bits, nesting up to 4 deep, lengths that lie);
* ``valid``: a well-formed request as multicast_admin encodes it
  (:func:`multicast_admin.netlink.build_message`), with random flags;
* ``mutated``: such a valid request with 1-8 random bytes changed after the
  netlink header, or truncated (``nlmsg_len`` follows);
* ``interleaved``: a dump read a message at a time while another socket
  changes what it is dumping.
"""

from __future__ import annotations

import errno
import os
import random
import select
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

from multicast_admin import memberarray, uapi
from multicast_admin.netlink import build_message, multicmsg, multismsg

NETLINK_GENERIC = 16
GENL_ID_CTRL = 0x10
CTRL_CMD_GETFAMILY = 3
CTRL_ATTR_FAMILY_ID = 1
CTRL_ATTR_FAMILY_NAME = 2
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK, NLM_F_ECHO = 0x1, 0x2, 0x4, 0x8
NLM_F_DUMP_INTR = 0x10
NLM_F_ROOT, NLM_F_MATCH, NLM_F_ATOMIC = 0x100, 0x200, 0x400
NLM_F_REPLACE, NLM_F_EXCL, NLM_F_CREATE, NLM_F_APPEND = 0x100, 0x200, 0x400, 0x800
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLA_F_NESTED, NLA_F_NET_BYTEORDER = 0x8000, 0x4000
FLAG_BITS = (NLM_F_MULTI, NLM_F_ECHO, 0x20, NLM_F_ROOT, NLM_F_MATCH, NLM_F_ATOMIC, 0x800, 0x1000)

#: addresses the fuzzer prefers: the simulated VPC's hosts and groups, and edge cases
ADDRESSES = (
    "239.1.1.1",
    "239.1.1.2",
    "239.9.9.9",
    "224.0.0.18",
    "10.0.0.255",
    "255.255.255.255",
    "10.0.0.1",
    "10.0.0.11",
    "10.0.0.12",
    "10.0.0.13",
    "10.0.0.77",
    "127.0.0.1",
    "0.0.0.0",
    "224.1.1.1",
)


class NoAnswer(AssertionError):
    """The kernel did not answer a message it owed an answer."""


def family_id(sock: socket.socket, name: str) -> int:
    """The generic netlink id of family ``name`` (CTRL_CMD_GETFAMILY)."""
    value = name.encode() + b"\0"
    attr = struct.pack("=HH", 4 + len(value), CTRL_ATTR_FAMILY_NAME) + value
    attr += b"\0" * (-len(attr) % 4)
    body = struct.pack("=BBH", CTRL_CMD_GETFAMILY, 1, 0) + attr
    sock.send(struct.pack("=IHHII", 16 + len(body), GENL_ID_CTRL, NLM_F_REQUEST, 1, 0) + body)
    data = sock.recv(65536)
    _len, kind = struct.unpack_from("=IH", data)
    if kind == NLMSG_ERROR:
        (err,) = struct.unpack_from("=i", data, 16)
        raise OSError(-err, f"family {name}: {os.strerror(-err)}")
    offset = 20
    while offset + 4 <= len(data):
        alen, atype = struct.unpack_from("=HH", data, offset)
        if atype == CTRL_ATTR_FAMILY_ID:
            return struct.unpack_from("=H", data, offset + 4)[0]
        offset += (alen + 3) & ~3
    raise OSError(errno.ENOENT, f"family {name}: no id in the reply")


def nl_socket(rcvbuf: int = 1 << 20) -> socket.socket:
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_GENERIC)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.bind((0, 0))
    return sock


def answer(sock: socket.socket, seq: int, timeout: float, bufsize: int = 1 << 20) -> dict:
    """Read until the message ``seq`` is answered: {"kind", "error", "replies", "intr"}.

    Messages of earlier sequence numbers (a late part of an earlier answer)
    are skipped and counted.  Raises NoAnswer after ``timeout`` seconds of
    silence.
    """
    replies = stale = intr = 0
    while True:
        if not select.select([sock], [], [], timeout)[0]:
            raise NoAnswer(f"no answer to seq {seq} within {timeout}s ({replies} replies)")
        data = sock.recv(bufsize)
        offset = 0
        while offset + 16 <= len(data):
            length, kind, flags, mseq, _pid = struct.unpack_from("=IHHII", data, offset)
            if length < 16:
                raise NoAnswer(f"a reply with nlmsg_len {length}")
            if mseq != seq:
                stale += 1
            elif kind == NLMSG_ERROR:
                (err,) = struct.unpack_from("=i", data, offset + 16)
                return {
                    "kind": "error",
                    "error": -err,
                    "replies": replies,
                    "stale": stale,
                    "intr": intr,
                }
            elif kind == NLMSG_DONE:
                intr += bool(flags & NLM_F_DUMP_INTR)
                return {
                    "kind": "done",
                    "error": 0,
                    "replies": replies,
                    "stale": stale,
                    "intr": intr,
                }
            else:
                replies += 1
                intr += bool(flags & NLM_F_DUMP_INTR)
            offset += (length + 3) & ~3


def nlmsg(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, flags, seq, 0) + body


class Family:
    """What the fuzzer knows of one family: its commands, attributes, valid requests."""

    def __init__(self, name: str, fid: int) -> None:
        self.name, self.fid = name, fid
        up = name.upper()
        self.cmd_max = getattr(uapi, f"{up}_CMD_MAX")
        self.attr_max = getattr(uapi, f"{up}_A_MAX")
        self.msg_class = multismsg if name == "multis" else multicmsg
        self.version = getattr(uapi, f"{up}_GENL_VERSION")

    def valid(self, rng: random.Random) -> tuple[int, bytes]:
        """(cmd, genl header + attributes) of a well-formed request, encoded by multicast_admin."""
        addr = lambda: rng.choice(ADDRESSES)  # noqa: E731
        from ipaddress import IPv4Address

        if self.name == "multis":
            members = [
                IPv4Address(f"10.0.{rng.randrange(2)}.{rng.randrange(1, 255)}")
                for _ in range(rng.randrange(0, 40))
            ]
            if rng.random() < 0.5:
                members.append(IPv4Address(addr()))
            members = sorted(set(members))
            group = rng.choice(("239.1.1.2", "239.1.1.3", "239.9.9.9", "10.0.0.255", addr()))
            choices: list[tuple[int, list[tuple[str, Any]]]] = [
                (
                    uapi.MULTIS_CMD_JOIN,
                    [
                        ("MULTIS_A_GROUP_ADDR", group),
                        ("MULTIS_A_MEMBERS", memberarray.encode(members)),
                    ],
                ),
                (
                    uapi.MULTIS_CMD_JOIN,
                    [("MULTIS_A_GROUP_ADDR", group), ("MULTIS_A_GROUP_FLAGS", rng.randrange(8))],
                ),
                (
                    uapi.MULTIS_CMD_QUIT,
                    [
                        ("MULTIS_A_GROUP_ADDR", group),
                        ("MULTIS_A_MEMBERS", memberarray.encode(members)),
                    ],
                ),
                (uapi.MULTIS_CMD_DEL_GROUP, [("MULTIS_A_GROUP_ADDR", group)]),
                (uapi.MULTIS_CMD_GET_GROUP, [("MULTIS_A_GROUP_ADDR", group)]),
                (uapi.MULTIS_CMD_GET_MEMBERS, [("MULTIS_A_GROUP_ADDR", group)]),
                (uapi.MULTIS_CMD_GET_STATS, []),
                (uapi.MULTIS_CMD_RESET_STATS, []),
                (
                    uapi.MULTIS_CMD_JOIN,
                    [("MULTIS_A_GROUP_ADDR", group), ("MULTIS_A_REQUIRE_RESTORED", None)],
                ),
            ]
            if rng.random() < 0.02:
                choices.append((uapi.MULTIS_CMD_CLEAR, []))
        else:
            server = rng.choice(("10.0.0.1", "10.0.0.2", "10.0.0.3", addr()))
            port = rng.choice((0, 5000, 5001, rng.randrange(65536)))
            key = [("MULTIC_A_SERVER_ADDR", server), ("MULTIC_A_PORT", port)]
            group = rng.choice(("239.1.1.2", "239.1.1.3", "10.0.0.255", addr()))
            choices = [
                (
                    uapi.MULTIC_CMD_ADD,
                    [
                        *key,
                        ("MULTIC_A_GROUP_ADDR", group),
                        ("MULTIC_A_ENTRY_FLAGS", rng.randrange(4)),
                    ],
                ),
                (uapi.MULTIC_CMD_ADD, [*key, ("MULTIC_A_GROUP_ADDR", group)]),
                (uapi.MULTIC_CMD_DEL, key),
                (uapi.MULTIC_CMD_GET_ENTRY, key),
                (uapi.MULTIC_CMD_GET_STATS, []),
                (uapi.MULTIC_CMD_RESET_STATS, []),
                (
                    uapi.MULTIC_CMD_ADD,
                    [*key, ("MULTIC_A_GROUP_ADDR", group), ("MULTIC_A_REQUIRE_RESTORED", None)],
                ),
            ]
            if rng.random() < 0.02:
                choices.append((uapi.MULTIC_CMD_CLEAR, []))
        cmd, attrs = rng.choice(choices)
        msg = build_message(self.msg_class, cmd, self.version, attrs)
        msg["header"]["type"] = self.fid
        msg.encode()
        return cmd, bytes(msg.data[16 : msg["header"]["length"]])


def random_attrs(rng: random.Random, attr_max: int, depth: int = 0) -> bytes:
    """A random attribute tree: random types, nesting, lengths (some of them lies)."""
    out = b""
    for _ in range(rng.randrange(0, 6 if depth == 0 else 4)):
        kind = rng.randrange(0, attr_max + 3) if rng.random() < 0.9 else rng.randrange(1 << 14)
        if rng.random() < 0.15:
            kind |= NLA_F_NESTED
        if rng.random() < 0.05:
            kind |= NLA_F_NET_BYTEORDER
        shape = rng.randrange(8)
        if shape == 0 and depth < 4:
            value = random_attrs(rng, attr_max, depth + 1)
            kind |= NLA_F_NESTED if rng.random() < 0.7 else 0
        elif shape == 1:
            value = socket.inet_aton(rng.choice(ADDRESSES))
        elif shape == 2:
            value = struct.pack("=I", rng.choice((0, 1, 2, 3, 4, 0xFFFFFFFF, rng.getrandbits(32))))
        elif shape == 3:
            value = struct.pack("=H", rng.getrandbits(16))
        elif shape == 4:
            value = struct.pack("=Q", rng.getrandbits(64))
        elif shape == 5:
            value = bytes([rng.getrandbits(8)])
        elif shape == 6:
            value = b""
        else:
            value = rng.randbytes(rng.randrange(0, 80))
        length = 4 + len(value)
        if rng.random() < 0.05:  # a lying length: shorter, longer, below the header
            length = rng.choice((0, 1, 3, length - 1, length + 1, length + 100, 0xFFFF))
        attr = struct.pack("=HH", length & 0xFFFF, kind) + value
        out += attr + b"\0" * (-len(attr) % 4)
    return out


class Fuzzer:
    """The seeded message generator of one family.

    One PRNG stream per (seed, family): message ``i`` is the ``i``-th of the
    stream, so the same seed replays the same sequence.  The valid requests
    are a pool of ``pool`` messages multicast_admin encoded at the start
    (pyroute2 is too slow under TCG to encode one per message).
    """

    def __init__(self, seed: int, family: Family, pool: int = 150) -> None:
        self.seed, self.family = seed, family
        self.rng = random.Random(f"{seed}:{family.name}")
        prng = random.Random(f"{seed}:{family.name}:pool")
        self.pool = [family.valid(prng) for _ in range(pool)]

    def message(self) -> tuple[str, int, int, bytes]:
        """(kind, cmd, nlmsg flags, genl header + attributes) of the next message."""
        rng = self.rng
        flags = NLM_F_REQUEST | NLM_F_ACK
        for bit in FLAG_BITS:
            if rng.random() < 0.12:
                flags |= bit
        roll = rng.random()
        fam = self.family
        if roll < 0.4:
            kind = "random"
            cmd = rng.randrange(0, fam.cmd_max + 3) if rng.random() < 0.95 else rng.getrandbits(8)
            version = fam.version if rng.random() < 0.8 else rng.getrandbits(8)
            body = struct.pack("=BBH", cmd, version, rng.choice((0, 0, rng.getrandbits(16))))
            body += random_attrs(rng, fam.attr_max)
        elif roll < 0.7:
            kind = "valid"
            cmd, body = rng.choice(self.pool)
            if rng.random() < 0.3:
                flags |= NLM_F_DUMP
        else:
            kind = "mutated"
            cmd, body = rng.choice(self.pool)
            body = bytearray(body)
            if rng.random() < 0.3 or len(body) <= 4:
                body = body[: rng.randrange(0, len(body) + 1)]
            else:
                for _ in range(rng.randrange(1, 9)):
                    body[rng.randrange(len(body))] = rng.getrandbits(8)
            body = bytes(body)
        return kind, cmd, flags, body


def run_family(
    sock: socket.socket,
    fuzzer: Fuzzer,
    count: int,
    timeout: float,
    log: Callable[[str], None] = print,
    change: Callable[[int], None] | None = None,
    every: int = 500,
) -> dict:
    """Send the next ``count`` messages of ``fuzzer``, each answered or NoAnswer.

    ``change(i)`` runs every ``every`` messages (the guest re-configures the
    group the traffic flows through there, which random CLEARs delete).
    """
    fam = fuzzer.family
    errors: dict[str, int] = {}
    kinds: dict[str, int] = {}
    replies = intr = stale = 0
    started = time.monotonic()
    for i in range(count):
        if change and i % every == 0:
            change(i)
        kind, cmd, flags, body = fuzzer.message()
        seq = i + 1  # never 0
        sock.send(nlmsg(fam.fid, flags, seq & 0xFFFFFFFF, body))
        try:
            got = answer(sock, seq & 0xFFFFFFFF, timeout)
        except NoAnswer as err:
            raise NoAnswer(
                f"{fam.name}: seed {fuzzer.seed} message {i} ({kind}, cmd {cmd}, flags "
                f"0x{flags:x}) unanswered: {err}; genl bytes: {body.hex()}"
            ) from None
        name = errno.errorcode.get(got["error"], str(got["error"])) if got["error"] else got["kind"]
        errors[name] = errors.get(name, 0) + 1
        kinds[kind] = kinds.get(kind, 0) + 1
        replies += got["replies"]
        intr += got["intr"]
        stale += got["stale"]
        if (i + 1) % 5000 == 0:
            log(f"{fam.name}: {i + 1}/{count} in {time.monotonic() - started:.0f}s")
    return {
        "family": fam.name,
        "messages": count,
        "answers": sum(errors.values()),
        "by_answer": errors,
        "by_kind": kinds,
        "replies": replies,
        "dump_intr": intr,
        "stale": stale,
        "seconds": round(time.monotonic() - started, 1),
    }


def ignored_frames(sock: socket.socket, fam: Family, rng: random.Random, count: int) -> dict:
    """Frames the kernel may drop unanswered (a length past the datagram, a short
    header), each followed by a GET_STATS probe that must be answered."""
    probe = struct.pack("=BBH", getattr(uapi, f"{fam.name.upper()}_CMD_GET_STATS"), 1, 0)
    refused: dict[str, int] = {}
    for i in range(count):
        body = rng.randbytes(rng.randrange(0, 40))
        frame = (
            struct.pack(
                "=IHHII",
                16 + len(body) + rng.randrange(1, 1000),
                fam.fid,
                NLM_F_REQUEST | NLM_F_ACK,
                0x7000_0000 + i,
                0,
            )
            + body
        )
        if rng.random() < 0.3:
            frame = frame[: rng.randrange(0, 16)]
        try:
            sock.send(frame)
        except OSError as err:  # refused synchronously (a frame shorter than a header)
            refused[errno.errorcode.get(err.errno, str(err.errno))] = (
                refused.get(errno.errorcode.get(err.errno, str(err.errno)), 0) + 1
            )
        seq = 0x7800_0000 + i
        sock.send(nlmsg(fam.fid, NLM_F_REQUEST | NLM_F_ACK, seq, probe))
        try:
            answer(sock, seq, 10.0)
        except NoAnswer:
            raise NoAnswer(f"probe {seq:#x} after bad frame {frame.hex()} unanswered") from None
    return {"frames": count, "probes_answered": count, "send_refused": refused}


def genl(fam: Family, cmd: int, attrs: list[tuple[str, Any]]) -> bytes:
    msg = build_message(fam.msg_class, cmd, fam.version, attrs)
    msg["header"]["type"] = fam.fid
    msg.encode()
    return bytes(msg.data[16 : msg["header"]["length"]])


def interleaved(
    dumper: socket.socket,
    changer: socket.socket,
    fam: Family,
    rng: random.Random,
    rounds: int,
    timeout: float,
) -> dict:
    """Dumps read one datagram at a time (``dumper`` reads 8 KiB at most, so the
    kernel fills one page per part) while ``changer`` changes what is dumped
    between the parts.  Every dump ends with NLMSG_DONE; every change is answered."""
    seq = 0x6000_0000
    parts = intr = changes = 0
    if fam.name == "multis":
        group = "239.1.1.4"
        pool = [f"10.0.1.{i}" for i in range(1, 201)]

        def dump() -> bytes:
            return genl(fam, uapi.MULTIS_CMD_GET_MEMBERS, [("MULTIS_A_GROUP_ADDR", group)])

        def change() -> bytes:
            from ipaddress import IPv4Address

            some = sorted({IPv4Address(a) for a in rng.sample(pool, rng.randrange(1, 60))})
            cmd = rng.choice((uapi.MULTIS_CMD_JOIN, uapi.MULTIS_CMD_QUIT, uapi.MULTIS_CMD_JOIN))
            if rng.random() < 0.05:
                return genl(fam, uapi.MULTIS_CMD_DEL_GROUP, [("MULTIS_A_GROUP_ADDR", group)])
            return genl(
                fam,
                cmd,
                [("MULTIS_A_GROUP_ADDR", group), ("MULTIS_A_MEMBERS", memberarray.encode(some))],
            )
    else:

        def dump() -> bytes:
            return genl(fam, uapi.MULTIC_CMD_GET_ENTRY, [])

        def change() -> bytes:
            key = [
                ("MULTIC_A_SERVER_ADDR", f"10.0.2.{rng.randrange(1, 255)}"),
                ("MULTIC_A_PORT", rng.randrange(1, 5)),
            ]
            if rng.random() < 0.4:
                return genl(fam, uapi.MULTIC_CMD_DEL, key)
            return genl(fam, uapi.MULTIC_CMD_ADD, [*key, ("MULTIC_A_GROUP_ADDR", "239.1.1.4")])

    def do(sock: socket.socket, body: bytes, flags: int = 0) -> dict:
        nonlocal seq
        seq += 1
        sock.send(nlmsg(fam.fid, NLM_F_REQUEST | NLM_F_ACK | flags, seq, body))
        return answer(sock, seq, timeout)

    for _ in range(150):  # fill what is dumped first
        do(changer, change())
    for _ in range(rounds):
        if fam.name == "multis":  # a group of 100 members: a dump of several parts
            from ipaddress import IPv4Address

            full = memberarray.encode([IPv4Address(a) for a in pool[:100]])
            do(
                changer,
                genl(
                    fam,
                    uapi.MULTIS_CMD_JOIN,
                    [("MULTIS_A_GROUP_ADDR", group), ("MULTIS_A_MEMBERS", full)],
                ),
            )
        seq += 1
        dump_seq = seq
        dumper.send(nlmsg(fam.fid, NLM_F_REQUEST | NLM_F_ACK | NLM_F_DUMP, dump_seq, dump()))
        done = False
        while not done:
            if not select.select([dumper], [], [], timeout)[0]:
                raise NoAnswer(f"{fam.name}: dump {dump_seq:#x} stopped after {parts} parts")
            data = dumper.recv(8192)
            parts += 1
            offset = 0
            while offset + 16 <= len(data):
                length, kind, flags, mseq, _pid = struct.unpack_from("=IHHII", data, offset)
                intr += bool(flags & NLM_F_DUMP_INTR)
                if mseq == dump_seq and kind in (NLMSG_DONE, NLMSG_ERROR):
                    done = True
                offset += (max(length, 16) + 3) & ~3
            if not done:
                do(changer, change())
                changes += 1
    return {"dumps": rounds, "parts": parts, "changes": changes, "dump_intr": intr}
