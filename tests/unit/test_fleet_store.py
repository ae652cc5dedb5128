"""multicast_admin.fleet.store against a real etcd (tests/unit/etcd_server.py)."""

from __future__ import annotations

import time

import pytest

from multicast_admin.fleet.settings import EtcdSettings, parse_endpoints
from multicast_admin.fleet.store import Store, StoreUnavailable, WatchBroken


@pytest.fixture
def store(etcd, domain):
    s = Store(EtcdSettings(parse_endpoints(etcd.url), domain))
    yield s
    s.close()


def test_snapshot_sees_only_its_domain(store, etcd):
    other = Store(EtcdSettings(parse_endpoints(etcd.url), store.layout.domain + "x"))
    store.put(store.layout.group("239.1.1.1"), "a")
    other.put(other.layout.group("239.1.1.2"), "b")
    snapshot = store.snapshot()
    assert list(snapshot.entries) == [store.layout.group("239.1.1.1")]
    assert snapshot.revision >= snapshot.entries[store.layout.group("239.1.1.1")].mod_revision


def test_watch_from_revision_plus_one_misses_and_repeats_nothing(store):
    store.put(store.layout.member("239.1.1.1", "10.0.0.1"), "")
    revision = store.snapshot().revision
    store.put(store.layout.member("239.1.1.1", "10.0.0.2"), "")  # after the snapshot
    watch = store.watch(revision + 1)
    try:
        store.delete(store.layout.member("239.1.1.1", "10.0.0.1"))
        events = []
        deadline = time.monotonic() + 5
        while len(events) < 2 and time.monotonic() < deadline:
            events += list(watch.events(0.5))
    finally:
        watch.close()
    assert [(e.key.rsplit("/", 1)[1], e.value) for e in events] == [
        ("10.0.0.2", ""),
        ("10.0.0.1", None),
    ]


def test_a_lease_takes_its_keys_with_it(store):
    lease = store.grant(2)
    key = store.layout.agent("10.0.0.1")
    store.put(key, "{}", lease)
    assert store.keepalive(lease) > 0
    store.revoke(lease)
    assert store.get(key) is None
    assert store.keepalive(lease) <= 0


def test_a_stopped_etcd_breaks_the_watch_and_every_call(etcd_own):
    store = Store(EtcdSettings(parse_endpoints(etcd_own.url), "d"), timeout=1)
    watch = store.watch(store.snapshot().revision + 1)
    etcd_own.stop()

    def drain() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            list(watch.events(0.2))

    with pytest.raises(WatchBroken):
        drain()
    watch.close()
    with pytest.raises(StoreUnavailable, match="etcd unreachable"):
        store.snapshot()


def test_the_next_endpoint_is_tried(etcd, domain):
    dead = "http://127.0.0.1:1"
    store = Store(EtcdSettings(parse_endpoints(f"{dead},{etcd.url}"), domain))
    store.put(store.layout.group("239.1.1.1"), "x")
    assert store.layout.group("239.1.1.1") in store.snapshot().entries


def test_a_snapshot_and_a_watch_of_some_ranges_see_only_those(store):
    layout = store.layout
    ranges = [layout.kind("groups"), layout.kinds("members", "sources")]
    store.put(layout.group("239.1.1.1"), "g")
    store.put(layout.member("239.1.1.1", "10.0.0.1"), "")
    store.put(layout.host("10.0.0.1"), "{}")  # between groups/ and members/: not read
    store.put(layout.agent("10.0.0.1"), "{}")
    snapshot = store.snapshot(ranges)
    assert sorted(snapshot.entries) == [
        layout.group("239.1.1.1"),
        layout.member("239.1.1.1", "10.0.0.1"),
    ]
    assert snapshot.revision == store.snapshot().revision  # one transaction: one revision
    watch = store.watch(snapshot.revision + 1, ranges)
    try:
        store.put(layout.host("10.0.0.2"), "{}")
        store.put(layout.agent("10.0.0.2"), "{}")
        store.put(layout.groups_version, "2")
        store.put(layout.source("239.1.1.1", "10.0.0.2"), "")
        store.put(layout.group("239.1.1.2"), "g")
        store.delete(layout.member("239.1.1.1", "10.0.0.1"))
        events = []
        deadline = time.monotonic() + 5
        while len(events) < 3 and time.monotonic() < deadline:
            events += list(watch.events(0.5))
        events += list(watch.events(0.3))  # and nothing else
    finally:
        watch.close()
    # one stream per range: each range's events in order, the ranges' interleaved
    assert sorted((e.revision, e.key, e.value) for e in events) == [
        (snapshot.revision + 4, layout.source("239.1.1.1", "10.0.0.2"), ""),
        (snapshot.revision + 5, layout.group("239.1.1.2"), "g"),
        (snapshot.revision + 6, layout.member("239.1.1.1", "10.0.0.1"), None),
    ]


def test_lease_keys_are_the_keys_put_under_it(store):
    lease = store.grant(5)
    keys = [store.layout.agent("10.0.0.1"), store.layout.member("239.1.1.1", "10.0.0.1")]
    store.write([(k, "", lease) for k in keys] + [(store.layout.host("10.0.0.1"), "{}", 0)], [])
    assert sorted(store.lease_keys(lease)) == sorted(keys)
    store.revoke(lease)
    assert store.lease_keys(lease) == []
