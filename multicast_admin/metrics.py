"""Every counter of both modules as Prometheus metrics (prometheus_client).

One :class:`KernelCollector` reads the kernel at each scrape, through the
same domain API the CLIs use (:class:`~multicast_admin.server.Server`,
:class:`~multicast_admin.client.Client`): nothing is cached, so a scrape
says what the kernel's counters are at that moment.  A module that is not
loaded is reported as ``multicast_proxy_module_loaded{module=...} 0`` and
has no other series; any other failure fails the scrape (Prometheus then
records ``up 0`` and the error).

Names (docs/usage.md lists them): ``multis_*`` for the sending side and
``multic_*`` for the receiving side; counters end in ``_total``; each
``drop_*`` counter of the kernel is one ``*_dropped_total`` series with a
``reason`` label (``no_member``, ``nomem``, ``no_route``, ``xmit``...), so
that a new reason in the kernel is a new label value, not a new metric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, fields
from typing import TypeVar

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from .client import Client
from .errors import ModuleNotLoaded
from .models import ClientCounters, ServerCounters
from .server import Server

DROP = "drop_"
H = TypeVar("H", Server, Client)

_HELP = {
    "datagrams": "original datagrams fanned out",
    "packets": "unicast copies handed to the stack",
    "bytes": "IP bytes of those copies",
    "dropped": "copies or datagrams not sent, by reason",
}
_CLIENT_HELP = {
    "packets": "copies restored to their group",
    "bytes": "IP bytes of the restored copies",
    "not_local": "marked copies of an entry not addressed to this host, left alone",
    "no_entry": "marked copies with no entry for their server and port, left alone",
    "not_udp": "marked IPv6 packets that are not plain UDP after extension headers, left alone",
    "dropped": "marked copies dropped, by reason",
}


@dataclass
class _Counters:
    """The counter families of one counter space (namespace, group, member, entry)."""

    prefix: str
    labels: Sequence[str]
    names: Sequence[str]
    help: dict[str, str]

    def __post_init__(self) -> None:
        self.families: dict[str, CounterMetricFamily] = {}
        for name in self.names:
            key = "dropped" if name.startswith(DROP) else name
            if key in self.families:
                continue
            labels = [*self.labels, "reason"] if key == "dropped" else list(self.labels)
            self.families[key] = CounterMetricFamily(
                f"{self.prefix}_{key}", self.help[key], labels=labels
            )

    def add(self, values: Sequence[str], counters: ServerCounters | ClientCounters) -> None:
        for name in self.names:
            value = getattr(counters, name)
            if name.startswith(DROP):
                self.families["dropped"].add_metric([*values, name[len(DROP) :]], value)
            else:
                self.families[name].add_metric(list(values), value)

    def __iter__(self) -> Iterator[Metric]:
        return iter(self.families.values())


def _gauge(name: str, text: str, value: int) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, value=value)


def _names(counters: type, only: Sequence[str] | None = None) -> list[str]:
    return [f.name for f in fields(counters) if only is None or f.name in only]


class KernelCollector:
    """A prometheus_client collector of both modules' counters, read at each scrape.

    ``members=False`` leaves out the per-member series (a group of thousands
    of members is thousands of series per counter).
    """

    def __init__(
        self,
        open_server: Callable[[], Server] = Server.open,
        open_client: Callable[[], Client] = Client.open,
        *,
        members: bool = True,
    ) -> None:
        self.open_server = open_server
        self.open_client = open_client
        self.members = members

    def describe(self) -> list[Metric]:
        # no describe at registration: a scrape, not the registration, reads the kernel
        return []

    def collect(self) -> Iterator[Metric]:
        loaded = GaugeMetricFamily(
            "multicast_proxy_module_loaded",
            "1 if the module is loaded (and its family answers), else 0",
            labels=["module"],
        )
        # both sockets are closed whatever a scrape runs into (the exporter lives long)
        with ExitStack() as opened:
            server = self._open(self.open_server, opened)
            loaded.add_metric(["multis"], int(server is not None))
            client = self._open(self.open_client, opened)
            loaded.add_metric(["multic"], int(client is not None))
            yield loaded
            if server is not None:
                yield from self._server(server)
            if client is not None:
                yield from self._client(client)

    @staticmethod
    def _open(opener: Callable[[], H], opened: ExitStack) -> H | None:
        try:
            return opened.enter_context(opener())
        except ModuleNotLoaded:
            return None

    def _server(self, server: Server) -> Iterator[Metric]:
        status = server.stats()
        total = _Counters("multis", (), _names(ServerCounters), _HELP)
        total.add((), status.stats)
        yield from total
        yield _gauge("multis_groups", "configured groups", status.group_count)
        yield _gauge("multis_max_groups", "the module's max_groups", status.max_groups)
        yield _gauge("multis_max_members", "the module's max_members", status.max_members)
        groups = _Counters("multis_group", ("group",), _names(ServerCounters), _HELP)
        size = GaugeMetricFamily("multis_group_members", "members of the group", labels=["group"])
        members = _Counters(
            "multis_member",
            ("group", "member"),
            _names(ServerCounters, ServerCounters.MEMBER_FIELDS),
            _HELP,
        )
        for group in server.groups():
            groups.add((str(group.address),), group.stats)
            size.add_metric([str(group.address)], group.member_count)
            if self.members:
                for member in server.members(group.address):
                    members.add((str(group.address), str(member.address)), member.stats)
        yield from groups
        yield size
        if self.members:
            yield from members

    def _client(self, client: Client) -> Iterator[Metric]:
        status = client.stats()
        total = _Counters("multic", (), _names(ClientCounters), _CLIENT_HELP)
        total.add((), status.stats)
        yield from total
        yield _gauge("multic_entries", "configured entries", status.entry_count)
        yield _gauge("multic_groups", "groups the entries restore to", status.group_count)
        yield _gauge("multic_max_groups", "the module's max_groups", status.max_groups)
        yield _gauge("multic_max_entries", "the module's max_entries", status.max_entries)
        entries = _Counters(
            "multic_entry",
            ("server", "port", "group"),
            _names(ClientCounters, ClientCounters.ENTRY_FIELDS),
            _CLIENT_HELP,
        )
        for entry in client.entries():
            entries.add((str(entry.server), str(entry.port), str(entry.group)), entry.stats)
        yield from entries
