"""What the agent configured in the kernel, kept in a file so that a restart knows it.

The kernel does not tell an agent's member from a static one, so the agent
keeps the set it added: multis members (group, member), the groups it
created, and multic entries (source, port, group).  Only these are ever
removed by the agent.  The file (JSON, written atomically after every change)
lives under /run/multicast-proxy/ (``$MULTICAST_PROXY_RUN_DIR``), one per
domain: it goes at reboot, as the kernel's dynamic state does.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

from ..addresses import IPAddress
from ..errors import ConfigError

DEFAULT_RUN_DIR = Path("/run/multicast-proxy")

Member = tuple[IPAddress, IPAddress]  # (group, member), of one family
EntryKey = tuple[IPAddress, int, IPAddress]  # (source, port, group), of one family


def run_dir() -> Path:
    return Path(os.environ.get("MULTICAST_PROXY_RUN_DIR", str(DEFAULT_RUN_DIR)))


def ledger_path(domain: str, directory: Path | None = None) -> Path:
    return (directory or run_dir()) / f"agent-{domain}.json"


@dataclass
class Ledger:
    path: Path
    members: set[Member] = field(default_factory=set)
    created_groups: set[IPAddress] = field(default_factory=set)
    entries: set[EntryKey] = field(default_factory=set)
    dirty: bool = False
    """Changed since the last successful save: saved again at the next chance."""

    @classmethod
    def load(cls, path: Path) -> Ledger:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, ValueError) as error:
            raise ConfigError(f"{path}: unreadable agent ledger ({error})") from None
        try:
            return cls(
                path,
                {(ip_address(g), ip_address(m)) for g, m in data["members"]},
                {ip_address(g) for g in data["created_groups"]},
                {(ip_address(s), int(p), ip_address(g)) for s, p, g in data["entries"]},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ConfigError(f"{path}: unreadable agent ledger ({error})") from None

    def save(self) -> None:
        data = {
            "version": 1,
            "members": sorted([str(g), str(m)] for g, m in self.members),
            "created_groups": sorted(str(g) for g in self.created_groups),
            "entries": sorted([str(s), p, str(g)] for s, p, g in self.entries),
        }
        temp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with temp.open("w", encoding="utf-8") as stream:
                json.dump(data, stream, indent=1)
                stream.flush()
                os.fsync(stream.fileno())
            temp.replace(self.path)
            self.dirty = False
        except OSError as error:
            raise ConfigError(
                f"{self.path}: cannot write the agent ledger ({error.strerror or error})"
            ) from None


def agent_managed(directory: Path | None = None) -> Ledger:
    """What every agent of this host (one per domain) configured: the union of
    their ledgers.  The state files leave it out (config.sync): a save, by the
    service's stop or after a CLI change, never makes an agent's member static.
    An unreadable ledger counts as empty (the save must not fail for it)."""
    union = Ledger(Path())
    for path in sorted((directory or run_dir()).glob("agent-*.json")):
        try:
            one = Ledger.load(path)
        except ConfigError:
            continue
        union.members |= one.members
        union.created_groups |= one.created_groups
        union.entries |= one.entries
    return union
