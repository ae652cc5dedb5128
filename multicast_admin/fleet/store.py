"""etcd, through etcd3gw, and the key layout of a domain.

Everything of a domain lives under ``/multicast-proxy/<domain>/``:

    groups/<group>              {"port": P, "broadcast": b, "vrrp": b}   (no lease)
    groups-version              bumped by every group change, for the define rule
    agents/<address>            the agent's status (JSON), under its lease
    hosts/<address>             the same and when it was written (no lease): what
                                status shows of a host whose lease expired
    sources/<group>/<address>   "" under the sender's lease
    members/<group>/<address>   "" under the receiver's lease

etcd3gw gives the HTTP session (TLS, client certificates), the gRPC-gateway
paths and its error classes; the watch stream is read here, on a session of
its own, because etcd3gw's Watcher runs its callback in a thread pool and
drops the end of the stream and its errors: a fail-static agent must see a
broken watch at once (docs/design.md, "Fleet membership").
"""

from __future__ import annotations

import base64
import contextlib
import json
import queue
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import MulticastProxyError
from .settings import Endpoint, EtcdSettings

if TYPE_CHECKING:
    from etcd3gw.client import Etcd3Client
    from requests import Response, Session

API_PATH = "/v3/"  # etcd >= 3.4 (Debian 12 has 3.4.23)
TXN_OPS = 64


class StoreUnavailable(MulticastProxyError):
    """etcd cannot be reached, or refused the request."""

    exit_code = 9


def need_etcd3gw() -> None:
    """One clear error, not a traceback, where the etcd client library is missing."""
    try:
        import etcd3gw  # noqa: F401, PLC0415
    except ImportError:
        raise MulticastProxyError(
            "the etcd client library etcd3gw is not installed (pip install etcd3gw)"
        ) from None


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def prefix_end(prefix: str) -> str:
    """The range end that covers every key starting with ``prefix``."""
    raw = prefix.encode()
    return (raw[:-1] + bytes([raw[-1] + 1])).decode()


@dataclass(frozen=True)
class KeyRange:
    """Keys from ``key`` to ``end`` (excluded); ``end`` None: the one key ``key``."""

    key: str
    end: str | None = None

    @classmethod
    def prefix(cls, prefix: str) -> KeyRange:
        return cls(prefix, prefix_end(prefix))

    def request(self) -> dict[str, str]:
        """The key and range_end fields of a range or watch request."""
        fields = {"key": b64(self.key)}
        if self.end is not None:
            fields["range_end"] = b64(self.end)
        return fields


@dataclass(frozen=True)
class Layout:
    """The keys of one domain."""

    domain: str

    @property
    def root(self) -> str:
        return f"/multicast-proxy/{self.domain}/"

    def group(self, group: str) -> str:
        return f"{self.root}groups/{group}"

    @property
    def groups_version(self) -> str:
        return f"{self.root}groups-version"

    def agent(self, address: str) -> str:
        return f"{self.root}agents/{address}"

    def host(self, address: str) -> str:
        return f"{self.root}hosts/{address}"

    def source(self, group: str, address: str) -> str:
        return f"{self.root}sources/{group}/{address}"

    def member(self, group: str, address: str) -> str:
        return f"{self.root}members/{group}/{address}"

    def kind(self, kind: str) -> KeyRange:
        """Every key of one kind: groups, agents, hosts, sources or members."""
        return KeyRange.prefix(f"{self.root}{kind}/")

    def kinds(self, first: str, last: str) -> KeyRange:
        """Every key of the kinds from ``first`` to ``last`` in key order:
        ("members", "sources") is those two alone (no kind sorts between)."""
        return KeyRange(self.kind(first).key, self.kind(last).end)

    def split(self, key: str) -> tuple[str, ...]:
        """A key of the domain as its parts after the root: ('groups', G), ('members', G, A)."""
        return tuple(key[len(self.root) :].split("/"))


@dataclass(frozen=True)
class Entry:
    key: str
    value: str
    lease: int
    mod_revision: int


@dataclass(frozen=True)
class Snapshot:
    revision: int
    entries: dict[str, Entry]


@dataclass(frozen=True)
class Event:
    """One change seen by a watch: a put (with its value) or a delete."""

    key: str
    value: str | None
    revision: int


def _entry(kv: dict[str, Any]) -> Entry:
    return Entry(
        unb64(kv["key"]),
        unb64(kv.get("value", "")),
        int(kv.get("lease", 0)),
        int(kv.get("mod_revision", 0)),
    )


class Store:
    """One domain's connection to etcd: every call raises StoreUnavailable on failure."""

    def __init__(self, settings: EtcdSettings, timeout: float = 3.0) -> None:
        self.settings = settings
        self.layout = Layout(settings.domain)
        self.timeout = timeout
        self._current = 0
        self._clients: dict[Endpoint, Etcd3Client] = {}

    # --- transport -------------------------------------------------------

    def _client(self, endpoint: Endpoint) -> Etcd3Client:
        # etcd3gw and requests only when etcd is really asked: every other
        # multicast-proxy command (and --help) starts without them
        need_etcd3gw()
        from etcd3gw.client import Etcd3Client  # noqa: PLC0415

        client = self._clients.get(endpoint)
        if client is None:
            s = self.settings
            client = Etcd3Client(
                host=endpoint.host,
                port=endpoint.port,
                protocol=endpoint.scheme,
                ca_cert=str(s.cacert) if s.cacert else None,
                cert_cert=str(s.cert) if s.cert else None,
                cert_key=str(s.key) if s.key else None,
                timeout=self.timeout,
                api_path=API_PATH,
            )
            # Not the environment's proxies, netrc or REQUESTS_CA_BUNDLE: the
            # last one replaces a session's CA in requests (its verify merge),
            # so --etcd-cacert would be ignored on a host that sets it.
            client.session.trust_env = False
            if s.user is not None:
                reply = client.post(
                    client.get_url("/auth/authenticate"),
                    json={"name": s.user, "password": s.password},
                )
                client.session.headers["Authorization"] = reply["token"]
            self._clients[endpoint] = client
        return client

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST one gRPC-gateway request, trying each endpoint from the last good one."""
        need_etcd3gw()
        import requests  # noqa: PLC0415
        from etcd3gw import exceptions as etcd_errors  # noqa: PLC0415

        endpoints = self.settings.endpoints
        errors = []
        refused = False
        for step in range(len(endpoints)):
            index = (self._current + step) % len(endpoints)
            endpoint = endpoints[index]
            try:
                client = self._client(endpoint)
                reply = client.post(client.get_url(path), json=payload)
            except (etcd_errors.Etcd3Exception, requests.RequestException, OSError) as error:
                self._clients.pop(endpoint, None)  # the next call connects (and authenticates) anew
                errors.append(f"{endpoint}: {_reason(error)}")
                refused |= type(error) in (
                    etcd_errors.Etcd3Exception,
                    etcd_errors.InternalServerError,
                )
                continue
            self._current = index
            return reply
        what = "etcd refused the request" if refused else "etcd unreachable"
        raise StoreUnavailable(f"{what} ({'; '.join(errors)})")

    def twin(self) -> Store:
        """Another connection to the same domain (for a thread of its own: a
        Store is used by one thread at a time)."""
        return Store(self.settings, self.timeout)

    def close(self) -> None:
        for client in self._clients.values():
            client.session.close()
        self._clients.clear()

    # --- keys --------------------------------------------------------------

    def snapshot(self, ranges: Sequence[KeyRange] | None = None) -> Snapshot:
        """Every key of the domain (or of ``ranges``: read in one transaction,
        so at one revision) and the revision they are read at."""
        if ranges is None:
            reply = self.call("/kv/range", KeyRange.prefix(self.layout.root).request())
            kvs = reply.get("kvs", [])
        else:
            ops = [{"request_range": r.request()} for r in ranges]
            reply = self.call("/kv/txn", {"compare": [], "success": ops, "failure": []})
            kvs = [
                kv
                for response in reply.get("responses", [])
                for kv in response.get("response_range", {}).get("kvs", [])
            ]
        entries = {e.key: e for e in map(_entry, kvs)}
        return Snapshot(int(reply["header"]["revision"]), entries)

    def get(self, key: str) -> Entry | None:
        reply = self.call("/kv/range", {"key": b64(key)})
        kvs = reply.get("kvs", [])
        return _entry(kvs[0]) if kvs else None

    def put(self, key: str, value: str, lease: int = 0) -> None:
        payload: dict[str, Any] = {"key": b64(key), "value": b64(value)}
        if lease:
            payload["lease"] = lease
        self.call("/kv/put", payload)

    def delete(self, key: str) -> None:
        self.call("/kv/deleterange", {"key": b64(key)})

    def write(self, puts: list[tuple[str, str, int]], deletes: list[str]) -> None:
        """Puts (key, value, lease: 0 for none) and deletes in as few requests as
        can be: one transaction per TXN_OPS operations (etcd's --max-txn-ops
        is 128 by default), each all or nothing."""
        ops: list[dict] = []
        for key, value, lease in puts:
            put: dict[str, Any] = {"key": b64(key), "value": b64(value)}
            if lease:
                put["lease"] = lease
            ops.append({"request_put": put})
        ops += [{"request_delete_range": {"key": b64(key)}} for key in deletes]
        for start in range(0, len(ops), TXN_OPS):
            self.txn([], ops[start : start + TXN_OPS])

    def txn(self, compare: list[dict], success: list[dict]) -> bool:
        reply = self.call("/kv/txn", {"compare": compare, "success": success, "failure": []})
        return bool(reply.get("succeeded", False))

    # --- leases ------------------------------------------------------------

    def grant(self, ttl: int) -> int:
        return int(self.call("/lease/grant", {"TTL": ttl, "ID": 0})["ID"])

    def keepalive(self, lease: int) -> int:
        """The lease's TTL after the refresh; <= 0 when it has expired."""
        reply = self.call("/lease/keepalive", {"ID": lease})
        return int(reply.get("result", {}).get("TTL", -1))

    def revoke(self, lease: int) -> None:
        self.call("/kv/lease/revoke", {"ID": lease})

    def lease_keys(self, lease: int) -> list[str]:
        """The keys attached to a lease now (none once it has expired)."""
        reply = self.call("/kv/lease/timetolive", {"ID": lease, "keys": True})
        return [unb64(key) for key in reply.get("keys", [])]

    def time_to_live(self, lease: int) -> tuple[int, int]:
        """(seconds left, granted TTL) of a lease; (-1, 0) when it has expired.

        The gateway leaves out a field that is 0 (proto3 JSON): a live lease
        with less than a second left has no "TTL" (an expired one has -1)."""
        reply = self.call("/kv/lease/timetolive", {"ID": lease})
        return int(reply.get("TTL", 0)), int(reply.get("grantedTTL", 0))

    # --- watch -------------------------------------------------------------

    def watch(self, start_revision: int, ranges: Sequence[KeyRange] | None = None) -> Watch:
        """The domain's changes (or those of ``ranges``) from ``start_revision`` on:
        one stream, whatever the number of ranges."""
        endpoint = self.settings.endpoints[self._current]
        client = self._client(endpoint)
        if ranges is None:
            ranges = [KeyRange.prefix(self.layout.root)]
        return Watch(client, ranges, start_revision, self.timeout)


def _reason(error: BaseException) -> str:
    detail = str(getattr(error, "detail_text", "") or "")
    try:  # the gateway's answer: {"error": "etcdserver: ...", "code": N, "message": ...}
        data = json.loads(detail)
        detail = str(data.get("error") or data.get("message") or detail)
    except (ValueError, AttributeError):
        pass
    text = detail or str(error)
    if "Connection refused" in text:
        return "connection refused"
    if "timed out" in text.lower():
        return "timed out"
    text = " ".join(text.split()) or type(error).__name__
    return text[:200]


class WatchBroken(Exception):
    """The watch stream ended, failed or was cancelled (compaction): resync."""


class Watch:
    """The gRPC-gateway watch streams of some key ranges, one per range, each
    read by a thread of its own into one queue.

    One stream per range, not one stream with a create request per range:
    the gateway forwards a request body's messages to etcd while it already
    writes the first answer, and over HTTP/1.1 a body is not readable once
    the answer has begun, so on a loaded host the later create requests
    were lost (watches never made, changes never seen: tests/unit caught
    it).  The ranges do not overlap, so no key's events are mixed: each
    range's come in revision order.  A broken or cancelled stream breaks the
    whole.

    :meth:`events` yields the events that arrived (without blocking longer
    than asked) and raises WatchBroken once a stream is gone.
    """

    def __init__(
        self,
        client: Etcd3Client,
        ranges: Sequence[KeyRange],
        start_revision: int,
        timeout: float,
    ) -> None:
        self._queue: queue.Queue[Event | WatchBroken] = queue.Queue()
        self._closed = threading.Event()
        self._streams: list[tuple[Session, Response]] = []
        try:
            for key_range in ranges:
                self._streams.append(self._open(client, key_range, start_revision, timeout))
        except WatchBroken:
            self.close()
            raise
        for _session, response in self._streams:
            threading.Thread(
                target=self._read, args=(response,), name="etcd-watch", daemon=True
            ).start()

    @staticmethod
    def _open(
        client: Etcd3Client, key_range: KeyRange, start_revision: int, timeout: float
    ) -> tuple[Session, Response]:
        import requests  # noqa: PLC0415

        session = requests.Session()
        session.trust_env = False
        session.verify = client.session.verify
        session.cert = client.session.cert
        session.headers.update(client.session.headers)
        request = {"create_request": {**key_range.request(), "start_revision": start_revision}}
        try:
            response = session.post(
                client.get_url("/watch"), json=request, stream=True, timeout=(timeout, None)
            )
            response.raise_for_status()
        except (requests.RequestException, OSError) as error:
            session.close()
            raise WatchBroken(_reason(error)) from None
        return session, response

    def _read(self, response: Response) -> None:
        try:
            for line in response.iter_lines():
                if not line.strip():
                    continue
                result = json.loads(line).get("result", {})
                if result.get("canceled") or int(result.get("compact_revision", 0) or 0):
                    raise WatchBroken(
                        f"watch cancelled ({result.get('cancel_reason') or 'compacted'})"
                    )
                for event in result.get("events", []):
                    kv = event["kv"]
                    deleted = event.get("type") == "DELETE"
                    self._queue.put(
                        Event(
                            unb64(kv["key"]),
                            None if deleted else unb64(kv.get("value", "")),
                            int(kv.get("mod_revision", 0)),
                        )
                    )
            raise WatchBroken("watch stream ended")
        except WatchBroken as error:
            self._queue.put(error)
        except Exception as error:  # noqa: BLE001 (any end of the stream is a broken watch)
            self._queue.put(WatchBroken(_reason(error)))

    def events(self, timeout: float) -> Iterator[Event]:
        """The events queued now, waiting at most ``timeout`` for the first one."""
        block = True
        while True:
            try:
                item = self._queue.get(block, timeout if block else 0)
            except queue.Empty:
                return
            block = False
            if isinstance(item, WatchBroken):
                raise item
            yield item

    def close(self) -> None:
        """Stop the streams (the reading threads end with them)."""
        if self._closed.is_set():
            return
        self._closed.set()
        for session, response in self._streams:
            with contextlib.suppress(Exception):
                fd = response.raw._fp.fileno()  # as etcd3gw's Watcher does
                sock = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
                sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            with contextlib.suppress(Exception):
                response.close()
            session.close()
