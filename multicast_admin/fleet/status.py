"""The fleet as ``multicast-proxy status`` reports it: one snapshot plus each live agent's lease.

Every host that ever registered is listed, in one of three states:

- ``alive``: its status key (``agents/<address>``, under its lease) exists.
  "Last seen" is its last lease refresh: the granted TTL minus the seconds
  left, read from etcd (the agents write nothing at rest).
- ``stopped``: its lease is gone and its record (``hosts/<address>``, no
  lease) says it stopped (SIGTERM or SIGINT): "last seen" is that moment.
- ``expired``: its lease is gone without a stop (killed, cut off, its host
  down).  "Last seen" is the newest record it wrote (its registration or its
  last real change, by its own clock): it was alive then.  It kept its lease
  alive for some time after (at most until TTL before the lease expired),
  which etcd does not record: the agents write nothing at rest to be seen.

A record stays until the host registers again (the same address overwrites
it) or ``multicast-proxy host forget ADDRESS`` removes it.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from ..addresses import IPAddress, parse_ip
from ..errors import InvalidArgument, NotFound
from .groups import ip_order
from .store import Store, StoreUnavailable, b64
from .view import View


def fleet_status(store: Store, now: datetime | None = None) -> dict[str, Any]:
    view = View.of(store.layout, store.snapshot())
    now = now or datetime.now(timezone.utc)
    members, sources = view.members(), view.sources()
    groups = [
        {
            **spec.to_json(),
            "sources": _texts(sources.get(group, set())),
            "members": _texts(members.get(group, set())),
        }
        for group, spec in view.definitions().items()
    ]
    live, records = view.agents(), view.hosts()
    agents = []
    for address in sorted(set(live) | set(records), key=_order):
        data = live.get(address)
        last_seen: int | None = None
        if data is not None:
            lease = view.leases.get(store.layout.agent(address), 0)
            try:
                left, granted = store.time_to_live(lease) if lease else (-1, 0)
            except StoreUnavailable:
                left, granted = -1, 0
            if left >= 0:
                last_seen = max(0, granted - left)
        record = records.get(address, {})
        if last_seen is not None:
            state = "alive"
            seen_at = _text(now.timestamp() - last_seen)
        else:
            data = record or data or {}
            state = "stopped" if record.get("stopped_at") else "expired"
            seen_at = record.get("stopped_at") or record.get("written_at")
            last_seen = _ago(now, seen_at)
        agents.append(
            {
                "address": address,
                "addresses": list(data.get("addresses", [address])),
                "hostname": data.get("hostname", ""),
                "roles": data.get("roles", []),
                "state": state,
                "alive": state == "alive",
                "last_seen": seen_at,
                "last_seen_seconds_ago": last_seen,
                "in_step": bool(data.get("in_step", False)),
                "problems": list(data.get("problems", [])),
                "revision": data.get("revision", 0),
            }
        )
    return {
        "domain": store.layout.domain,
        "revision": view.revision,
        "groups": groups,
        "agents": agents,
    }


def forget(store: Store, address: str) -> None:
    """Remove a host's record: one that is not alive (its lease gone)."""
    host = str(parse_ip(address, "host"))
    if store.get(store.layout.agent(host)) is not None:
        raise InvalidArgument(
            f"host {host} is alive (its agent is registered): stop its agent first"
        )
    record = store.get(store.layout.host(host))
    if record is None:
        raise NotFound(f"host {host} has no record in domain {store.layout.domain}")
    # only the record read: not one its agent wrote since, registering again
    compare = {
        "key": b64(store.layout.host(host)),
        "result": "EQUAL",
        "target": "MOD",
        "mod_revision": record.mod_revision,
    }
    if not store.txn([compare], [{"request_delete_range": {"key": b64(store.layout.host(host))}}]):
        raise InvalidArgument(f"host {host} registered again meanwhile: not forgotten")


def _text(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ago(now: datetime, stamp: str | None) -> int | None:
    """Seconds from ``stamp`` (another host's clock) to now (this one's)."""
    if not stamp:
        return None
    try:
        then = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return max(0, int((now - then).total_seconds()))


def _order(address: str) -> tuple:
    try:
        return (0, *ip_order(parse_ip(address)))
    except InvalidArgument:
        return (1, 0, 0)


def _texts(addresses: set[IPAddress]) -> list[str]:
    return [str(a) for a in sorted(addresses, key=ip_order)]
