"""The IPv4 multicast groups local applications joined: /proc/net/igmp of this namespace.

The kernel lists, per interface, each group with its number of users; a
group is joined while any interface has it.  The file is read locally (the
agent polls it, twice a second by default): it costs no etcd request.
"""

from __future__ import annotations

import sys
from ipaddress import IPv4Address
from pathlib import Path

PROC_IGMP = Path("/proc/net/igmp")


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


class Membership:
    """Reads the joined groups of the namespace the agent runs in."""

    def __init__(self, path: Path = PROC_IGMP) -> None:
        self.path = path

    def joined(self) -> set[IPv4Address]:
        try:
            return parse_igmp(self.path.read_text(encoding="ascii", errors="replace"))
        except FileNotFoundError:
            return set()
