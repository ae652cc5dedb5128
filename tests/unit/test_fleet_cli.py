"""multicast-proxy group/status on a real etcd: output, exit codes, nothing written on bad input."""

from __future__ import annotations

import inspect
import json
import time

import pytest
from click.testing import CliRunner
from fleet_hosts import Host, wait_for

from multicast_admin import cli_proxy
from multicast_admin.fleet.settings import EtcdSettings, parse_endpoints
from multicast_admin.fleet.store import Store


class Proxy:
    def __init__(self, url: str, domain: str, conf: str) -> None:
        self.url, self.domain, self.conf = url, domain, conf

    def __call__(self, *args: str, etcd: bool = True):
        extra = ["--etcd", self.url, "--domain", self.domain] if etcd else []
        # click < 8.2 mixes stderr into stdout unless told not to
        kw = (
            {"mix_stderr": False} if "mix_stderr" in inspect.signature(CliRunner).parameters else {}
        )
        return CliRunner(**kw).invoke(
            cli_proxy.cli,
            [*args, "--config", self.conf, *extra],
            catch_exceptions=False,
        )


@pytest.fixture
def proxy(etcd, domain, tmp_path):
    return Proxy(etcd.url, domain, str(tmp_path / "absent.conf"))


@pytest.fixture
def keys(etcd, domain):
    store = Store(EtcdSettings(parse_endpoints(etcd.url), domain))
    yield lambda: sorted(store.snapshot().entries)
    store.close()


def test_add_list_delete(proxy):
    r = proxy("group", "add", "239.1.1.1", "--port", "5000")
    assert r.exit_code == 0, r.stderr
    assert "group 239.1.1.1 port 5000: defined" in r.stdout
    assert proxy("group", "add", "239.1.1.2", "--port", "0", "--vrrp").exit_code == 2  # port 0 rule
    assert proxy("group", "add", "255.255.255.255", "--port", "6000", "--broadcast").exit_code == 0
    listing = proxy("group", "list", "--json")
    assert listing.exit_code == 0
    assert json.loads(listing.stdout)["groups"] == [
        {"group": "239.1.1.1", "port": 5000, "broadcast": False, "vrrp": False},
        {"group": "255.255.255.255", "port": 6000, "broadcast": True, "vrrp": False},
    ]
    table = proxy("group", "list").stdout.splitlines()
    assert table[0].split() == ["GROUP", "PORT", "BROADCAST", "VRRP"]
    assert table[1].split() == ["239.1.1.1", "5000"]
    again = proxy("group", "add", "239.1.1.1", "--port", "5000")
    assert again.exit_code == 0
    assert "unchanged" in again.stdout
    assert proxy("group", "delete", "239.1.1.1").exit_code == 0
    assert [g["group"] for g in json.loads(proxy("group", "list", "--json").stdout)["groups"]] == [
        "255.255.255.255"
    ]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["239.1.1", "--port", "5000"], 2, "group '239.1.1' is not a valid IP address"),
        (["10.1.1.1", "--port", "5000"], 2, "10.1.1.1"),
        (["239.1.1.9", "--port", "70000"], 2, "70000"),
        (["239.1.1.9", "--port", "x"], 2, "'x'"),
        (["239.1.1.9", "--port", "5000"], 2, "port 5000 is already group 239.1.1.1's"),
        (["239.1.1.1", "--port", "5001"], 8, "group 239.1.1.1 is already defined with port 5000"),
        (["239.1.1.9", "--port", "0"], 2, "port 0 (any port)"),
        # IPv6: the same rule, and one port per group across both families
        (["ff15::1:5", "--port", "5000"], 2, "port 5000 is already group 239.1.1.1's"),
        (["ff15::1:5", "--port", "0"], 2, "port 0 (any port)"),
        (["ff11::1", "--port", "5001"], 2, "group ff11::1 has scope 1"),
        (["fd00::1", "--port", "5001"], 2, "group fd00::1 is not a multicast address (ff00::/8)"),
        (["ff15::1:5", "--port", "5001", "--broadcast"], 2, "IPv6 has no broadcast"),
        (["ff15::1:5:", "--port", "5001"], 2, "group 'ff15::1:5:' is not a valid IP address"),
    ],
)
def test_bad_group_definitions_change_nothing(proxy, keys, args, code, message):
    assert proxy("group", "add", "239.1.1.1", "--port", "5000").exit_code == 0
    before = keys()
    r = proxy("group", "add", *args)
    assert r.exit_code == code
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert keys() == before


def test_ipv6_groups_beside_ipv4_ones(proxy):
    assert proxy("group", "add", "239.1.1.1", "--port", "5000").exit_code == 0
    r = proxy("group", "add", "ff15::1:5", "--port", "5001")
    assert r.exit_code == 0, r.stderr
    assert "group ff15::1:5 port 5001: defined" in r.stdout
    assert proxy("group", "add", "ff0e::10", "--port", "5002", "--vrrp").exit_code == 0
    r = proxy("group", "add", "239.1.1.2", "--port", "5001")  # an IPv6 group's port
    assert r.exit_code == 2
    assert "port 5001 is already group ff15::1:5's" in r.stderr
    listed = json.loads(proxy("group", "list", "--json").stdout)["groups"]
    assert [(g["group"], g["port"]) for g in listed] == [
        ("239.1.1.1", 5000),
        ("ff0e::10", 5002),
        ("ff15::1:5", 5001),
    ]
    assert proxy("group", "delete", "ff15::1:5").exit_code == 0
    assert proxy("group", "delete", "ff15::1:5").exit_code == 3


def test_delete_of_an_undefined_group(proxy):
    r = proxy("group", "delete", "239.7.7.7")
    assert r.exit_code == 3
    assert "group 239.7.7.7 is not defined in domain" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "no etcd endpoint: give --etcd"),
        (["--etcd", "ftp://x"], "--etcd 'ftp://x': not a URL"),
        (
            ["--etcd", "http://127.0.0.1:1"],
            "etcd unreachable (http://127.0.0.1:1: connection refused)",
        ),
        (["--etcd", "http://127.0.0.1:1", "--domain", "a/b"], "--domain 'a/b'"),
        (
            ["--etcd", "http://127.0.0.1:1", "--etcd-cert", "/nonexistent"],
            "--etcd-cert and --etcd-key",
        ),
        (["--etcd", "http://127.0.0.1:1", "--etcd-user", "u"], "--etcd-user and --etcd-password"),
    ],
)
def test_bad_etcd_options(proxy, args, message):
    r = proxy("group", "list", *args, etcd=False)
    assert r.exit_code != 0
    assert message in r.stderr


def test_agent_conf_gives_the_endpoints_and_domain(proxy, tmp_path, etcd, domain):
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[etcd]\nendpoints = http://127.0.0.1:1,{etcd.url}\ndomain = {domain}\n")
    proxy.conf = str(conf)
    assert proxy("group", "add", "239.1.1.3", "--port", "7000", etcd=False).exit_code == 0
    proxy.conf = str(tmp_path / "absent.conf")
    listed = json.loads(proxy("group", "list", "--json").stdout)  # the options' domain: the same
    assert [g["group"] for g in listed["groups"]] == ["239.1.1.3"]


def test_a_bad_agent_conf_is_refused(proxy, tmp_path):
    conf = tmp_path / "agent.conf"
    conf.write_text("[etcd]\nendpoint = http://x\n")
    proxy.conf = str(conf)
    r = proxy("group", "list")
    assert r.exit_code == 7
    assert "[etcd] has unknown key endpoint" in r.stderr


def test_status_shows_groups_sources_members_and_agents(proxy, etcd, domain, tmp_path):
    assert proxy("group", "add", "239.1.1.1", "--port", "5000").exit_code == 0
    a = Host(tmp_path, "10.0.0.1", etcd.url, domain, receiver=False).start()
    b = Host(tmp_path, "10.0.0.2", etcd.url, domain, sender=False).start()
    try:
        b.joins("239.1.1.1")
        wait_for(lambda: a.members("239.1.1.1") == ["10.0.0.2"])

        def view() -> dict:
            return json.loads(proxy("status", "--json").stdout)

        wait_for(lambda: all(x["in_step"] for x in view()["agents"]))
        seen = view()
        assert seen["groups"] == [
            {
                "group": "239.1.1.1",
                "port": 5000,
                "broadcast": False,
                "vrrp": False,
                "sources": ["10.0.0.1"],
                "members": ["10.0.0.2"],
            }
        ]
        agents = {x["address"]: x for x in seen["agents"]}
        assert agents["10.0.0.1"]["roles"] == ["sender"]
        assert agents["10.0.0.2"]["roles"] == ["receiver"]
        assert all(x["alive"] and 0 <= x["last_seen_seconds_ago"] <= 2 for x in agents.values())
        assert all(x["state"] == "alive" for x in agents.values())
        text = proxy("status").stdout
        assert "239.1.1.1  5000  10.0.0.1  10.0.0.2" in text
        b.stop()  # SIGTERM: the lease revoked, the host's record says it stopped
        wait_for(lambda: [x["state"] for x in view()["agents"]] == ["alive", "stopped"])
        stopped = view()["agents"][1]
        assert (stopped["address"], stopped["alive"], stopped["roles"]) == (
            "10.0.0.2",
            False,
            ["receiver"],
        )
        assert 0 <= stopped["last_seen_seconds_ago"] <= 5
        assert view()["groups"][0]["members"] == []
    finally:
        a.stop()
        b.stop()


def test_status_lists_an_expired_agent_until_it_is_forgotten(proxy, etcd, domain, tmp_path):  # noqa: PLR0915 (one story)
    """A killed agent's lease expires: its keys go, its host's record stays."""
    assert proxy("group", "add", "ff15::1:5", "--port", "5000").exit_code == 0
    a = Host(tmp_path, "10.0.0.1", etcd.url, domain, address6="fd00::1", receiver=False).start()
    b = Host(tmp_path, "10.0.0.2", etcd.url, domain, address6="fd00::2", sender=False).start()
    c = Host(tmp_path, "10.0.0.3", etcd.url, domain, address6="fd00::3", sender=False).start()
    store = Store(EtcdSettings(parse_endpoints(etcd.url), domain))
    try:
        b.joins("ff15::1:5")
        wait_for(lambda: a.members("ff15::1:5") == ["fd00::2"])

        def view() -> dict:
            r = proxy("status", "--json")
            assert r.exit_code == 0, r.stderr
            return json.loads(r.stdout)

        def states() -> dict:
            return {x["address"]: x["state"] for x in view()["agents"]}

        wait_for(lambda: states() == dict.fromkeys(["10.0.0.1", "10.0.0.2", "10.0.0.3"], "alive"))
        written = json.loads(store.get(store.layout.host("10.0.0.2")).value)["written_at"]
        killed = time.time()
        b.stop(revoke=False)  # as SIGKILL: nothing revoked, nothing written
        wait_for(lambda: states()["10.0.0.2"] == "expired", timeout=2 + 3)
        assert time.time() - killed >= 1  # not before the lease's TTL (2 s) ran out
        seen = {x["address"]: x for x in view()["agents"]}
        gone = seen["10.0.0.2"]
        assert gone["alive"] is False
        assert gone["last_seen"] == written  # the newest record it wrote
        assert gone["addresses"] == ["10.0.0.2", "fd00::2"]
        assert gone["roles"] == ["receiver"]
        assert gone["last_seen_seconds_ago"] >= 0
        assert seen["10.0.0.1"]["alive"]
        assert seen["10.0.0.3"]["alive"]
        assert view()["groups"][0]["members"] == []  # it left the group with its lease
        wait_for(lambda: "fd00::2" not in a.members("ff15::1:5"))
        line = next(x for x in proxy("status").stdout.splitlines() if "10.0.0.2" in x)
        assert "expired" in line
        assert written.replace("T", " ").replace("Z", " UTC") in line
        # forget: refused for a live host, done for the expired one, 3 for an unknown one
        r = proxy("host", "forget", "10.0.0.1")
        assert r.exit_code == 2
        assert r.stderr.strip().endswith(
            "host 10.0.0.1 is alive (its agent is registered): stop its agent first"
        )
        assert len(r.stderr.strip().splitlines()) == 1
        assert proxy("host", "forget", "10.0.0.2").exit_code == 0
        assert "10.0.0.2" not in states()
        r = proxy("host", "forget", "10.0.0.2")
        assert r.exit_code == 3
        assert "host 10.0.0.2 has no record in domain" in r.stderr
        assert proxy("host", "forget", "10.0.0.300").exit_code == 2
        # a host that registers again is alive again (its record rewritten)
        c.stop(revoke=False)
        wait_for(lambda: states()["10.0.0.3"] == "expired", timeout=5)
        c.start()
        wait_for(lambda: states()["10.0.0.3"] == "alive")
    finally:
        a.stop()
        b.stop()
        c.stop()
        store.close()


def test_nothing_is_written_at_rest(etcd, domain, tmp_path):
    """The host records are written at registration and on real changes only:
    at rest the revision does not move (the leases' refreshes are no writes)."""
    store = Store(EtcdSettings(parse_endpoints(etcd.url), domain))
    a = Host(tmp_path, "10.0.0.1", etcd.url, domain, ttl=2).start()
    b = Host(tmp_path, "10.0.0.2", etcd.url, domain, ttl=2).start()
    try:
        wait_for(lambda: store.get(store.layout.host("10.0.0.2")) is not None)
        time.sleep(1.5)  # the registrations' echoes settle
        before = store.snapshot().revision
        time.sleep(2 * 2 + 1)  # more than two TTLs: several refreshes and kernel reads each
        assert store.snapshot().revision == before
    finally:
        a.stop()
        b.stop()
        store.close()
