"""The agent: keeps this host's kernel and its own etcd keys equal to the domain's truth.

One loop, one thread, plus two of each session: the watch's reader and the
lease's keep-alive (:class:`KeepAlive`):

1. **Connect**: read the modules' roles, then, in one transaction (its
   revision R), what can change this host's kernel: the definitions
   always, the members on a sender, the sources on a receiver; and this
   agent's status and record.  Never the other hosts' records or
   statuses, nor the members on a receiver (most of a fleet): each agent
   reading every other's registration made a fleet's start O(N^2).  Keep
   the lease if it is still alive (its keys are what this agent has
   published) or grant a new one, start the keep-alive and a watch of the
   kernel's keys at R + 1 (no change missed or seen twice; two streams),
   publish this host's keys, reconcile.  When the roles change (a module
   loaded or unloaded), the session ends and a new one starts at once with
   the new set of keys.
2. **Run**: apply the watch's events, read the local IGMP joins every
   ``poll`` seconds and each module's GET_STATS every ``retry`` seconds
   (which modules are loaded, and their configuration generation);
   whenever something changed, publish and reconcile again.  A generation
   other than the one the last reconcile left means someone else changed
   the kernel (an operator, a `service start` restore, a module reload):
   reconcile.  At rest nothing is dumped.  A module too old to report a
   generation is dumped every ``kernel_check`` seconds instead, as before.
   The keep-alive refreshes
   the lease every TTL/3 on its own thread and connection, so a long
   reconcile or a slow kernel call never delays it.  etcd is never polled:
   only the lease is refreshed.
3. **etcd gone** (a failed request, a broken watch, an expired lease or a
   failed keep-alive): the
   kernel is left exactly as it is (fail static); retry with exponential
   backoff (0.2 s doubling to 3 s, jittered), then start at 1 with a fresh
   snapshot.

Kernel refusals are problems: logged once each, published in the agent's
status key, retried every ``retry`` seconds.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from ipaddress import ip_address
from typing import Callable

from ..addresses import IPAddress, check_member, family_name, parse_ip
from ..errors import InvalidArgument, MulticastProxyError
from .backend import KernelBackend, Probe, Roles
from .groups import GroupDefinition, ip_order
from .membership import Membership
from .settings import AgentSettings
from .store import KeyRange, Store, StoreUnavailable, Watch, WatchBroken
from .view import View

log = logging.getLogger("multicast-proxy.agent")

BACKOFF_FIRST = 0.2
BACKOFF_MAX = 3.0
"""Short enough that a change made during an outage takes effect within 5 s of
etcd's return; each wait is drawn from [backoff/2, backoff] so that a fleet
does not come back in one burst."""
KEEPALIVES_PER_TTL = 3
"""The lease is refreshed every TTL/3: two refreshes may fail or be late
before it lapses."""


FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


def default_address(settings: AgentSettings, version: int = 4) -> IPAddress:
    """The source address of the route to the first etcd endpoint, in family
    ``version`` (no packet is sent); OSError when the endpoint has no address
    of that family or no route leads there."""
    endpoint = settings.etcd.endpoints[0]
    family = FAMILIES[version]
    info = socket.getaddrinfo(endpoint.host, endpoint.port, family, socket.SOCK_DGRAM)
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        probe.connect(info[0][4])
        return ip_address(probe.getsockname()[0].split("%")[0])


def host_addresses(settings: AgentSettings) -> list[IPAddress]:
    """This host's addresses, the agent's identity first.

    At most one --address per family; a family without one gets the source
    address of the route to the first etcd endpoint in that family, if the
    endpoint has an address of that family (a name may have both).  The
    first is the one given first, else the IPv4 one.  A family left without
    an address is no part of this host's membership (the agent says so when
    the domain has groups of it)."""
    given: dict[int, IPAddress] = {}
    for text in settings.addresses:
        address = parse_ip(text, "--address")
        if address.version in given:
            raise InvalidArgument(
                f"--address {address}: {given[address.version]} is already this host's "
                f"IPv{address.version} address (give at most one per family)"
            )
        given[address.version] = address
    for address in given.values():
        try:
            check_member(address)
        except InvalidArgument as error:
            raise InvalidArgument(f"address {address} of this host: {error}") from None
    found = dict(given)
    errors = []
    refused = False
    for version in (4, 6):
        if version in found:
            continue
        try:
            address = default_address(settings, version)
            check_member(address)
        except OSError as error:
            errors.append(f"IPv{version}: {error.strerror or error}")
            continue
        except InvalidArgument as error:  # etcd on this host: its loopback address
            errors.append(f"IPv{version}: address {address} of this host: {error}")
            refused = True
            continue
        found[version] = address
    if not found:
        # no route (yet) is retried by the service; an unusable address is not
        kind = InvalidArgument if refused else StoreUnavailable
        raise kind(
            f"no address of this host towards {settings.etcd.endpoints[0]} "
            f"({'; '.join(errors)}): give --address"
        )
    first = list(given) + [v for v in (4, 6) if v not in given]
    return [found[v] for v in first if v in found]


class KeepAlive:
    """Refreshes one lease every TTL/3 on a thread of its own.

    Owned by one session: started once the lease is known, stopped (and
    joined) when the session ends, whatever ended it.  It uses a Store of its
    own (its own HTTP connection), so it never waits for a request of the
    loop's.  A refresh that fails (a timeout on a loaded etcd) is retried
    every TTL/9 while the lease may still be alive; once a whole TTL passed
    since the last refresh that succeeded, or when etcd answers that the
    lease is gone (TTL <= 0), it stops and sets :attr:`lost`: the loop then
    ends the session (fail static, and the next session registers again).
    One late answer does not throw a live registration away.
    """

    def __init__(self, store: Store, lease: int, ttl: float) -> None:
        self.store = store
        self.lease = lease
        self.ttl = ttl
        self.interval = ttl / KEEPALIVES_PER_TTL
        self.lost = threading.Event()
        self.error: StoreUnavailable | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="etcd-keepalive", daemon=True)

    def start(self) -> KeepAlive:
        self._thread.start()
        return self

    def _run(self) -> None:
        last_ok = time.monotonic()
        wait = self.interval
        while not self._stop.wait(wait):
            try:
                ttl = self.store.keepalive(self.lease)
            except StoreUnavailable as error:
                if time.monotonic() - last_ok >= self.ttl:  # lapsed by now, for certain
                    self._fail(error)
                    return
                wait = self.interval / KEEPALIVES_PER_TTL
                continue
            if ttl <= 0:
                self._fail(StoreUnavailable(f"lease {self.lease:x} expired"))
                return
            last_ok = time.monotonic()
            wait = self.interval

    def _fail(self, error: StoreUnavailable) -> None:
        if not self._stop.is_set():
            self.error = error
            self.lost.set()

    def check(self) -> None:
        """Raise the keep-alive's error once it lost the lease."""
        if self.lost.is_set():
            raise self.error or StoreUnavailable(f"lease {self.lease:x} lost")

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self.store.close()


@dataclass
class AgentState:
    """What the agent last knew; read by tests and reported in its status key."""

    connected: bool = False
    roles: Roles = field(default_factory=lambda: Roles(False, False))
    problems: list[str] = field(default_factory=list)
    reconciled_revision: int = 0


class Agent:
    def __init__(
        self,
        settings: AgentSettings,
        addresses: Sequence[IPAddress],
        store: Store,
        kernel: KernelBackend,
        membership: Membership,
        *,
        poll: float = 0.5,
        retry: float = 5.0,
        kernel_check: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.address = addresses[0]
        """The agent's identity: its key is agents/<address>."""
        self.by_family = {a.version: a for a in addresses}
        """This host's address in each family it has one (host_addresses)."""
        if len(self.by_family) != len(addresses):
            raise ValueError(f"one address per family: {list(map(str, addresses))}")
        self.store = store
        self.kernel = kernel
        self.membership = membership
        self.poll = poll
        self.retry = retry
        self.kernel_check = kernel_check
        self.clock = clock
        self.state = AgentState()
        self.lease = 0
        self.published: dict[str, str] = {}
        self.static_joins = {parse_ip(g, "--join group") for g in settings.join}
        self.revoke_on_exit = True
        """False leaves the lease to expire, as a killed agent does (tests)."""
        self._logged: set[str] = set()

    # --- the loop ----------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        backoff = BACKOFF_FIRST
        while not stop.is_set():
            try:
                self._session(stop)
            except (StoreUnavailable, WatchBroken) as error:
                if self.state.connected:
                    log.warning("etcd: %s; kernel state left as it is", error)
                self.state.connected = False
                wait = random.uniform(backoff / 2, backoff)
                log.info("etcd: retrying in %.1f s", wait)
                stop.wait(wait)
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
        self._leave()

    def _session(self, stop: threading.Event) -> None:
        self.state.roles = self.kernel.probe().roles
        watched = self._watched()
        host = self.store.layout.host(str(self.address))
        mine = [KeyRange(self.store.layout.agent(str(self.address))), KeyRange(host)]
        snapshot = self.store.snapshot(watched + mine)  # one transaction: one revision
        view = View.of(self.store.layout, snapshot)
        if not self.lease or self.store.keepalive(self.lease) <= 0:
            self.lease = self.store.grant(self.settings.ttl)
            self.published = {h: v for h, v in view.values.items() if h == host and self._mine(v)}
        else:  # a live lease's keys are what etcd has of ours (a member or source key is "")
            self.published = {k: view.values.get(k, "") for k in self.store.lease_keys(self.lease)}
            if host in view.values and self._mine(view.values[host]):
                self.published[host] = view.values[host]
        keepalive = KeepAlive(self.store.twin(), self.lease, self.settings.ttl).start()
        try:
            watch = self.store.watch(snapshot.revision + 1, watched)
            try:
                self.state.connected = True
                log.info(
                    "etcd: connected, domain %s at revision %d", view.layout.domain, view.revision
                )
                self._loop(stop, view, watch, keepalive)
            finally:
                watch.close()
        finally:
            keepalive.stop()

    def _loop(self, stop: threading.Event, view: View, watch: Watch, keepalive: KeepAlive) -> None:
        next_probe = 0.0
        next_retry = 0.0
        next_check = self.clock() + self.kernel_check
        blind = False  # a loaded module reports no generation: dump every kernel_check
        joined: set[IPAddress] | None = None
        changed = True
        while not stop.is_set():
            keepalive.check()
            for event in watch.events(self.poll):
                view.apply(event)
                if self.published.get(event.key) is not None and event.value is None:
                    del self.published[event.key]  # someone removed our key: publish again
                    changed = True
                elif self._matters(event.key):
                    changed = True
            now = self.clock()
            if now >= next_probe:
                probe = self.kernel.probe()
                if probe.roles != self.state.roles:
                    log.info("roles now %s: watching anew", "+".join(probe.roles.names()) or "none")
                    return  # another set of keys to watch: a new session (no backoff)
                changed |= self._moved(probe)
                blind = None in probe.generations.values()
                next_probe = now + self.retry
            seen = self.membership.joined()
            if seen != joined:
                joined, changed = seen, True
            if self.state.problems and now >= next_retry:
                changed = True
            if blind and now >= next_check:  # an old module: it may have changed unseen
                changed = True
            if changed:
                self._reconcile(view, joined)
                next_retry = now + self.retry
                next_check = now + self.kernel_check
                changed = False

    # --- one round ---------------------------------------------------------

    def _reconcile(self, view: View, joined: set[IPAddress]) -> None:
        every = view.definitions()
        # a family this host has no address of is no part of its membership
        definitions = {g: d for g, d in every.items() if g.version in self.by_family}
        roles = self.state.roles
        mine = set(self.by_family.values())
        problems = []
        if roles.sender:
            members = view.members()
            wanted = {}
            for group in definitions:
                wanted[group], mixed = _same_family(group, members.get(group, set()) - mine)
                problems += [_mixed(group, "member", m) for m in mixed]
            problems += self._kernel(lambda: self.kernel.apply_sender(wanted, definitions))
        if roles.receiver:
            sources = view.sources()
            entries = {}
            for group, spec in definitions.items():
                good, mixed = _same_family(group, sources.get(group, set()) - mine)
                problems += [_mixed(group, "source", s) for s in mixed]
                entries.update({(source, spec.port): group for source in good})
            problems += self._kernel(lambda: self.kernel.apply_receiver(entries, definitions))
        problems += self._missing_families(every, joined)
        if self.static_joins and not roles.receiver:
            problems.append("--join: multic is not loaded here, so this host is no member")
        for group in sorted(self.static_joins - set(every), key=ip_order):
            problems.append(f"--join {group}: not a group defined in domain {view.layout.domain}")
        for text in problems:
            if text not in self._logged:
                log.error("%s", text)
        self._logged = set(problems)
        self.state.problems = problems
        self.state.reconciled_revision = view.revision
        self._publish(view, definitions, joined | self.static_joins)

    def _watched(self) -> list[KeyRange]:
        """What this session watches, for its roles: the definitions, and the
        members on a sender, the sources on a receiver (both: one range, the
        two are adjacent).  One HTTP stream per range (store.Watch): two.

        Not another host's status or record, nor, on a receiver only, the
        members: each agent watching every other's registration made a
        fleet's start O(N^2).  Nor this agent's own status, record and (on a
        host of one role) member or source keys: those change only by its
        own writes, or by a removal by hand (etcdctl), which is put back at
        the next session or the next change of that key, not at once
        (docs/design.md, "One loop per agent")."""
        layout = self.store.layout
        roles = self.state.roles
        ranges = [layout.kind("groups")]
        if roles.sender and roles.receiver:
            ranges.append(layout.kinds("members", "sources"))
        elif roles.sender:
            ranges.append(layout.kind("members"))
        elif roles.receiver:
            ranges.append(layout.kind("sources"))
        return ranges

    def _moved(self, probe: Probe) -> bool:
        """Whether a module's configuration changed since the last reconcile
        left it (or that reconcile could not tell: None).  A module that
        reports no generation never says so: ``kernel_check`` covers it."""
        left = self.kernel.left
        return any(
            generation is not None and generation != left.get(side)
            for side, generation in probe.generations.items()
        )

    def _matters(self, key: str) -> bool:
        """Whether a change of ``key`` can change what this host's kernel
        should hold: a definition always; a member only on a sender (multis
        copies to members), a source only on a receiver (multic's entries).
        Another agent's status or record never does.  At a fleet's start
        every registration is an event for every agent: a receiver skips
        the members' ones."""
        kind = self.store.layout.split(key)[0]
        roles = self.state.roles
        return (
            kind == "groups"
            or (kind == "members" and roles.sender)
            or (kind == "sources" and roles.receiver)
        )

    def _mine(self, record: str) -> bool:
        """A host record this session may keep: this agent's, not a stopped one."""
        try:
            data = json.loads(record)
        except ValueError:
            return False
        return data.get("address") == str(self.address) and "stopped_at" not in data

    def _missing_families(
        self, definitions: dict[IPAddress, GroupDefinition], joined: set[IPAddress]
    ) -> list[str]:
        """The groups of a family this host has no address of, where it should
        take part: all of them on a sender (every sender is a source), the
        joined ones on a receiver."""
        roles = self.state.roles
        problems = []
        for version in (4, 6):
            if version in self.by_family:
                continue
            groups = [g for g in definitions if g.version == version]
            if not roles.sender:
                groups = [g for g in groups if roles.receiver and g in joined | self.static_joins]
            if groups:
                problems.append(
                    f"IPv{version} group{'s' if len(groups) > 1 else ''} "
                    f"{', '.join(map(str, groups))}: this host has no IPv{version} address "
                    f"(give --address): it is neither a source nor a member of "
                    f"{'them' if len(groups) > 1 else 'it'}"
                )
        return problems

    @staticmethod
    def _kernel(apply: Callable[[], list[str]]) -> list[str]:
        try:
            return apply()
        except MulticastProxyError as error:
            return [str(error)]

    def _publish(
        self, view: View, definitions: dict[IPAddress, GroupDefinition], joined: set[IPAddress]
    ) -> None:
        layout = self.store.layout
        roles = self.state.roles
        status = self._status(view.revision)
        host = layout.host(str(self.address))
        keys = {
            layout.agent(str(self.address)): json.dumps(status),
            # the same, kept when the lease goes: `status` shows the host expired
            host: json.dumps({**status, "ttl": self.settings.ttl, "written_at": _now()}),
        }
        for group, spec in definitions.items():
            me = str(self.by_family[group.version])
            if roles.sender:
                keys[layout.source(str(group), me)] = ""
            # a broadcast reaches every host: no application joins it (no IGMP)
            if roles.receiver and (group in joined or spec.broadcast):
                keys[layout.member(str(group), me)] = ""
        # the revision and the time alone do not make a write: compared without them
        puts = [
            (key, value, 0 if key == host else self.lease)
            for key, value in keys.items()
            if key not in self.published or _comparable(self.published[key]) != _comparable(value)
        ]
        deletes = [k for k in self.published if k not in keys]
        if puts or deletes:
            self.store.write(puts, deletes)  # one request (a transaction), not one per key
        for key, value, _lease in puts:
            self.published[key] = value
        for key in deletes:
            del self.published[key]

    def _status(self, revision: int) -> dict:
        return {
            "address": str(self.address),
            "addresses": [str(a) for a in self.by_family.values()],
            "hostname": socket.gethostname(),
            "roles": self.state.roles.names(),
            "in_step": not self.state.problems,
            "problems": self.state.problems,
            "revision": revision,
        }

    def _leave(self) -> None:
        """Stop: revoke the lease so that peers drop this host now; the kernel stays as it is.

        The host's record says it stopped (and when), so `status` does not
        show it as expired."""
        if self.lease and self.revoke_on_exit:
            host = self.store.layout.host(str(self.address))
            try:
                record = json.loads(self.published.get(host) or "{}")
                record.update(self._status(record.get("revision", 0)), stopped_at=_now())
                record.update(ttl=self.settings.ttl, written_at=record["stopped_at"])
                self.store.write([(host, json.dumps(record), 0)], [])
                self.store.revoke(self.lease)
            except StoreUnavailable as error:
                log.warning("etcd: could not revoke the lease (%s): it expires by itself", error)
        self.lease = 0


def _now() -> str:
    """This host's wall clock, UTC, to the second (ISO 8601)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _same_family(group: IPAddress, hosts: set[IPAddress]) -> tuple[set[IPAddress], list[IPAddress]]:
    """(the hosts of the group's family, the others sorted)."""
    good = {h for h in hosts if h.version == group.version}
    return good, sorted(hosts - good, key=ip_order)


def _mixed(group: IPAddress, what: str, host: IPAddress) -> str:
    """A key of another writer (the agents publish one family per group):
    refused here as the kernel would, without holding the group's others."""
    return (
        f"group {group}: {what} {host} is {family_name(host)}, the group is "
        f"{family_name(group)} (one family per group): left out"
    )


def _comparable(value: str) -> str:
    """A key's value less what changes without a real change (the revision, the time)."""
    if not value.startswith("{"):
        return value
    data = json.loads(value)
    for volatile in ("revision", "written_at"):
        data.pop(volatile, None)
    return json.dumps(data, sort_keys=True)
