"""The errors of the management API, one class per kind an operator must tell apart.

Every error carries a message that says what is wrong (and, where there is one,
what to do).  Errors that come from the kernel also carry its errno and its
extack text.  Each class carries its documented exit code (``exit_code``, docs/usage.md),
which the CLIs return.
"""

from __future__ import annotations

import errno as errno_codes
import os


class MulticastProxyError(Exception):
    """Base class: ``str(error)`` is the one line to show to the operator."""

    exit_code = 1

    def __init__(
        self, message: str, *, errno: int | None = None, extack: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errno = errno
        self.extack = extack

    def __str__(self) -> str:
        return self.message


class InvalidArgument(MulticastProxyError):
    """A bad input: malformed address, wrong kind of address, port out of range."""

    exit_code = 2


class NotFound(MulticastProxyError):
    """A group, member or client entry that does not exist."""

    exit_code = 3


class LimitReached(MulticastProxyError):
    """A limit (groups, members per group, client groups or entries) would be exceeded."""

    exit_code = 4


class ModuleNotLoaded(MulticastProxyError):
    """The generic netlink family is not registered: the kernel module is not loaded."""

    exit_code = 5

    def __init__(self, family: str, *others: str) -> None:
        if others:
            names = (family, *others)
            message = (
                f"none of the {', '.join(names)} kernel modules is loaded: run "
                + " or ".join(f"`service {name} start`" for name in names)
            )
        else:
            message = f"{family} kernel module is not loaded: run `service {family} start`"
        super().__init__(message, errno=errno_codes.ENOENT)
        self.family = family


class PermissionDenied(MulticastProxyError):
    """The caller lacks CAP_NET_ADMIN (changes) or cannot write the state directory."""

    exit_code = 6


class ConfigError(MulticastProxyError):
    """A state file that cannot be read, parsed, locked or written."""

    exit_code = 7


class NotRestored(ConfigError):
    """The kernel refused a change that would be saved: its state was not restored from the file.

    The kernel's configuration did not come from the state file (the module
    was loaded by something other than ``service start``, e.g. by modprobe),
    so saving it would replace the file with something else (ESTALE).
    """


class AlreadyExists(MulticastProxyError):
    """A conflicting object exists (for example a group with other options)."""

    exit_code = 8


class KernelError(MulticastProxyError):
    """Any other refusal or failure of the kernel, with its errno and extack text."""

    exit_code = 1


_BY_ERRNO: dict[int, type[MulticastProxyError]] = {
    errno_codes.EINVAL: InvalidArgument,
    errno_codes.ERANGE: InvalidArgument,
    errno_codes.EDOM: InvalidArgument,
    errno_codes.EADDRNOTAVAIL: InvalidArgument,
    errno_codes.EOPNOTSUPP: InvalidArgument,
    errno_codes.ENOENT: NotFound,
    errno_codes.ESRCH: NotFound,
    errno_codes.ENOSPC: LimitReached,
    errno_codes.E2BIG: LimitReached,
    errno_codes.EMLINK: LimitReached,
    errno_codes.ENFILE: LimitReached,
    errno_codes.EDQUOT: LimitReached,
    errno_codes.EPERM: PermissionDenied,
    errno_codes.EACCES: PermissionDenied,
    errno_codes.EEXIST: AlreadyExists,
    errno_codes.ESTALE: NotRestored,
}


# What the kernel refuses without CAP_NET_ADMIN (docs/design.md, "Control plane").
_NEEDS_ADMIN = "changes and the lists of members and entries need CAP_NET_ADMIN"


def from_errno(code: int, extack: str | None, default: str) -> MulticastProxyError:
    """The domain error for a kernel refusal.

    ``extack`` (the kernel's own words) is the message when there is one;
    otherwise ``default`` (what the caller was doing) plus the errno's text.
    """
    code = abs(code)
    kind = _BY_ERRNO.get(code, KernelError)
    text = (extack or "").strip()
    if kind is PermissionDenied:
        text = f"{text or default}: not permitted (run as root: {_NEEDS_ADMIN})"
    elif not text:
        text = f"{default}: {errno_codes.errorcode.get(code, code)} ({os.strerror(code)})"
    return kind(text, errno=code, extack=extack or None)
