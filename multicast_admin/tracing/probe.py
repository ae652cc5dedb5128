"""The BPF program on the modules' tracepoints, loaded with bcc.

bcc (Debian's python3-bpfcc, RHEL's python3-bcc) compiles the C text below
against the running kernel's headers, attaches one program per tracepoint,
and the programs hand each event to user space through a BPF ring buffer
(ordered across CPUs, so a datagram's copies not sent arrive before its
fanout).  Filters are compiled in: what is not asked for never leaves the
kernel.  :func:`preflight` says in one line what is missing before bcc is
even imported.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO

from .. import uapi
from ..errors import InvalidArgument, ModuleNotLoaded, MulticastProxyError, PermissionDenied
from .events import RAW_EVENT

TRACEFS = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))
SIDES = {"sender": "multis", "receiver": "multic"}


class MissingDependency(MulticastProxyError):
    """Something trace needs from the host that is not there: bcc, kernel headers, tracefs."""

    exit_code = 10


PROGRAM = r"""
enum event_kind { KIND_FANOUT, KIND_NOT_SENT, KIND_RESTORE, KIND_SKIP, KIND_UNMARKED };

struct event {
	u64 ts;
	u32 kind;
	u32 netns;
	u32 cpu;
	u32 pid;
	u8 group[4];
	u8 addr[4];	/* sender: the datagram's source; receiver: the server */
	u8 peer[4];	/* sender: the member; receiver: the copy's destination */
	u16 sport;
	u16 port;
	u32 len;
	u32 members;
	u32 sent;
	s32 reason;
	s32 err;
	u8 protocol;
	u8 tos;
	u8 marker;
	u8 pad;
} __attribute__((packed));

BPF_RINGBUF_OUTPUT(events, 64);
BPF_ARRAY(lost, u64, 1);

static __always_inline u32 addr4(const void *a)
{
	u32 v;

	__builtin_memcpy(&v, a, 4);
	return v;
}

static __always_inline int keep_group(const void *group)
{
#ifdef FILTER_GROUP
	if (addr4(group) != FILTER_GROUP)
		return 0;
#endif
	return 1;
}

static __always_inline int keep_rest(u32 netns, const void *addr, u16 port)
{
#ifdef FILTER_NETNS
	if (netns != FILTER_NETNS)
		return 0;
#endif
#ifdef FILTER_ADDR
	if (addr4(addr) != FILTER_ADDR)
		return 0;
#endif
#ifdef FILTER_PORT
	if (port != FILTER_PORT)
		return 0;
#endif
	return 1;
}

static __always_inline int keep(u32 netns, const void *group, const void *addr, u16 port)
{
	return keep_group(group) && keep_rest(netns, addr, port);
}

static __always_inline struct event *start(u32 kind, u32 netns)
{
	struct event *e = events.ringbuf_reserve(sizeof(struct event));
	int zero = 0;

	if (!e) {
		u64 *n = lost.lookup(&zero);

		if (n)
			__sync_fetch_and_add(n, 1);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts = bpf_ktime_get_ns();
	e->kind = kind;
	e->netns = netns;
	e->cpu = bpf_get_smp_processor_id();
	e->pid = (u32)bpf_get_current_pid_tgid();
	return e;
}

/* What every event of a side has, from its tracepoint's fields. */
#define SENDER_FIELDS(e, args)						\
	do {								\
		__builtin_memcpy((e)->group, (args)->group, 4);	\
		__builtin_memcpy((e)->addr, (args)->saddr, 4);	\
		(e)->sport = (args)->sport;				\
		(e)->port = (args)->dport;				\
	} while (0)

#define RECEIVER_FIELDS(e, args)					\
	do {								\
		__builtin_memcpy((e)->group, (args)->group, 4);	\
		__builtin_memcpy((e)->addr, (args)->server, 4);	\
		__builtin_memcpy((e)->peer, (args)->daddr, 4);	\
		(e)->sport = (args)->sport;				\
		(e)->port = (args)->port;				\
	} while (0)

#ifdef SENDER
TRACEPOINT_PROBE(multis, multis_fanout)
{
	struct event *e;

	if (!keep(args->netns, args->group, args->saddr, args->dport))
		return 0;
#ifdef DROPS_ONLY
	if (args->members && args->sent == args->members)
		return 0;
#endif
	e = start(KIND_FANOUT, args->netns);
	if (!e)
		return 0;
	SENDER_FIELDS(e, args);
	e->protocol = args->protocol;
	e->len = args->len;
	e->members = args->members;
	e->sent = args->sent;
	events.ringbuf_submit(e, 0);
	return 0;
}

TRACEPOINT_PROBE(multis, multis_not_sent)
{
	struct event *e;

	if (!keep(args->netns, args->group, args->saddr, args->dport))
		return 0;
	e = start(KIND_NOT_SENT, args->netns);
	if (!e)
		return 0;
	SENDER_FIELDS(e, args);
	__builtin_memcpy(e->peer, args->member, 4);
	e->reason = args->reason;
	e->err = args->err;
	events.ringbuf_submit(e, 0);
	return 0;
}
#endif

#ifdef RECEIVER
#ifndef DROPS_ONLY
TRACEPOINT_PROBE(multic, multic_restore)
{
	struct event *e;

	if (!keep(args->netns, args->group, args->server, args->port))
		return 0;
	e = start(KIND_RESTORE, args->netns);
	if (!e)
		return 0;
	RECEIVER_FIELDS(e, args);
	e->protocol = args->protocol;
	e->len = args->len;
	events.ringbuf_submit(e, 0);
	return 0;
}
#endif

TRACEPOINT_PROBE(multic, multic_skip)
{
	/* No entry: no group to match; the copy may be the one asked for. */
	int no_entry = args->reason == NO_ENTRY;
	struct event *e;

	if (!keep_rest(args->netns, args->server, args->port))
		return 0;
	if (!no_entry && !keep_group(args->group))
		return 0;
	e = start(KIND_SKIP, args->netns);
	if (!e)
		return 0;
	RECEIVER_FIELDS(e, args);
	e->reason = args->reason;
	events.ringbuf_submit(e, 0);
	return 0;
}

TRACEPOINT_PROBE(multic, multic_unmarked)
{
	struct event *e;

	if (!keep(args->netns, args->group, args->server, args->port))
		return 0;
	e = start(KIND_UNMARKED, args->netns);
	if (!e)
		return 0;
	RECEIVER_FIELDS(e, args);
	e->tos = args->tos;
	e->marker = args->marker;
	events.ringbuf_submit(e, 0);
	return 0;
}
#endif
"""


@dataclass(frozen=True)
class Filters:
    """What to trace: sides, namespace (None: all), group, server or source, port."""

    sides: tuple[str, ...]
    netns: int | None
    group: str | None = None
    server: str | None = None
    port: int | None = None
    drops_only: bool = False

    def cflags(self) -> list[str]:
        def be32(address: str) -> str:
            return str(int.from_bytes(socket.inet_aton(address), sys.byteorder))

        flags = [f"-D{side.upper()}" for side in self.sides]
        flags.append(f"-DNO_ENTRY={uapi.MULTIC_TRACE_NO_ENTRY}")
        if self.netns is not None:
            flags.append(f"-DFILTER_NETNS={self.netns}U")
        if self.group is not None:
            flags.append(f"-DFILTER_GROUP={be32(self.group)}U")
        if self.server is not None:
            flags.append(f"-DFILTER_ADDR={be32(self.server)}U")
        if self.port is not None:
            flags.append(f"-DFILTER_PORT={self.port}")
        if self.drops_only:
            flags.append("-DDROPS_ONLY")
        return flags


def tracefs() -> Path:
    for path in TRACEFS:
        if (path / "events").is_dir():
            return path
    raise MissingDependency("tracefs is not mounted: mount -t tracefs tracefs /sys/kernel/tracing")


def netns_of(name: str) -> int:
    """The inode of a network namespace: an `ip netns` name or a path to one
    (/proc/self/ns/net: the caller's)."""
    path = Path(name if "/" in name else f"/run/netns/{name}")
    try:
        inode = path.stat().st_ino
    except OSError as error:
        raise InvalidArgument(
            f"--netns {name}: no network namespace at {path} ({error.strerror})"
        ) from None
    return inode


def loaded_sides(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The wanted sides whose module's events are there (the module is loaded)."""
    events = tracefs() / "events"
    have = tuple(side for side in wanted if (events / SIDES[side]).is_dir())
    if not have:
        raise ModuleNotLoaded(*(SIDES[side] for side in wanted))
    return have


def preflight(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The sides to trace, or the one thing missing (privilege, module, headers)."""
    if os.geteuid() != 0:
        raise PermissionDenied(
            "trace needs root (CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN): run it with sudo"
        )
    sides = loaded_sides(wanted)
    release = os.uname().release
    if (
        not Path(f"/lib/modules/{release}/build/include").is_dir()
        and not Path("/sys/kernel/kheaders.tar.xz").exists()
    ):
        raise MissingDependency(
            f"kernel headers for {release} are missing, bcc needs them: "
            f"apt-get install linux-headers-{release} (Debian, Ubuntu) or "
            f"dnf install kernel-devel-{release} (RHEL, Fedora)"
        )
    return sides


# Where distributions install bcc's Python package (pure Python over libbcc):
# Debian's dist-packages, RHEL's site-packages of its platform Python, which
# may not be the interpreter running us; a venv sees none of them.
def system_sites() -> list[str]:
    found = {str(p.parent.parent) for p in Path("/usr").glob("lib*/python3*/site-packages/bcc/")}
    return ["/usr/lib/python3/dist-packages", *sorted(found, reverse=True)]


def import_bcc() -> ModuleType:
    """bcc's Python package, from this interpreter's path or the distribution's."""
    with contextlib.suppress(ImportError):
        return importlib.import_module("bcc")
    for site in system_sites():
        if (Path(site) / "bcc" / "__init__.py").is_file():
            sys.path.append(site)
            with contextlib.suppress(ImportError):
                return importlib.import_module("bcc")
    raise MissingDependency(
        "bcc is not installed: apt-get install python3-bpfcc (Debian, Ubuntu) "
        "or dnf install python3-bcc (RHEL, Fedora)"
    )


class Probe:
    """The compiled and attached program; :meth:`poll` hands over raw events."""

    def __init__(self, filters: Filters) -> None:
        bcc = import_bcc()
        with tempfile.TemporaryFile() as log:
            try:
                with _stderr_to(log):
                    self.bpf = bcc.BPF(text=PROGRAM, cflags=filters.cflags())
            except Exception as error:  # noqa: BLE001 (bcc raises bare Exception)
                log.seek(0)
                said = [ln for ln in log.read().decode(errors="replace").splitlines() if ln]
                why = next((ln for ln in said if "error" in ln), said[-1] if said else str(error))
                raise MulticastProxyError(
                    f"bcc could not load the trace program: {why.strip()}"
                ) from None

    def open(self, on_raw: Callable[[bytes], None]) -> None:
        def callback(_ctx: int, data: int, size: int) -> int:
            on_raw(ctypes.string_at(data, min(size, RAW_EVENT.size)))
            return 0

        self.bpf["events"].open_ring_buffer(callback)

    def poll(self, timeout_ms: int) -> None:
        self.bpf.ring_buffer_poll(timeout_ms)

    def lost(self) -> int:
        return sum(v.value for v in self.bpf["lost"].values())

    def close(self) -> None:
        self.bpf.cleanup()


@contextlib.contextmanager
def _stderr_to(log: IO[bytes]) -> Iterator[None]:
    """What clang and libbpf print (warnings about the kernel's own headers, or the
    error) goes to ``log``: the operator gets one line, from the caller."""
    saved = os.dup(2)
    try:
        os.dup2(log.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
