"""The agent against a real etcd, with fake kernels (tests/unit/fleet_hosts.py)."""

from __future__ import annotations

import json
import threading
import time
from ipaddress import ip_address

import pytest
from fakes import FakeMulticKernel, FakeMultisKernel
from fleet_hosts import Host, wait_for

from multicast_admin.fleet.groups import check_definition, define, undefine
from multicast_admin.fleet.settings import EtcdSettings, parse_endpoints
from multicast_admin.fleet.store import Store, StoreUnavailable
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.server import Server

G = "239.1.1.1"
G2 = "239.1.1.2"
A, B, C = "10.0.0.1", "10.0.0.2", "10.0.0.3"


@pytest.fixture
def fleet(etcd, domain, tmp_path):
    store = Store(EtcdSettings(parse_endpoints(etcd.url), domain))
    define(store, check_definition(G, 5000))
    hosts: list[Host] = []

    def host(address: str, **options) -> Host:
        h = Host(tmp_path, address, etcd.url, domain, **options)
        hosts.append(h)
        return h.start()

    yield store, host
    for h in hosts:
        h.stop()
    store.close()


def test_two_hosts_converge_on_a_join_and_a_leave(fleet):
    _, host = fleet
    a, b = host(A), host(B)
    # both are senders: each is a source, so each receiver restores from the other
    wait_for(lambda: a.entries() == {f"{B}:5000": G} and b.entries() == {f"{A}:5000": G})
    assert a.members(G) == []  # nobody joined yet
    assert b.members(G) == []
    b.joins(G)
    wait_for(lambda: a.members(G) == [B])
    assert b.members(G) == []  # a host never copies to itself
    b.joins()
    wait_for(
        lambda: G not in a.multis.state()
    )  # the group the agent created goes with its last member
    a.joins(G)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B] and b.members(G) == [A])


def test_a_static_join_makes_a_member(fleet):
    _, host = fleet
    a = host(A, receiver=False)
    host(B, sender=False, join=(G,))
    wait_for(lambda: a.members(G) == [B])


def test_static_configuration_is_never_touched(fleet):
    _, host = fleet
    multis = FakeMultisKernel()
    multis.set_group(G, [B, "10.9.9.9"])  # B static already, and a host outside the fleet
    a = host(A, multis=multis)
    a.multic.set_entry("10.8.8.8", 5000, G)  # a static entry of another source
    b = host(B)
    c = host(C)
    c.joins(G)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B, C, "10.9.9.9"])
    c.joins()
    b.joins()
    wait_for(lambda: a.members(G) == [B, "10.9.9.9"])
    time.sleep(0.5)
    assert a.members(G) == [B, "10.9.9.9"]  # B was static: the agent did not add it, keeps it
    assert a.entries()["10.8.8.8:5000"] == G
    c.stop()
    b.stop()
    wait_for(lambda: a.entries() == {"10.8.8.8:5000": G})


def test_a_killed_agent_is_dropped_within_ttl_plus_one_second(fleet):
    _, host = fleet
    a, b = host(A), host(B, ttl=2)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B])
    start = time.monotonic()
    b.stop(revoke=False)  # as SIGKILL: the lease is not revoked, it expires
    wait_for(lambda: G not in a.multis.state() and f"{B}:5000" not in a.entries(), timeout=6)
    assert time.monotonic() - start <= 2 + 1


def test_a_stopped_agent_is_dropped_at_once(fleet):
    _, host = fleet
    a, b = host(A), host(B, ttl=10)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B])
    b.stop()
    assert wait_for(lambda: G not in a.multis.state(), timeout=3) < 2


def test_limits_are_reported_not_truncated(fleet):
    store, host = fleet
    a = host(A, multis=FakeMultisKernel(max_members=1))
    b, c = host(B), host(C)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B])
    c.joins(G)

    def problem() -> list:
        entry = store.get(store.layout.agent(A))
        return json.loads(entry.value)["problems"] if entry else []

    wait_for(lambda: any("member limit 1 reached" in p for p in problem()))
    assert a.members(G) == [B]  # all or nothing: C not half-added, and B kept
    assert json.loads(store.get(store.layout.agent(A)).value)["in_step"] is False
    b.joins()
    wait_for(lambda: a.members(G) == [C])  # retried once there is room
    wait_for(lambda: problem() == [])


def test_a_deleted_group_takes_what_the_agents_configured(fleet):
    store, host = fleet
    a, b = host(A), host(B)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B] and b.entries() == {f"{A}:5000": G})
    undefine(store, G)
    wait_for(lambda: a.multis.state() == {} and b.entries() == {} and a.entries() == {})


def test_a_restarted_agent_removes_what_it_added_before(fleet):
    _, host = fleet
    a, b = host(A), host(B)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B])
    a.stop()
    b.joins()
    time.sleep(0.5)
    assert a.members(G) == [B]  # no agent: nothing changes
    a.start()  # a new Agent: knows B was its own from the ledger file
    wait_for(lambda: G not in a.multis.state())


def test_etcd_down_leaves_the_kernel_as_it_is_then_converges(etcd_own, domain, tmp_path):
    store = Store(EtcdSettings(parse_endpoints(etcd_own.url), domain), timeout=1)
    define(store, check_definition(G, 5000))
    define(store, check_definition(G2, 5001))
    a = Host(tmp_path, A, etcd_own.url, domain).start()
    b = Host(tmp_path, B, etcd_own.url, domain).start()
    try:
        b.joins(G)
        wait_for(
            lambda: (
                a.members(G) == [B]
                and b.entries() == {f"{A}:5000": G, f"{A}:5001": G2}
                and a.entries() == {f"{B}:5000": G, f"{B}:5001": G2}
            )
        )
        before = (a.multis.state(), a.multic.state(), b.multis.state(), b.multic.state())
        etcd_own.stop()
        b.joins(G2)  # made while etcd is down
        time.sleep(3)
        assert (a.multis.state(), a.multic.state(), b.multis.state(), b.multic.state()) == before
        assert not a.agent.state.connected
        etcd_own.start()
        took = wait_for(lambda: a.members(G) == [] and a.members(G2) == [B], timeout=10)
        assert took <= 5  # the issue: within 5 s of etcd's return
    finally:
        a.stop()
        b.stop()
        store.close()


def test_a_change_right_after_the_snapshot_is_not_missed(etcd, domain, tmp_path):
    """The watch starts at the snapshot's revision + 1: a change made between
    the snapshot and the watch's start is seen (once)."""
    store = Store(EtcdSettings(parse_endpoints(etcd.url), domain))
    define(store, check_definition(G, 5000))
    a = Host(tmp_path, A, etcd.url, domain)

    class Racy(Store):
        raced = False

        def snapshot(self, ranges=None):
            seen = super().snapshot(ranges)
            if not Racy.raced:
                Racy.raced = True
                store.put(store.layout.member(G, B), "")  # after the snapshot, before the watch
            return seen

    a.start(Racy(a.settings.etcd))
    try:
        wait_for(lambda: a.members(G) == [B])
    finally:
        a.stop()
        store.close()


def test_a_kernel_cleared_under_the_agent_is_configured_again(fleet):
    _, host = fleet
    a, b = host(A, kernel_check=60), host(B)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B])
    MultisNetlink(a.multis).clear()  # as a restore of the saved (static) state does
    wait_for(lambda: a.members(G) == [B], timeout=3)  # its generation moved on: seen


def _settled(h: Host) -> tuple[int, int]:
    """The dumps both fake kernels of ``h`` have seen, once they stopped growing."""
    last = (-1, -1)
    while (now := (h.multis.dumps(), h.multic.dumps())) != last:
        last = now
        time.sleep(0.6)  # more than the agent's retry: a pending reconcile is done
    return now


def test_an_idle_agent_dumps_nothing(fleet):
    """At rest the agent reads each module's GET_STATS every retry (0.5 s
    here) and no dump: the configuration's generation has not moved."""
    _, host = fleet
    a, b = host(A), host(B)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B] and b.entries() == {f"{A}:5000": G})
    before = _settled(a)
    stats = len(a.multis.requests) - a.multis.dumps()
    time.sleep(3)  # six probes, three kernel_checks of the old rule
    assert (a.multis.dumps(), a.multic.dumps()) == before
    assert len(a.multis.requests) - a.multis.dumps() >= stats + 4  # the probes went on


def test_a_reconcile_of_an_unchanged_kernel_reads_no_dump(fleet):
    """A new member (an etcd event) on a sender whose kernel nobody else
    changed: the generation is the one its last reconcile left, so what that
    reconcile left is what the kernel holds; the join goes in without a dump."""
    _, host = fleet
    a, b = host(A, receiver=False), host(B, sender=False)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B])
    before = _settled(a)
    c = host(C, sender=False)
    c.joins(G)
    wait_for(lambda: a.members(G) == [B, C])
    c.joins()
    wait_for(lambda: a.members(G) == [B])
    assert (a.multis.dumps(), a.multic.dumps()) == before
    MultisNetlink(a.multis).quit(ip_address(G), [ip_address(B)])  # an operator: dumped again
    wait_for(lambda: a.members(G) == [B], timeout=3)
    assert a.multis.dumps() > before[0]


def test_a_module_without_a_generation_is_still_read_every_kernel_check(fleet):
    """An older module (no GENERATION): the agent dumps it every kernel_check
    (1 s here), as before, so a restore that cleared it is still repaired."""
    _, host = fleet
    multis = FakeMultisKernel()
    multis.reports_generation = False
    a, b = host(A, multis=multis), host(B)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B])
    dumps = _settled(a)[1]  # multic reports one: only multis is read blind
    multis.groups.clear()  # unseen: no generation tells
    wait_for(lambda: a.members(G) == [B], timeout=3)
    assert a.multis.dumps() > dumps


def test_a_change_after_the_reconcile_is_picked_up(fleet):
    _, host = fleet
    a, b = host(A, kernel_check=60), host(B, sender=False)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B] and b.entries() == {f"{A}:5000": G})
    _settled(a)
    MultisNetlink(a.multis).quit(ip_address(G), [ip_address(B)])  # an operator's multis_admin
    MulticNetlink(b.multic).delete(ip_address(A), 5000)
    wait_for(lambda: a.members(G) == [B] and b.entries() == {f"{A}:5000": G}, timeout=3)


def test_a_change_during_the_reconcile_is_picked_up(fleet):
    """An operator's change between the agent's two generation reads of one
    reconcile: the generation moved by more than the agent's own changes, so
    the next probe reconciles again."""
    _, host = fleet
    a, b = host(A, kernel_check=60), host(B)
    wait_for(lambda: store_has_agent(a))
    operator = MultisNetlink(a.multis)
    raced = threading.Event()
    open_server = a.agent.kernel.open_server

    def racy_server() -> Server:
        server = open_server()
        join = server.create  # the agent's JOIN (no read: it knows the group)

        def join_then_race(group, members, **flags):
            result = join(group, members, **flags)
            if not raced.is_set():
                raced.set()
                operator.quit(ip_address(G), [ip_address(B)])  # right after the agent's join
            return result

        server.create = join_then_race
        return server

    a.agent.kernel.open_server = racy_server
    b.joins(G)
    assert raced.wait(10)
    wait_for(lambda: a.members(G) == [B], timeout=3)


def store_has_agent(h: Host) -> bool:
    return h.agent is not None and h.agent.state.connected and bool(h.agent.published)


def test_a_module_reload_is_picked_up(fleet):
    _, host = fleet
    a, b = host(A, kernel_check=60), host(B)
    b.joins(G)
    wait_for(lambda: a.members(G) == [B] and a.entries() == {f"{B}:5000": G})
    _settled(a)
    a.multis.reload()  # modprobe -r; modprobe: empty, another generation, not restored
    a.multic.reload(restored=True)  # and restored (an empty saved state) already
    wait_for(lambda: a.entries() == {f"{B}:5000": G}, timeout=3)
    assert a.multis.state() == {}  # refused until the service restored it
    MultisNetlink(a.multis).set_restored()  # `service multis start`
    wait_for(lambda: a.members(G) == [B], timeout=3)


def test_every_receiver_is_a_member_of_a_broadcast_group(fleet):
    store, host = fleet
    define(store, check_definition("255.255.255.255", 6000, broadcast=True))
    a, b = host(A, receiver=False), host(B, sender=False)
    wait_for(lambda: a.members("255.255.255.255") == [B])  # nobody joined: no IGMP for broadcast
    assert a.multis.state()["255.255.255.255"][0] == 1  # MULTIS_GROUP_F_BROADCAST
    wait_for(lambda: b.entries() == {f"{A}:5000": G, f"{A}:6000": "255.255.255.255"})
    assert a.members(G) == []


def test_a_receivers_group_limit_is_reported(fleet):
    store, host = fleet
    define(store, check_definition(G2, 5001))
    host(A, receiver=False)
    b = host(B, sender=False, multic=FakeMulticKernel(max_groups=1))

    def problems() -> list:
        entry = store.get(store.layout.agent(B))
        return json.loads(entry.value)["problems"] if entry else []

    wait_for(lambda: any("group limit 1 reached" in p for p in problems()))
    assert b.entries() == {f"{A}:5000": G}  # the first fits, the second is refused, not dropped
    assert problems() == [f"multic entry {A}:5001 -> {G2}: group limit 1 reached"]


def test_an_unwritable_ledger_is_a_reported_problem(fleet, tmp_path):
    store, host = fleet
    (tmp_path / "not-a-dir").write_text("")
    a = host(A)
    a.agent.kernel.ledger.path = tmp_path / "not-a-dir" / "ledger.json"  # /run full, say
    b = host(B)
    b.joins(G)

    def problems() -> list:
        entry = store.get(store.layout.agent(A))
        return json.loads(entry.value)["problems"] if entry else []

    wait_for(lambda: a.members(G) == [B])  # the kernel is configured all the same
    wait_for(lambda: any("cannot write the agent ledger" in p for p in problems()))
    assert a.thread.is_alive()  # the agent goes on
    time.sleep(1.5)  # retried (every 0.5 s here): still not saved, still a problem
    assert any("cannot write the agent ledger" in p for p in problems())
    a.agent.kernel.ledger.path = tmp_path / "ledger.json"  # room again
    wait_for(lambda: problems() == [])
    assert (tmp_path / "ledger.json").exists()


def test_nothing_is_added_before_the_service_restored_the_saved_state(fleet):
    store, host = fleet
    a = host(A, multis=FakeMultisKernel(restored=False))  # loaded by modprobe, not the service
    b = host(B)
    b.joins(G)

    def problems() -> list:
        entry = store.get(store.layout.agent(A))
        return json.loads(entry.value)["problems"] if entry else []

    wait_for(lambda: any("saved state not restored yet" in p for p in problems()))
    assert a.multis.state() == {}
    a.multis.restored = True  # `service multis start` restored it
    wait_for(lambda: a.members(G) == [B])


def test_a_kernel_call_longer_than_the_ttl_keeps_the_registration(fleet):
    """The lease is refreshed on a thread of its own: a reconcile stuck in the
    kernel (QEMU TCG, a busy host) for longer than the TTL loses nothing."""
    store, host = fleet
    a = host(A, ttl=2)
    b = host(B)
    wait_for(lambda: store.get(store.layout.agent(A)) is not None)
    lease = store.get(store.layout.agent(A)).lease
    stuck, release = threading.Event(), threading.Event()
    apply_sender = a.agent.kernel.apply_sender

    def slow(*args):
        stuck.set()
        release.wait(30)
        return apply_sender(*args)

    a.agent.kernel.apply_sender = slow
    b.joins(G)  # a reconciles, and stays in the kernel call
    assert stuck.wait(10)
    try:
        deadline = time.monotonic() + 3 * 2  # three TTLs
        while time.monotonic() < deadline:
            entry = store.get(store.layout.agent(A))
            assert entry is not None, "the lease lapsed while the reconcile was blocked"
            assert entry.lease == lease
            time.sleep(0.1)
    finally:
        release.set()
    wait_for(lambda: a.members(G) == [B])
    assert store.get(store.layout.agent(A)).lease == lease  # the same registration throughout


def test_a_lease_gone_under_the_keepalive_makes_the_agent_register_again(fleet):
    store, host = fleet
    a = host(A, ttl=2)
    wait_for(lambda: store.get(store.layout.agent(A)) is not None)
    lease = store.get(store.layout.agent(A)).lease
    store.revoke(lease)  # as an expiry: the keep-alive finds TTL <= 0
    wait_for(lambda: (e := store.get(store.layout.agent(A))) is not None and e.lease != lease)
    assert a.thread.is_alive()
    # one keep-alive per session: the lost session's ended with it, the agent's stop ends the last
    assert len(_keepalives()) == 1
    a.stop()
    assert _keepalives() == []


def _keepalives() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "etcd-keepalive"]


# --- IPv6: MLD joins, IPv6 members and entries, both families at once --------

G6 = "ff15::1:5"
A6, B6, C6 = "fd00::1", "fd00::2", "fd00::3"


def _problems(store, address: str) -> list:
    entry = store.get(store.layout.agent(address))
    return json.loads(entry.value)["problems"] if entry else []


def test_an_mld_join_makes_an_ipv6_member_and_a_leave_removes_it(fleet):
    store, host = fleet
    define(store, check_definition(G6, 5001))
    a = host(A, address6=A6, receiver=False)
    b = host(B, address6=B6, sender=False)
    # the receiver restores the sender's copies of both families, each from its own address
    wait_for(lambda: b.entries() == {f"{A}:5000": G, f"{A6}:5001": G6})
    assert ("fd00::1", 5001) in {(str(s), p) for s, p in b.multic.entries}
    b.joins(G6)  # an MLD join: /proc/net/igmp6
    wait_for(lambda: a.members(G6) == [B6])
    assert a.members(G) == []
    assert store.get(store.layout.member(G6, B6)) is not None
    assert store.get(store.layout.member(G6, B)) is None  # its IPv6 address, not its IPv4 one
    b.joins()
    wait_for(lambda: G6 not in a.multis.state())
    assert store.get(store.layout.member(G6, B6)) is None
    wait_for(lambda: _problems(store, A) == [] and _problems(store, B) == [])


def test_ipv4_and_ipv6_groups_at_once(fleet):
    store, host = fleet
    define(store, check_definition(G6, 5001))
    define(store, check_definition("ff0e::42", 5002))
    a = host(A, address6=A6)
    b = host(B, address6=B6)
    c = host(C, address6=C6)
    b.joins(G, G6)
    c.joins(G6, "ff0e::42")
    wait_for(lambda: a.multis.state() == {G: (0, [B]), G6: (0, [B6, C6]), "ff0e::42": (0, [C6])})
    wait_for(lambda: c.multis.state() == {G: (0, [B]), G6: (0, [B6])})  # never to itself
    wait_for(
        lambda: (
            b.entries()
            == {
                f"{A}:5000": G,
                f"{C}:5000": G,
                f"{A6}:5001": G6,
                f"{C6}:5001": G6,
                f"{A6}:5002": "ff0e::42",
                f"{C6}:5002": "ff0e::42",
            }
        )
    )
    agent = json.loads(store.get(store.layout.agent(A)).value)
    assert agent["addresses"] == [A, A6]
    c.joins(G6)  # leaves one IPv6 group, keeps the other
    wait_for(lambda: a.multis.state() == {G: (0, [B]), G6: (0, [B6, C6])})
    want = sorted([[G, B], [G6, B6], [G6, C6]])  # saved once the reconcile's kernel calls are done
    wait_for(lambda: sorted(json.loads(a.ledger_path.read_text())["members"]) == want)
    assert json.loads(a.ledger_path.read_text())["created_groups"] == [G, G6]


def test_an_ipv4_member_of_an_ipv6_group_is_reported_not_configured(fleet):
    store, host = fleet
    define(store, check_definition(G6, 5001))
    a = host(A, address6=A6, receiver=False)
    b = host(B, address6=B6, sender=False)
    b.joins(G6)
    wait_for(lambda: a.members(G6) == [B6])
    store.put(store.layout.member(G6, C), "")  # another writer's key: one family per group
    why = f"group {G6}: member {C} is IPv4, the group is IPv6 (one family per group): left out"
    wait_for(lambda: why in _problems(store, A))
    assert a.members(G6) == [B6]  # the good member kept; the group not held back by the bad one
    assert json.loads(store.get(store.layout.agent(A)).value)["in_step"] is False
    store.delete(store.layout.member(G6, C))
    wait_for(lambda: _problems(store, A) == [])


def test_a_host_without_an_ipv6_address_says_so(fleet):
    store, host = fleet
    define(store, check_definition(G6, 5001))
    a = host(A, address6=A6, receiver=False)
    b = host(B, sender=False)  # IPv4 only
    wait_for(lambda: b.entries() == {f"{A}:5000": G})  # no IPv6 entry: no IPv6 copy can reach it
    assert _problems(store, B) == []  # not joined to the IPv6 group: nothing missing
    b.joins(G6)
    why = (
        f"IPv6 group {G6}: this host has no IPv6 address (give --address): "
        "it is neither a source nor a member of it"
    )
    wait_for(lambda: _problems(store, B) == [why])
    assert a.members(G6) == []
    assert store.get(store.layout.member(G6, B)) is None


def test_a_late_keepalive_is_retried_not_taken_for_a_lost_lease(etcd, domain, tmp_path):
    """A refresh that times out (a loaded etcd) is retried while the lease may
    live: the session and its registration go on.  Only a TTL without one
    good refresh ends it."""
    store = Store(EtcdSettings(parse_endpoints(etcd.url), domain))
    define(store, check_definition(G, 5000))
    failures = {"left": 0}

    class Flaky(Store):
        def keepalive(self, lease):
            if failures["left"] > 0:
                failures["left"] -= 1
                raise StoreUnavailable("etcd unreachable (timed out)")
            return super().keepalive(lease)

    sessions = []

    class Agents(Store):
        def twin(self):
            return Flaky(self.settings, self.timeout)

        def watch(self, start_revision, ranges=None):
            sessions.append(start_revision)  # one watch per session
            return super().watch(start_revision, ranges)

    a = Host(tmp_path, A, etcd.url, domain, ttl=2)
    a.start(Agents(a.settings.etcd, timeout=1))
    try:
        wait_for(lambda: store.get(store.layout.agent(A)) is not None)
        lease = store.get(store.layout.agent(A)).lease
        failures["left"] = 3  # ~1.1 s of failed refreshes: less than the TTL
        wait_for(lambda: failures["left"] == 0, timeout=5)
        time.sleep(2)
        assert len(sessions) == 1  # the same session throughout
        assert store.get(store.layout.agent(A)).lease == lease
        failures["left"] = 1000  # no good refresh for a whole TTL: the lease is lost
        wait_for(lambda: not a.agent.state.connected, timeout=2 + 2)
        failures["left"] = 0
        wait_for(lambda: (e := store.get(store.layout.agent(A))) is not None and e.lease != lease)
    finally:
        a.stop()
        store.close()


# --- what an agent watches: only what can change its kernel ------------------


class _Counting(Store):
    """A Store whose watches record the keys of the events they deliver."""

    def __init__(self, *args, seen: list, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.seen = seen

    def watch(self, start_revision, ranges=None):
        watch = super().watch(start_revision, ranges)
        self.seen.append(("session", start_revision))
        events = watch.events

        def counted(timeout):
            for event in events(timeout):
                self.seen.append(self.layout.split(event.key)[0])
                yield event

        watch.events = counted
        return watch


def counted_host(tmp_path, address: str, etcd, domain, **roles) -> tuple[Host, list]:
    """A started host whose store records its watches' sessions and event kinds."""
    seen: list = []
    h = Host(tmp_path, address, etcd.url, domain, **roles)
    h.start(_Counting(h.settings.etcd, timeout=1, seen=seen))
    return h, seen


def test_a_receiver_sees_no_other_hosts_registration(fleet, tmp_path, etcd, domain):
    """The O(N^2) of a fleet's start: a receiver watches the definitions and
    the sources, not the members, hosts and agents every other host writes."""
    _, host = fleet
    sender = host(A, receiver=False)
    r, seen = counted_host(tmp_path, B, etcd, domain, sender=False)
    try:
        others = [host(f"10.0.1.{i}", sender=False) for i in range(1, 6)]
        for other in others:
            other.joins(G)
        wait_for(lambda: sender.members(G) == [f"10.0.1.{i}" for i in range(1, 6)])
        wait_for(lambda: r.entries() == {f"{A}:5000": G})
        time.sleep(0.5)
        kinds = [k for k in seen if isinstance(k, str)]
        assert set(kinds) <= {"groups", "sources"}, kinds
    finally:
        r.stop()


def test_a_sender_sees_members_not_hosts(fleet, tmp_path, etcd, domain):
    _, host = fleet
    s, seen = counted_host(tmp_path, A, etcd, domain, receiver=False)
    try:
        b = host(B, sender=False)
        b.joins(G)
        wait_for(lambda: s.members(G) == [B])
        kinds = [k for k in seen if isinstance(k, str)]
        assert "members" in kinds
        assert set(kinds) <= {"groups", "members"}, kinds
    finally:
        s.stop()


def test_a_role_change_starts_a_session_with_the_new_keys(fleet, tmp_path, etcd, domain):
    """multis loaded under a running receiver: a new session, which watches
    the members now, so the host copies to them."""
    _, host = fleet
    a, seen = counted_host(tmp_path, A, etcd, domain, sender=False)
    try:
        b = host(B, sender=False)
        wait_for(lambda: store_has_agent(a))
        assert len([s for s in seen if isinstance(s, tuple)]) == 1
        lease = a.agent.lease
        a.sender = True  # modprobe multis
        wait_for(lambda: a.agent.state.roles.sender)
        b.joins(G)
        wait_for(lambda: a.members(G) == [B])
        assert len([s for s in seen if isinstance(s, tuple)]) == 2  # one new session
        assert a.agent.lease == lease  # the same registration: the lease kept
    finally:
        a.stop()
