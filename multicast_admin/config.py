"""The persistent state: /etc/multicast-proxy/multis.json and multic.json.

The file of a side always equals its kernel state: every change made through
:func:`change_server` / :func:`change_client` (what the CLIs use) runs under
an exclusive lock, and once the kernel accepted it the file is rewritten
from the kernel's state read back, atomically (temporary file in the same
directory, fsync, rename, fsync of the directory).  A file that cannot be
parsed is refused with a clear error and left as it is; no change is made
while it is there.

The service calls :func:`save_server` / :func:`save_client` on stop and
:func:`restore_server` / :func:`restore_client` on start.  A restore reads
our file, or, when there is none yet, the old implementation's
/usr/local/etc/multi_{server,client}_startup_config (once: the kernel state
it produces is then saved in our format).

File format (``version`` 1)::

    {"format": "multicast-proxy/multis", "version": 1,
     "groups": [{"group": "239.1.1.1", "broadcast": false, "vrrp": false,
                 "members": ["10.0.0.1", "10.0.0.2"]}]}

    {"format": "multicast-proxy/multic", "version": 1,
     "entries": [{"server": "10.0.0.1", "port": 1234, "group": "239.1.1.1"}]}
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, Callable, TypeVar

from .addresses import MULTICAST, parse_ipv4
from .client import Client
from .errors import ConfigError, MulticastProxyError, PermissionDenied
from .server import Server

ENV_CONFIG_DIR = "MULTICAST_PROXY_CONFIG_DIR"
ENV_LOCK_DIR = "MULTICAST_PROXY_LOCK_DIR"
ENV_LEGACY_DIR = "MULTICAST_PROXY_LEGACY_DIR"
DEFAULT_CONFIG_DIR = Path("/etc/multicast-proxy")
DEFAULT_LOCK_DIR = Path("/run/lock/multicast-proxy")
DEFAULT_LEGACY_DIR = Path("/usr/local/etc")
FORMAT_VERSION = 1
LOCK_TIMEOUT = 30.0

SERVER = "multis"
CLIENT = "multic"
_LEGACY_NAMES = {SERVER: "multi_server", CLIENT: "multi_client"}

T = TypeVar("T")


def config_dir() -> Path:
    """Where the state files live: $MULTICAST_PROXY_CONFIG_DIR or /etc/multicast-proxy."""
    return Path(os.environ.get(ENV_CONFIG_DIR) or DEFAULT_CONFIG_DIR)


def lock_dir(state_dir: Path) -> Path:
    """Where the locks of ``state_dir`` live.

    $MULTICAST_PROXY_LOCK_DIR if set; else /run/lock/multicast-proxy for the
    default state directory; else (a state directory of its own, chosen by
    $MULTICAST_PROXY_CONFIG_DIR or --state-dir) beside its state files.
    """
    override = os.environ.get(ENV_LOCK_DIR)
    if override:
        return Path(override)
    return DEFAULT_LOCK_DIR if state_dir == DEFAULT_CONFIG_DIR else state_dir


def legacy_dir() -> Path:
    """Where the old implementation's files are: $MULTICAST_PROXY_LEGACY_DIR or /usr/local/etc."""
    return Path(os.environ.get(ENV_LEGACY_DIR) or DEFAULT_LEGACY_DIR)


# --- the configurations -------------------------------------------------------


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


@dataclass(frozen=True)
class ServerConfig:
    groups: tuple[GroupConfig, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": f"multicast-proxy/{SERVER}",
            "version": FORMAT_VERSION,
            "groups": [g.to_json() for g in self.groups],
        }


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


@dataclass(frozen=True)
class ClientConfig:
    entries: tuple[EntryConfig, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "format": f"multicast-proxy/{CLIENT}",
            "version": FORMAT_VERSION,
            "entries": [e.to_json() for e in self.entries],
        }


class _Invalid(Exception):
    """A problem in a file's content, said in a few words."""


def _address(value: object, what: str) -> IPv4Address:
    if not isinstance(value, str):
        raise _Invalid(f"{what} must be an address string, not {value!r}")
    try:
        return parse_ipv4(value, what)
    except MulticastProxyError as error:
        raise _Invalid(str(error)) from None


def _port(value: object, what: str) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise _Invalid(f"{what} must be a port 0-65535, not {value!r}")
    return value


def _list(data: dict, key: str, where: str) -> list:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise _Invalid(f"{where}{key} must be a list")
    return value


def _check_header(data: object, role: str) -> dict:
    if not isinstance(data, dict):
        raise _Invalid("the top level must be a JSON object")
    if data.get("format") != f"multicast-proxy/{role}":
        raise _Invalid(f'"format" must be "multicast-proxy/{role}", not {data.get("format")!r}')
    version = data.get("version")
    if version != FORMAT_VERSION:
        raise _Invalid(
            f'"version" {version!r} is not supported (this tool writes {FORMAT_VERSION})'
        )
    return data


def server_config_from_json(data: object) -> ServerConfig:
    """Our multis.json content as a ServerConfig; raises _Invalid."""
    top = _check_header(data, SERVER)
    groups = []
    for i, item in enumerate(_list(top, "groups", "")):
        where = f"groups[{i}]."
        if not isinstance(item, dict):
            raise _Invalid(f"groups[{i}] must be an object")
        flags = {}
        for key in ("broadcast", "vrrp"):
            flags[key] = item.get(key, False)
            if not isinstance(flags[key], bool):
                raise _Invalid(f"{where}{key} must be true or false")
        groups.append(
            GroupConfig(
                group=_address(item.get("group"), f"{where}group"),
                members=tuple(
                    _address(m, f"{where}members[{j}]")
                    for j, m in enumerate(_list(item, "members", where))
                ),
                **flags,
            )
        )
    return ServerConfig(tuple(groups))


def client_config_from_json(data: object) -> ClientConfig:
    """Our multic.json content as a ClientConfig; raises _Invalid."""
    top = _check_header(data, CLIENT)
    entries = []
    for i, item in enumerate(_list(top, "entries", "")):
        where = f"entries[{i}]."
        if not isinstance(item, dict):
            raise _Invalid(f"entries[{i}] must be an object")
        entries.append(
            EntryConfig(
                server=_address(item.get("server"), f"{where}server"),
                port=_port(item.get("port"), f"{where}port"),
                group=_address(item.get("group"), f"{where}group"),
            )
        )
    return ClientConfig(tuple(entries))


@dataclass(frozen=True)
class Imported:
    """A configuration read from the old implementation's file, with what was left out."""

    config: ServerConfig | ClientConfig
    path: Path
    skipped: tuple[str, ...] = ()


def server_config_from_legacy(data: object) -> tuple[ServerConfig, list[str]]:
    """The old ``{"multi_group_array": [{"group_ip", "member_array"}]}`` format.

    As the old CLI did, multicast members are skipped (with a note), groups
    that are not multicast become broadcast groups, and a group listed
    twice (an old generator bug) gets the union of its member lists.
    """
    if not isinstance(data, dict):
        raise _Invalid("the top level must be a JSON object")
    skipped: list[str] = []
    merged: dict[IPv4Address, list[IPv4Address]] = {}
    for i, item in enumerate(_list(data, "multi_group_array", "")):
        if not isinstance(item, dict):
            raise _Invalid(f"multi_group_array[{i}] must be an object")
        group = _address(item.get("group_ip"), f"multi_group_array[{i}].group_ip")
        members = merged.setdefault(group, [])
        for j, raw in enumerate(_list(item, "member_array", f"multi_group_array[{i}].")):
            member = _address(raw, f"multi_group_array[{i}].member_array[{j}]")
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
    if not isinstance(data, dict):
        raise _Invalid("the top level must be a JSON object")
    entries: dict[tuple[IPv4Address, int], EntryConfig] = {}
    for i, item in enumerate(_list(data, "multi_server_info_array", "")):
        where = f"multi_server_info_array[{i}]."
        if not isinstance(item, dict):
            raise _Invalid(f"multi_server_info_array[{i}] must be an object")
        entry = EntryConfig(
            server=_address(item.get("server_ip"), f"{where}server_ip"),
            port=_port(item.get("client_port"), f"{where}client_port"),
            group=_address(item.get("group_ip"), f"{where}group_ip"),
        )
        entries[(entry.server, entry.port)] = entry  # the old kernel kept the last one
    return ClientConfig(tuple(entries.values())), []


# --- the files ----------------------------------------------------------------


class StateFile:
    """One side's state file, its lock, and the old implementation's files."""

    def __init__(self, role: str, directory: Path | None = None) -> None:
        if role not in (SERVER, CLIENT):
            raise ValueError(role)
        self.role = role
        self.directory = Path(directory) if directory is not None else config_dir()
        self.path = self.directory / f"{role}.json"
        self.lock_path = lock_dir(self.directory) / f"{role}.lock"

    def legacy_paths(self, directory: Path | None = None) -> list[Path]:
        """The old startup file, then the old running file (if no stop ever renamed it)."""
        base = Path(directory) if directory is not None else legacy_dir()
        name = _LEGACY_NAMES[self.role]
        return [base / f"{name}_startup_config", base / f"{name}_running_config"]

    @contextlib.contextmanager
    def locked(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        """Hold the exclusive lock of this side (flock on :func:`lock_dir`/``<role>.lock``)."""
        try:
            self.lock_path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except PermissionError as error:
            raise PermissionDenied(
                f"cannot open {error.filename or self.lock_path}: run as root (changes need "
                f"the lock in {self.lock_path.parent})"
            ) from None
        except OSError as error:
            raise ConfigError(
                f"cannot open {error.filename or self.lock_path}: {error.strerror}"
            ) from None
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise ConfigError(
                            f"{self.lock_path} stayed locked for {timeout:.0f} s: another "
                            f"{self.role} change or the service is still running; try again"
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # releases the lock

    def read(self) -> object | None:
        """The parsed JSON of our file, None if there is none; ConfigError if unreadable."""
        return _read_json(self.path)

    def write(self, data: dict[str, Any]) -> None:
        """Replace the file atomically with ``data``."""
        text = json.dumps(data, indent=2) + "\n"
        try:
            self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.role}.json.", dir=self.directory)
        except PermissionError:
            raise PermissionDenied(f"cannot write in {self.directory}: run as root") from None
        except OSError as error:
            raise ConfigError(f"cannot write in {self.directory}: {error.strerror}") from None
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
                out.flush()
                os.fchmod(out.fileno(), 0o644)
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
            _fsync_directory(self.directory)
        except OSError as error:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise ConfigError(f"cannot write {self.path}: {error.strerror}") from None

    def keep_copy(self, suffix: str) -> Path | None:
        """Copy our file to ``<file><suffix>`` (for a restore that did not apply fully)."""
        if not self.path.exists():
            return None
        target = self.path.with_name(self.path.name + suffix)
        try:
            shutil.copy2(self.path, target)
        except OSError:
            return None
        return target


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_json(path: Path) -> object | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except PermissionError:
        raise PermissionDenied(f"cannot read {path}: run as root") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(_refusal(path, f"not valid JSON: {error}")) from None


def _refusal(path: Path, problem: str) -> str:
    return f"{path} is corrupt ({problem}); it was left as it is: fix it or move it away"


def read_server_config(state: StateFile) -> ServerConfig | None:
    """Our multis file, None if there is none; ConfigError if it is corrupt."""
    data = state.read()
    if data is None:
        return None
    try:
        return server_config_from_json(data)
    except _Invalid as problem:
        raise ConfigError(_refusal(state.path, str(problem))) from None


def read_client_config(state: StateFile) -> ClientConfig | None:
    """Our multic file, None if there is none; ConfigError if it is corrupt."""
    data = state.read()
    if data is None:
        return None
    try:
        return client_config_from_json(data)
    except _Invalid as problem:
        raise ConfigError(_refusal(state.path, str(problem))) from None


def import_legacy(state: StateFile, directory: Path | None = None) -> Imported | None:
    """The old implementation's configuration for this side, if it has a file."""
    for path in state.legacy_paths(directory):
        data = _read_json(path)
        if data is None:
            continue
        parse = server_config_from_legacy if state.role == SERVER else client_config_from_legacy
        try:
            config, skipped = parse(data)
        except _Invalid as problem:
            raise ConfigError(_refusal(path, str(problem))) from None
        return Imported(config, path, tuple(skipped))
    return None


# --- kernel <-> file ------------------------------------------------------------


def server_config_from_kernel(server: Server) -> ServerConfig:
    """The kernel's groups and members, in the kernel's order."""
    return ServerConfig(
        tuple(
            GroupConfig(
                group=g.address,
                members=tuple(m.address for m in server.members(g.address)),
                broadcast=g.broadcast,
                vrrp=g.vrrp,
            )
            for g in server.groups()
        )
    )


def client_config_from_kernel(client: Client) -> ClientConfig:
    """The kernel's entries, in the kernel's order."""
    return ClientConfig(tuple(EntryConfig(e.server, e.port, e.group) for e in client.entries()))


def change_server(
    server: Server, change: Callable[[Server], T], state: StateFile | None = None
) -> T:
    """Run ``change`` under the lock, then write the file from the kernel's state.

    A corrupt file refuses the change before anything is sent to the kernel.
    """
    state = state or StateFile(SERVER)
    with state.locked():
        read_server_config(state)
        result = change(server)
        _write_after_change(state, lambda: server_config_from_kernel(server).to_json())
    return result


def change_client(
    client: Client, change: Callable[[Client], T], state: StateFile | None = None
) -> T:
    """Run ``change`` under the lock, then write the file from the kernel's state."""
    state = state or StateFile(CLIENT)
    with state.locked():
        read_client_config(state)
        result = change(client)
        _write_after_change(state, lambda: client_config_from_kernel(client).to_json())
    return result


def _write_after_change(state: StateFile, snapshot: Callable[[], dict[str, Any]]) -> None:
    try:
        state.write(snapshot())
    except MulticastProxyError as error:
        raise ConfigError(
            f"the kernel was changed, but {state.path} was not updated: {error} "
            f"(`service {state.role} stop` saves the kernel's state)",
            errno=error.errno,
        ) from None


def save_server(server: Server, state: StateFile | None = None) -> ServerConfig:
    """Write the kernel's multis state to the file (the service's stop)."""
    state = state or StateFile(SERVER)
    with state.locked():
        config = server_config_from_kernel(server)
        state.write(config.to_json())
    return config


def save_client(client: Client, state: StateFile | None = None) -> ClientConfig:
    """Write the kernel's multic state to the file (the service's stop)."""
    state = state or StateFile(CLIENT)
    with state.locked():
        config = client_config_from_kernel(client)
        state.write(config.to_json())
    return config


@dataclass
class RestoreReport:
    """What a restore did.  ``ok`` is False when something could not be applied."""

    source: Path | None = None
    """The file the configuration came from (None: there was none, nothing to do)."""
    legacy: bool = False
    """It was the old implementation's file (our file was then written)."""
    applied: int = 0
    """Groups or entries now in the kernel."""
    failures: list[str] = field(default_factory=list)
    """One line per group or entry the kernel (or the checks) refused."""
    skipped: tuple[str, ...] = ()
    """Things of an old file that cannot be carried over (multicast members)."""
    kept_copy: Path | None = None
    """Where the full file was copied when something failed, so it is not lost."""

    @property
    def ok(self) -> bool:
        return not self.failures


def _load(state: StateFile, legacy: Path | None, read: Callable) -> tuple[Any, RestoreReport]:
    config = read(state)
    if config is not None:
        return config, RestoreReport(source=state.path)
    imported = import_legacy(state, legacy)
    if imported is not None:
        return imported.config, RestoreReport(
            source=imported.path, legacy=True, skipped=imported.skipped
        )
    return None, RestoreReport()


def restore_server(
    server: Server, state: StateFile | None = None, legacy: Path | None = None
) -> RestoreReport:
    """Make the kernel's multis state equal the file (the service's start).

    The kernel is cleared first unless it already holds exactly that state.
    Each group is applied with one all-or-nothing join; one refused group
    does not stop the others, and is reported.  On any failure the file is
    left untouched and also copied to ``multis.json.failed``.
    """
    state = state or StateFile(SERVER)
    with state.locked():
        config, report = _load(state, legacy, read_server_config)
        if config is None:
            return report
        if server_config_from_kernel(server) != config:
            server.clear()
            for group in config.groups:
                try:
                    server.join(
                        group.group, group.members, broadcast=group.broadcast, vrrp=group.vrrp
                    )
                except MulticastProxyError as error:
                    report.failures.append(f"group {group.group}: {error}")
        report.applied = len(server.groups())
        _finish(state, report, server_config_from_kernel(server).to_json())
    return report


def restore_client(
    client: Client, state: StateFile | None = None, legacy: Path | None = None
) -> RestoreReport:
    """Make the kernel's multic state equal the file (the service's start)."""
    state = state or StateFile(CLIENT)
    with state.locked():
        config, report = _load(state, legacy, read_client_config)
        if config is None:
            return report
        if client_config_from_kernel(client) != config:
            client.clear()
            for entry in config.entries:
                try:
                    client.add(entry.server, entry.port, entry.group, broadcast=entry.broadcast)
                except MulticastProxyError as error:
                    report.failures.append(f"entry {entry.server}:{entry.port}: {error}")
        report.applied = len(client.entries())
        _finish(state, report, client_config_from_kernel(client).to_json())
    return report


def _finish(state: StateFile, report: RestoreReport, kernel_state: dict[str, Any]) -> None:
    if report.failures:
        report.kept_copy = state.keep_copy(".failed")
        return
    if report.legacy:
        state.write(kernel_state)  # migrated: from now on our file is the state


__all__ = [
    "CLIENT",
    "SERVER",
    "ClientConfig",
    "EntryConfig",
    "GroupConfig",
    "RestoreReport",
    "ServerConfig",
    "StateFile",
    "change_client",
    "change_server",
    "client_config_from_kernel",
    "config_dir",
    "import_legacy",
    "legacy_dir",
    "read_client_config",
    "read_server_config",
    "restore_client",
    "restore_server",
    "save_client",
    "save_server",
    "server_config_from_kernel",
]
