"""Where the state lives, its lock, and writing it atomically.

A state file is replaced atomically: a temporary file in the same directory,
fsync, rename, fsync of the directory, so a crash at any point leaves either
the old file or the new one, whole.  Changes hold an exclusive ``flock`` on
the side's lock file (:func:`lock_dir`).  A file that cannot be parsed is
refused with a clear error and left as it is (:func:`refusal`).
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
from pathlib import Path
from typing import Any

from ..errors import ConfigError, PermissionDenied

ENV_CONFIG_DIR = "MULTICAST_PROXY_CONFIG_DIR"
ENV_LOCK_DIR = "MULTICAST_PROXY_LOCK_DIR"
ENV_LEGACY_DIR = "MULTICAST_PROXY_LEGACY_DIR"
DEFAULT_CONFIG_DIR = Path("/etc/multicast-proxy")
DEFAULT_LOCK_DIR = Path("/run/lock/multicast-proxy")
DEFAULT_LEGACY_DIR = Path("/usr/local/etc")
LOCK_TIMEOUT = 30.0


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


class StateFile:
    """One side's state file (``<role>.json``) and its lock (``<role>.lock``)."""

    def __init__(self, role: str, directory: Path | None = None) -> None:
        self.role = role
        self.directory = Path(directory) if directory is not None else config_dir()
        self.path = self.directory / f"{role}.json"
        self.lock_path = lock_dir(self.directory) / f"{role}.lock"

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
        return read_json(self.path)

    def write(self, data: dict[str, Any]) -> None:
        """Replace the file atomically with ``data`` (under :meth:`locked`).

        A temporary file left by a writer that was killed before its rename
        is removed: only the lock's holder writes, so any other is stale.
        """
        text = json.dumps(data, indent=2) + "\n"
        try:
            self.directory.mkdir(mode=0o755, parents=True, exist_ok=True)
            for stale in self.directory.glob(f".{self.role}.json.*"):
                with contextlib.suppress(OSError):
                    stale.unlink()
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
            fsync_directory(self.directory)
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


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_json(path: Path) -> object | None:
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
        raise ConfigError(refusal(path, f"not valid JSON: {error}")) from None


def refusal(path: Path, problem: str) -> str:
    return f"{path} is corrupt ({problem}); it was left as it is: fix it or move it away"
