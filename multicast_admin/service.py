"""The service: ``service multis start|stop|restart|status`` (and multic).

One implementation behind the SysV init scripts and the systemd units (both
call the ``multicast-proxy-service`` console entry point)::

    start    load the kernel module, then restore the saved state into it
    stop     save the running state, then unload the module
    restart  stop, then start
    status   module loaded or not, what it holds, where the state is saved

Start and stop are idempotent: starting a running service or stopping a
stopped one says so and succeeds.  Start is all or nothing: a saved state
file that cannot be read refuses the start before the module is loaded (the
file is left exactly as it is, never replaced), and a restore the kernel
refuses unloads the module again.  Stop saves before it unloads and keeps the
module loaded if it could not save, so no configuration is ever lost by a
stop.

Exit codes are the LSB init-script ones (:class:`Exit`); ``status`` answers
0 when running and 3 when stopped.  State is per network namespace: the
service saves and restores the namespace it runs in (the host's, normally);
unloading the module discards the configuration of every namespace.

The kernel module comes from, in this order: an explicit ``--ko PATH``; the
module installed for the running kernel (anything ``modinfo`` finds, e.g.
/lib/modules/KVER/extra/multis.ko from the RPM or DKMS's build), loaded with
modprobe so /etc/modprobe.d options apply; a development tree named by
``$MULTICAST_PROXY_KO_DIR`` (holding ``multis.ko`` or ``multis/multis.ko``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable, Protocol, TextIO

from . import config, lean
from .errors import ConfigError, ModuleNotLoaded, MulticastProxyError

KO_DIR_ENV = "MULTICAST_PROXY_KO_DIR"


class Exit(IntEnum):
    """LSB exit codes (init scripts and ``status``)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_RUNNING = 3  # status only
    NO_PRIVILEGE = 4
    NOT_INSTALLED = 5
    NOT_CONFIGURED = 6  # the saved state cannot be used


@dataclass(frozen=True)
class Role:
    """One of the two services."""

    name: str
    """Service, kernel module and generic netlink family name."""
    side: str
    package: str
    """The RPM that installs it (named in messages)."""

    @property
    def ko_name(self) -> str:
        return f"{self.name}.ko"


ROLES = {
    "multis": Role("multis", "server", "multi_server"),
    "multic": Role("multic", "client", "multi_client"),
}


class ServiceError(MulticastProxyError):
    """A step of start/stop failed; ``code`` is the exit code to return."""

    def __init__(self, message: str, code: Exit = Exit.FAILED) -> None:
        super().__init__(message)
        self.code = code


# --------------------------------------------------------------------------- module


class ModuleLoader(Protocol):
    """Loading and unloading one kernel module (a double in the unit tests)."""

    def loaded(self, name: str) -> bool: ...

    def installed(self, name: str) -> Path | None: ...

    def load(self, name: str, path: Path | None) -> None: ...

    def unload(self, name: str) -> None: ...


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _run(argv: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


class Kmod:
    """The real thing: /sys/module, modinfo, modprobe, insmod, rmmod."""

    def __init__(self, run: Runner = _run, sys_module: Path = Path("/sys/module")) -> None:
        self.run = run
        self.sys_module = sys_module

    def loaded(self, name: str) -> bool:
        # initstate exists for loadable modules only ("live", "coming", "going")
        state = self.sys_module / name / "initstate"
        try:
            return state.read_text().strip() in ("live", "coming")
        except OSError:
            return False

    def installed(self, name: str) -> Path | None:
        """The module file depmod knows for the running kernel, if any."""
        proc = self.run(["modinfo", "-n", name])
        path = proc.stdout.strip()
        return Path(path) if proc.returncode == 0 and path.startswith("/") else None

    def load(self, name: str, path: Path | None) -> None:
        if path is None:
            self._check(["modprobe", name], f"cannot load the {name} kernel module")
            return
        # insmod resolves nothing: load what the file depends on first (multic
        # needs nf_defrag_ipv4), as modprobe would for an installed module.
        proc = self.run(["modinfo", "-F", "depends", str(path)])
        for dep in proc.stdout.strip().split(",") if proc.returncode == 0 else ():
            if dep:
                self._check(["modprobe", dep], f"cannot load {dep}, which {name} needs")
        self._check(["insmod", str(path)], f"cannot load the {name} kernel module")

    def unload(self, name: str) -> None:
        self._check(["rmmod", name], f"cannot unload the {name} kernel module")

    def _check(self, argv: Sequence[str], what: str) -> None:
        try:
            proc = self.run(argv)
        except OSError as err:
            raise ServiceError(f"{what}: {argv[0]}: {err.strerror}") from err
        if proc.returncode != 0:
            detail = (proc.stderr or proc.stdout).strip() or f"exit status {proc.returncode}"
            raise ServiceError(f"{what}: {' '.join(argv)}: {detail}")


# --------------------------------------------------------------------------- service


@dataclass
class Service:
    """start/stop/restart/status of one role.  Messages go to ``out``/``err``."""

    role: Role
    modules: ModuleLoader
    state: ConfigStateStore
    ko: Path | None = None
    """An explicit module file (``--ko``); None: installed, else $MULTICAST_PROXY_KO_DIR."""
    ko_dir: Path | None = None
    """The development tree ($MULTICAST_PROXY_KO_DIR), the last resort."""
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr
    is_root: bool = True

    def say(self, text: str) -> None:
        print(f"{self.role.name}: {text}", file=self.out, flush=True)

    def complain(self, text: str) -> None:
        print(f"{self.role.name}: {text}", file=self.err, flush=True)

    def _need_root(self, action: str) -> None:
        if not self.is_root:
            raise ServiceError(f"{action} needs root", Exit.NO_PRIVILEGE)

    def _module_file(self) -> tuple[Path | None, str]:
        """What to load (None: the installed module, by name) and how, in words."""
        name = self.role.name
        if self.ko is not None:
            return self._existing(self.ko), f"insmod {self.ko}"
        installed = self.modules.installed(name)
        if installed is not None:
            return None, f"modprobe, {installed}"
        if self.ko_dir is not None:
            for candidate in (
                self.ko_dir / self.role.ko_name,
                self.ko_dir / name / self.role.ko_name,
            ):
                if candidate.is_file():
                    return candidate, f"insmod {candidate}"
            raise ServiceError(
                f"no {self.role.ko_name} in {self.ko_dir} (${KO_DIR_ENV}): build the modules "
                "first (make modules)",
                Exit.NOT_INSTALLED,
            )
        kver = os.uname().release
        raise ServiceError(
            f"the {name} kernel module is not installed for the running kernel {kver} "
            f"(expected /lib/modules/{kver}/extra/{self.role.ko_name}): install the "
            f"{self.role.package} package built for this kernel, or multicast-proxy-dkms",
            Exit.NOT_INSTALLED,
        )

    @staticmethod
    def _existing(path: Path) -> Path:
        if not path.is_file():
            raise ServiceError(f"module file {path} does not exist", Exit.NOT_INSTALLED)
        return path

    # --- actions -----------------------------------------------------------

    def start(self) -> Exit:
        self._need_root("start")
        name = self.role.name
        loaded = self.modules.loaded(name)
        if loaded and self.state.restored():
            self.say(f"already running (the {name} module is loaded and restored): nothing to do")
            return Exit.OK
        try:
            self.state.check()
        except ConfigError as error:
            # config's message names the file, says it was kept and what to do
            raise ServiceError(f"not started: {error}", Exit.NOT_CONFIGURED) from error
        if loaded:
            # Loaded by something else (modprobe, a dependency):
            # its state did not come from the file, which is restored now.
            self.say(f"the {name} module is loaded, but its saved state was not restored")
        else:
            path, how = self._module_file()
            self.modules.load(name, path)
            self.say(f"module loaded ({how})")
        try:
            restored = self.state.restore()
        except MulticastProxyError as error:
            if loaded:
                # not ours to unload: other namespaces may be using it
                what = "The module stays loaded, not restored,"
            else:
                self._unload_after_failed_restore()
                what = "The module was unloaded again"
            raise ServiceError(
                f"not started: restoring {self.state.path} failed: {error}. {what} and the "
                "file left as it is",
                Exit.NOT_CONFIGURED if isinstance(error, ConfigError) else Exit.FAILED,
            ) from error
        if restored:
            self.say(f"started: restored {restored} from {self.state.path}")
        else:
            self.say(f"started: nothing to restore ({self.state.path}: nothing saved)")
        return Exit.OK

    def _unload_after_failed_restore(self) -> None:
        try:
            self.modules.unload(self.role.name)
        except ServiceError as error:
            self.complain(str(error))

    def stop(self) -> Exit:
        self._need_root("stop")
        name = self.role.name
        if not self.modules.loaded(name):
            self.say(f"not running (the {name} module is not loaded): nothing to do")
            return Exit.OK
        try:
            saved = self.state.save()
        except ModuleNotLoaded:
            saved = ""  # unloaded under our feet: nothing left to save
        except MulticastProxyError as error:
            raise ServiceError(
                f"not stopped: saving the running state to {self.state.path} failed: "
                f"{error}. The module stays loaded so nothing is lost"
            ) from error
        if saved is None:
            self.say(
                f"not saved: the kernel's state was not restored from {self.state.path} (the "
                "module was loaded without `service start`); the file was left as it is"
            )
        elif saved:
            self.say(f"saved {saved} to {self.state.path}")
        if self.modules.loaded(name):
            self.modules.unload(name)
        self.say("stopped (module unloaded)")
        return Exit.OK

    def restart(self) -> Exit:
        self.stop()
        return self.start()

    def try_restart(self) -> Exit:
        """Restart only if running (RPM upgrades, ``condrestart``)."""
        if not self.modules.loaded(self.role.name):
            self.say("not running: not restarted")
            return Exit.OK
        return self.restart()

    def status(self) -> Exit:
        name = self.role.name
        running = self.modules.loaded(name)
        print(
            f"{name}: {'running (module loaded)' if running else 'stopped (module not loaded)'}",
            file=self.out,
        )
        if running:
            try:
                lines = self.state.running()
                if not self.state.restored():
                    lines.append(f"saved state NOT restored: run `service {name} start`")
            except MulticastProxyError as error:
                lines = [f"cannot read the running state: {error}"]
            for line in lines or ["nothing configured"]:
                print(f"  {line}", file=self.out)
        try:
            saved = self.state.check()
        except ConfigError as error:
            saved = f"UNUSABLE: {error}"
        print(f"state file: {self.state.path} ({saved})", file=self.out, flush=True)
        return Exit.OK if running else Exit.NOT_RUNNING

    ACTIONS = ("start", "stop", "restart", "try-restart", "condrestart", "force-reload", "status")

    def run(self, action: str) -> Exit:
        """Run one action; report a failure as one line on stderr and its exit code."""
        handlers: dict[str, Callable[[], Exit]] = {
            "start": self.start,
            "stop": self.stop,
            "restart": self.restart,
            "force-reload": self.restart,
            "try-restart": self.try_restart,
            "condrestart": self.try_restart,
            "status": self.status,
        }
        try:
            return handlers[action]()
        except ServiceError as error:
            self.complain(str(error))
            return error.code
        except MulticastProxyError as error:
            self.complain(f"{action} failed: {error}")
            return Exit.FAILED


# --------------------------------------------------------------------------- entry point


class ConfigStateStore:
    """The saved state of one role, over :mod:`multicast_admin.config` (its :class:`Side`).

    ``open`` connects to the kernel (tests pass doubles); default: the side's own.
    """

    def __init__(
        self,
        role: Role,
        directory: Path | None = None,
        *,
        legacy_dir: Path | None = None,
        open: Callable[[], Any] | None = None,
        out: TextIO = sys.stdout,
    ) -> None:
        self.role = role
        self.side = config.SIDES[role.name]
        self.file = self.side.state_file(directory)
        self.legacy_dir = legacy_dir
        self.open = open or self.side.open
        self.out = out

    @property
    def path(self) -> Path:
        return self.file.path

    def check(self) -> str:
        """Read and validate the saved file without touching the kernel.

        Returns what it holds ("2 groups, 5 members"; "nothing saved" when
        there is no file); raises ConfigError when it cannot be used.
        """
        cfg = self.side.read(self.file)
        if cfg is not None:
            return cfg.summary()
        imported = self.side.import_legacy(self.legacy_dir)
        if imported is not None:
            return f"nothing saved yet; {imported.path} to migrate: {imported.config.summary()}"
        return "nothing saved"

    def restored(self) -> bool:
        """Whether the kernel says its state was restored from the saved file."""
        with self.open() as handle:
            return handle.restored()

    def save(self) -> str | None:
        """Write the kernel's running state to the file; what was saved.

        None (and the file kept) when the kernel was not restored from it.
        """
        with self.open() as handle:
            config = self.side.save(handle, self.file)
        return None if config is None else config.summary()

    def restore(self) -> str:
        """Apply the saved file to the kernel; what was restored ("" if nothing was saved)."""
        with self.open() as handle:
            report = self.side.restore(handle, self.file, self.legacy_dir)
        for note in report.skipped:
            print(f"{self.role.name}: not carried over from {report.source}: {note}", file=self.out)
        if not report.ok:
            kept = f" (a copy is in {report.kept_copy})" if report.kept_copy else ""
            raise ConfigError(
                f"the kernel refused part of {report.source}{kept}: " + "; ".join(report.failures)
            )
        if report.source is None:
            return ""
        what = report.kernel.summary()
        if report.legacy:
            return f"{what} (migrated from {report.source})"
        return what

    def running(self) -> list[str]:
        """The kernel's running state, one line per group or entry."""
        with self.open() as handle:
            return self.side.from_kernel(handle).lines()


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="multicast-proxy-service",
        description="Load/unload the multicast-proxy kernel modules and save/restore their "
        "configuration (what `service multis|multic ACTION` runs).",
    )
    parser.add_argument("service", choices=sorted(ROLES), help="multis (server) or multic (client)")
    parser.add_argument("action", choices=Service.ACTIONS)
    parser.add_argument("--ko", type=Path, help="load this module file (insmod) instead")
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"where the state is saved (default ${config.ENV_CONFIG_DIR}, else "
        f"{config.DEFAULT_CONFIG_DIR})",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    lean.use_lean_pyroute2()  # first: the restore and the save import the bindings
    args = parse_args(argv)
    role = ROLES[args.service]
    ko_dir = os.environ.get(KO_DIR_ENV)
    service = Service(
        role,
        Kmod(),
        ConfigStateStore(role, args.state_dir),
        ko=args.ko,
        ko_dir=Path(ko_dir) if ko_dir else None,
        is_root=os.geteuid() == 0,
    )
    return int(service.run(args.action))


if __name__ == "__main__":
    sys.exit(main())
