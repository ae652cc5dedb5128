"""The fleet as ``multicast-proxy status`` reports it: one snapshot plus each agent's lease.

An agent's key lives under its lease, so every agent listed is alive; one
whose lease expired (dead, cut off) is gone from the list within its TTL.
"Last seen" is the time since its last lease refresh (granted TTL minus the
seconds left), read from etcd: the agents write nothing at rest.
"""

from __future__ import annotations

from typing import Any

from ..addresses import IPAddress
from .groups import ip_order
from .store import Store, StoreUnavailable
from .view import View


def fleet_status(store: Store) -> dict[str, Any]:
    view = View.of(store.layout, store.snapshot())
    members, sources = view.members(), view.sources()
    groups = [
        {
            **spec.to_json(),
            "sources": _texts(sources.get(group, set())),
            "members": _texts(members.get(group, set())),
        }
        for group, spec in view.definitions().items()
    ]
    agents = []
    for address, data in view.agents().items():
        lease = view.leases.get(store.layout.agent(address), 0)
        last_seen: int | None = None
        if lease:
            try:
                left, granted = store.time_to_live(lease)
            except StoreUnavailable:
                left = -1
            if left >= 0:
                last_seen = max(0, granted - left)
        agents.append(
            {
                "address": address,
                "addresses": list(data.get("addresses", [address])),
                "hostname": data.get("hostname", ""),
                "roles": data.get("roles", []),
                "alive": last_seen is not None,
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


def _texts(addresses: set[IPAddress]) -> list[str]:
    return [str(a) for a in sorted(addresses, key=ip_order)]
