"""`multicast-proxy agent` as an operator runs it (a process of its own), on a real etcd.

The host has neither module, so the agent has no role: it still registers
under its lease, and its key says why it configures nothing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from ipaddress import ip_address

import pytest
from fleet_hosts import wait_for

from multicast_admin.errors import InvalidArgument
from multicast_admin.fleet.agent import host_addresses
from multicast_admin.fleet.settings import AgentSettings, EtcdSettings, parse_endpoints
from multicast_admin.fleet.store import Store


@pytest.fixture
def run_agent(etcd, domain, tmp_path):
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        env = {
            **os.environ,
            "MULTICAST_PROXY_RUN_DIR": str(tmp_path / "run"),
            "MULTICAST_PROXY_AGENT_CONF": str(tmp_path / "none.conf"),
        }
        argv = [sys.executable, "-m", "multicast_admin.cli_proxy", "agent"]
        argv += ["--etcd", etcd.url, "--domain", domain, *args]
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


@pytest.fixture
def store(etcd, domain):
    s = Store(EtcdSettings(parse_endpoints(etcd.url), domain))
    yield s
    s.close()


def _agent(store: Store, address: str) -> dict | None:
    entry = store.get(store.layout.agent(address))
    return json.loads(entry.value) if entry else None


def test_sigterm_revokes_the_lease_at_once(run_agent, store):
    proc = run_agent("--address", "10.0.0.7", "--join", "239.1.1.1")
    wait_for(lambda: _agent(store, "10.0.0.7") is not None, timeout=15)
    seen = _agent(store, "10.0.0.7")
    assert seen["roles"] == []
    assert "--join: multic is not loaded here, so this host is no member" in seen["problems"]
    assert seen["in_step"] is False
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0
    assert _agent(store, "10.0.0.7") is None  # revoked, not left to expire


def test_sigkill_leaves_the_lease_to_expire_within_ttl_plus_one_second(run_agent, store):
    proc = run_agent("--address", "10.0.0.8", "--ttl", "2")
    wait_for(lambda: _agent(store, "10.0.0.8") is not None, timeout=15)
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    killed = time.monotonic()
    assert _agent(store, "10.0.0.8") is not None  # nothing revoked it
    wait_for(lambda: _agent(store, "10.0.0.8") is None, timeout=4)
    assert time.monotonic() - killed <= 2 + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--address", "10.0.0.300"], "--address '10.0.0.300' is not a valid IP address"),
        (["--address", "127.0.0.1"], "address 127.0.0.1 of this host"),
        ([], "IPv4: address 127.0.0.1 of this host: member 127.0.0.1 is a loopback address"),
        (["--address", "::1"], "address ::1 of this host: member ::1 is a loopback address"),
        (
            ["--address", "10.0.0.9", "--address", "10.0.0.10"],
            "--address 10.0.0.10: 10.0.0.9 is already this host's IPv4 address",
        ),
        (["--address", "10.0.0.9", "--join", "ff15::1:5:"], "--join group 'ff15::1:5:'"),
        (["--address", "10.0.0.9", "--ttl", "1"], "--ttl 1: give 2 to 3600 seconds"),
        (["--address", "10.0.0.9", "--join", "239.1"], "--join group '239.1'"),
    ],
)
def test_bad_agent_options(run_agent, store, args, message):
    proc = run_agent(*args)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 2
    assert message in err.decode()
    assert store.snapshot().entries == {}


def test_the_default_address_of_an_ipv6_endpoint_is_ipv6(etcd):
    """The route to an IPv6 endpoint gives an IPv6 address (here ::1, refused:
    another host could not reach it); a family without one is left out."""
    settings = AgentSettings(EtcdSettings(parse_endpoints("http://[::1]:2379")))
    with pytest.raises(InvalidArgument) as refused:
        host_addresses(settings)
    assert "IPv6: address ::1 of this host: member ::1 is a loopback address" in str(refused.value)
    assert "IPv4: " in str(refused.value)  # [::1] has no IPv4 address
    given = AgentSettings(EtcdSettings(parse_endpoints("http://[::1]:2379")), ("10.0.0.9",))
    assert host_addresses(given) == [ip_address("10.0.0.9")]
    both = AgentSettings(
        EtcdSettings(parse_endpoints("http://[::1]:2379")), ("fd00::9", "10.0.0.9")
    )
    assert host_addresses(both) == [ip_address("fd00::9"), ip_address("10.0.0.9")]
