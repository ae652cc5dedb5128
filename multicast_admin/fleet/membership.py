"""The multicast groups local applications joined: /proc/net/igmp and /proc/net/igmp6.

The kernel lists, per interface, each IPv4 group (IGMP) and each IPv6 group
(MLD) with its number of users; a group is joined while any interface has
it.  The files are read locally (the agent polls them, twice a second by
default): they cost no etcd request.
"""

from __future__ import annotations

import sys
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from ..addresses import IPAddress

PROC_IGMP = Path("/proc/net/igmp")
PROC_IGMP6 = Path("/proc/net/igmp6")


def parse_igmp(text: str) -> set[IPv4Address]:
    """The groups of /proc/net/igmp's text (every interface)."""
    groups = set()
    for line in text.splitlines():
        if not line.startswith("\t\t"):
            continue  # a header or an interface line
        fields = line.split()
        if not fields:
            continue
        try:
            raw = int(fields[0], 16)
        except ValueError:
            continue
        # printed as the u32 the CPU reads from the big-endian address
        groups.add(IPv4Address(raw.to_bytes(4, sys.byteorder)))
    return groups


def parse_igmp6(text: str) -> set[IPv6Address]:
    """The groups of /proc/net/igmp6's text: one line per (interface, group),
    ``index name address users flags timer``, the address as 32 hex digits in
    network order (net/ipv6/mcast.c, igmp6_mc_seq_show)."""
    groups = set()
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or len(fields[2]) != 32:
            continue
        try:
            groups.add(IPv6Address(bytes.fromhex(fields[2])))
        except ValueError:
            continue
    return groups


class Membership:
    """Reads the joined groups (both families) of the namespace the agent runs in."""

    def __init__(self, path: Path = PROC_IGMP, path6: Path | None = PROC_IGMP6) -> None:
        self.path = path
        self.path6 = path6
        """None: IPv4 only (no IPv6 in this namespace, or a test's IGMP file alone)."""

    def joined(self) -> set[IPAddress]:
        groups: set[IPAddress] = set(parse_igmp(_read(self.path)))
        if self.path6 is not None:
            groups |= parse_igmp6(_read(self.path6))
        return groups


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except FileNotFoundError:  # no IPv6 (ipv6.disable=1), or not there yet
        return ""
