"""Kernel <-> file, once for both sides.

A :class:`Side` says what multis and multic differ in: the configuration
class, how to read the kernel's state as one, and how to put one of its
groups (entries) into the kernel.  Everything else is written once:

* :meth:`Side.change` (what the CLIs use) runs a change under the lock and,
  once the kernel accepted it, rewrites the file from the kernel's state read
  back.  A corrupt file refuses the change before anything is sent.  Every
  change is sent "only if restored": a kernel whose state did not come from
  the file (a module loaded by anything but the service, e.g. modprobe)
  refuses it, and the file is then restored into it first (:meth:`restore`),
  and the change made again.
* :meth:`Side.save` (the service's stop) writes the kernel's state, if the
  kernel says it was restored from the file; otherwise the file is kept.
* :meth:`Side.restore` (the service's start) makes the kernel equal the file,
  in one pass: one read of the (empty) kernel, then one command per group or
  entry, so the round trips grow with the number of groups, never with its
  square; then it tells the kernel the namespace is restored.

The kernel is the one that knows whether its state came from the file (a
mark per network namespace, set by the restore): the tools never replace a
file from a kernel that was not restored from it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar, Union

from ..client import Client
from ..errors import ConfigError, MulticastProxyError, NotRestored
from ..fleet.ledger import agent_managed
from ..server import Server
from .legacy import Imported, client_config_from_legacy, legacy_paths, server_config_from_legacy
from .schema import ClientConfig, EntryConfig, GroupConfig, Invalid, ServerConfig
from .store import StateFile, legacy_dir, read_json, refusal

Config = Union[ServerConfig, ClientConfig]
H = TypeVar("H", Server, Client)
C = TypeVar("C", ServerConfig, ClientConfig)
T = TypeVar("T")


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
    kernel: Any = None
    """The kernel's state after the restore (a ServerConfig or ClientConfig)."""

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class Side(Generic[H, C]):
    """What one side (multis or multic) is made of; the operations are shared."""

    config_class: type[C]
    """Its configuration: ROLE names the service, module and state file,
    LEGACY the old implementation's file prefix."""
    from_legacy: Callable[[object], tuple[C, list[str]]]
    from_kernel: Callable[[H], C]
    """The kernel's state, in the kernel's order."""
    put: Callable[[H, Any], None]
    """Put one group (entry) of a configuration into the kernel: one command."""
    open: Callable[[], H]
    """Connect to the kernel (ModuleNotLoaded if the module is not loaded)."""

    @property
    def name(self) -> str:
        return self.config_class.ROLE

    @property
    def legacy_name(self) -> str:
        return self.config_class.LEGACY

    def state_file(self, directory: Path | None = None) -> StateFile:
        return StateFile(self.name, directory)

    def read(self, state: StateFile) -> C | None:
        """Our file, None if there is none; ConfigError if it is corrupt."""
        data = state.read()
        if data is None:
            return None
        try:
            return self.config_class.from_json(data)
        except Invalid as problem:
            raise ConfigError(refusal(state.path, str(problem))) from None

    def import_legacy(self, directory: Path | None = None) -> Imported | None:
        """The old implementation's configuration of this side, if it has a file."""
        for path in legacy_paths(directory or legacy_dir(), self.legacy_name):
            data = read_json(path)
            if data is None:
                continue
            try:
                config, skipped = self.from_legacy(data)
            except Invalid as problem:
                raise ConfigError(refusal(path, str(problem))) from None
            return Imported(config, path, tuple(skipped))
        return None

    def change(
        self,
        handle: H,
        change: Callable[[H], T],
        state: StateFile | None = None,
        note: Callable[[str], None] | None = None,
    ) -> T:
        """Run ``change`` under the lock, then write the file from the kernel's state.

        The kernel refuses the change (NotRestored) if its state did not come
        from the file: the file is then restored first, and the change run
        again, so what the file held is never lost (``note`` hears about it).
        ``change`` must make its first kernel change before any other (each
        of the domain API's changes does): the refusal leaves nothing half done.
        """
        state = state or self.state_file()
        with state.locked():
            self.read(state)
            try:
                with handle.requiring_restored():
                    result = change(handle)
            except NotRestored:
                restored = self._restore_before_change(handle, state)  # needs no mark
                if note is not None:
                    note(
                        f"the {self.name} module was loaded without its saved state: "
                        f"restored {restored} first"
                    )
                with handle.requiring_restored():
                    result = change(handle)
            try:
                state.write(self.from_kernel(handle).to_json())
            except MulticastProxyError as error:
                raise ConfigError(
                    f"the kernel was changed, but {state.path} was not updated: {error} "
                    f"(`service {self.name} stop` saves the kernel's state)",
                    errno=error.errno,
                ) from None
        return result

    def _restore_before_change(self, handle: H, state: StateFile) -> str:
        """Restore the file into the kernel; what was restored, in words."""
        report = self._restore_locked(handle, state, None)
        if not report.ok:
            kept = f" (a copy is in {report.kept_copy})" if report.kept_copy else ""
            raise ConfigError(
                f"nothing changed: the {self.name} module was loaded without its saved state, "
                f"and restoring {report.source}{kept} into it failed: "
                + "; ".join(report.failures)
                + f". Run `service {self.name} restart`"
            )
        if report.source is None:
            return f"nothing ({state.path}: nothing saved)"
        return f"{report.kernel.summary()} from {report.source}"

    def save(self, handle: H, state: StateFile | None = None) -> C | None:
        """Write the kernel's state to the file (the service's stop).

        None, and the file left as it is, when the kernel says its state was
        not restored from the file: saving it would replace the file with a
        configuration that did not come from it (a module loaded empty, by modprobe).
        """
        state = state or self.state_file()
        with state.locked():
            if not handle.restored():
                return None
            config = self.from_kernel(handle)
            state.write(config.to_json())
        return config

    def restore(
        self, handle: H, state: StateFile | None = None, legacy: Path | None = None
    ) -> RestoreReport:
        """Make the kernel's state equal the file (the service's start).

        The kernel is cleared first unless it already holds exactly that
        state.  Each group (entry) is one all-or-nothing command; one refused
        does not stop the others, and is reported.  On any failure the file
        is left untouched and also copied to ``<file>.failed``.
        """
        state = state or self.state_file()
        with state.locked():
            return self._restore_locked(handle, state, legacy)

    def _restore_locked(self, handle: H, state: StateFile, legacy: Path | None) -> RestoreReport:
        config, report = self._load(state, legacy)
        if config is not None:
            self._apply(handle, state, config, report)
        if report.ok:
            # Nothing saved leaves the kernel as it is: there is nothing to lose.
            handle.set_restored()
        return report

    def _apply(self, handle: H, state: StateFile, config: C, report: RestoreReport) -> None:
        kernel = self.from_kernel(handle)
        if kernel != config:
            if kernel.items:
                handle.clear()
            for item in config.items:
                try:
                    self.put(handle, item)
                except MulticastProxyError as error:
                    report.failures.append(f"{item.label()}: {error}")
            # Every command is all or nothing: when the kernel accepted all
            # of them it holds the file's state, and reading it back would
            # cost more than the restore (decoding every member).  What it
            # refused, or an old file to migrate, is read back.
            kernel = self.from_kernel(handle) if report.failures or report.legacy else config
        report.kernel = kernel
        report.applied = len(kernel.items)
        if report.failures:
            report.kept_copy = state.keep_copy(".failed")
        elif report.legacy:
            state.write(kernel.to_json())  # migrated: from now on our file is the state

    def _load(self, state: StateFile, legacy: Path | None) -> tuple[C | None, RestoreReport]:
        config = self.read(state)
        if config is not None:
            return config, RestoreReport(source=state.path)
        imported = self.import_legacy(legacy)
        if imported is not None:
            report = RestoreReport(source=imported.path, legacy=True, skipped=imported.skipped)
            return imported.config, report  # type: ignore[return-value]
        return None, RestoreReport()


# --- what the sides differ in ---------------------------------------------------


def server_config_from_kernel(server: Server) -> ServerConfig:
    """The kernel's groups, less what `multicast-proxy agent` added (its ledger):
    an agent's member is never saved as static; a group the agent created is
    saved only when an operator put a member of their own into it."""
    agent = agent_managed()
    groups = []
    for g in server.groups():
        members = tuple(
            m.address
            for m in server.members(g.address)
            if (g.address, m.address) not in agent.members
        )
        if members or g.address not in agent.created_groups:
            groups.append(GroupConfig(g.address, members, broadcast=g.broadcast, vrrp=g.vrrp))
    return ServerConfig(tuple(groups))


def client_config_from_kernel(client: Client) -> ClientConfig:
    """The kernel's entries, less those `multicast-proxy agent` added."""
    agent = agent_managed().entries
    return ClientConfig(
        tuple(
            EntryConfig(e.server, e.port, e.group)
            for e in client.entries()
            if (e.server, e.port, e.group) not in agent
        )
    )


def put_group(server: Server, group: GroupConfig) -> None:
    server.create(group.group, group.members, broadcast=group.broadcast, vrrp=group.vrrp)


def put_entry(client: Client, entry: EntryConfig) -> None:
    client.add(entry.server, entry.port, entry.group, broadcast=entry.broadcast)


# (config class, from the old file, from the kernel, put one item, connect)
SERVER: Side[Server, ServerConfig] = Side(
    ServerConfig, server_config_from_legacy, server_config_from_kernel, put_group, Server.open
)
CLIENT: Side[Client, ClientConfig] = Side(
    ClientConfig, client_config_from_legacy, client_config_from_kernel, put_entry, Client.open
)
SIDES: dict[str, Side[Any, Any]] = {SERVER.name: SERVER, CLIENT.name: CLIENT}
