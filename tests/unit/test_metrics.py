"""The Prometheus exporter against the fake kernels: every counter, with its labels.

The exposition text is parsed back with prometheus_client's own parser, so
what is asserted is what a Prometheus server would store.  The real module
scraped by a real Prometheus server is tests/vm/test_metrics.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from ipaddress import IPv4Address

import pytest
from click.testing import CliRunner
from fakes import FakeMulticKernel, FakeMultisKernel
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from multicast_admin import cli_proxy, uapi
from multicast_admin.cli_common import Env
from multicast_admin.client import Client
from multicast_admin.errors import ModuleNotLoaded
from multicast_admin.metrics import KernelCollector
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.server import Server


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of an exposition text."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def kernels():
    server = FakeMultisKernel()
    server.set_group("239.1.1.1", ["10.0.0.2", "10.0.0.3"])
    server.set_group("239.1.1.2", ["10.0.0.4"])
    g = server.groups[IPv4Address("239.1.1.1")]
    g.stats = {"DATAGRAMS": 7, "PACKETS": 13, "BYTES": 1300, "DROP_NO_ROUTE": 1}
    g.member_stats[IPv4Address("10.0.0.2")] = {"PACKETS": 7, "BYTES": 700}
    g.member_stats[IPv4Address("10.0.0.3")] = {"PACKETS": 6, "BYTES": 600, "DROP_NO_ROUTE": 1}
    server.stats = {"DATAGRAMS": 9, "PACKETS": 13, "BYTES": 1300, "DROP_NO_MEMBER": 2}
    client = FakeMulticKernel()
    client.set_entry("10.0.0.1", 5000, "239.1.1.1")
    client.entries[(IPv4Address("10.0.0.1"), 5000)].stats = {"PACKETS": 5, "BYTES": 500}
    client.stats = {"PACKETS": 5, "BYTES": 500, "NOT_LOCAL": 3}
    return server, client


def collect(server_kernel, client_kernel, **kwargs) -> dict:
    def open_server() -> Server:
        if server_kernel is None:
            raise ModuleNotLoaded("multis")
        return Server(MultisNetlink(server_kernel))

    def open_client() -> Client:
        if client_kernel is None:
            raise ModuleNotLoaded("multic")
        return Client(MulticNetlink(client_kernel))

    registry = CollectorRegistry(auto_describe=False)
    registry.register(KernelCollector(open_server, open_client, **kwargs))
    return samples(generate_latest(registry).decode())


def test_every_counter_with_its_labels(kernels):
    got = collect(*kernels)
    g1 = (("group", "239.1.1.1"),)
    assert got[("multicast_proxy_module_loaded", (("module", "multis"),))] == 1
    assert got[("multicast_proxy_module_loaded", (("module", "multic"),))] == 1
    # sending side: namespace, group, member; each drop reason its own series
    assert got[("multis_datagrams_total", ())] == 9
    assert got[("multis_dropped_total", (("reason", "no_member"),))] == 2
    assert got[("multis_dropped_total", (("reason", "no_route"),))] == 0
    assert got[("multis_group_datagrams_total", g1)] == 7
    assert got[("multis_group_packets_total", g1)] == 13
    assert got[("multis_group_bytes_total", g1)] == 1300
    assert got[("multis_group_dropped_total", (*g1, ("reason", "no_route")))] == 1
    assert got[("multis_group_members", g1)] == 2
    assert got[("multis_group_members", (("group", "239.1.1.2"),))] == 1
    m3 = (*g1, ("member", "10.0.0.3"))
    assert got[("multis_member_packets_total", m3)] == 6
    assert got[("multis_member_bytes_total", m3)] == 600
    assert got[("multis_member_dropped_total", (*m3, ("reason", "no_route")))] == 1
    assert got[("multis_member_packets_total", (*g1, ("member", "10.0.0.2")))] == 7
    assert got[("multis_groups", ())] == 2
    assert got[("multis_max_groups", ())] == 10
    assert got[("multis_max_members", ())] == 128
    # a member counts no datagrams of its own: no such series
    assert not [k for k in got if k[0] == "multis_member_datagrams_total"]
    # receiving side: namespace and entry
    entry = (("group", "239.1.1.1"), ("port", "5000"), ("server", "10.0.0.1"))
    assert got[("multic_packets_total", ())] == 5
    assert got[("multic_not_local_total", ())] == 3
    assert got[("multic_dropped_total", (("reason", "nomem"),))] == 0
    assert got[("multic_entry_packets_total", entry)] == 5
    assert got[("multic_entry_bytes_total", entry)] == 500
    assert got[("multic_entries", ())] == 1


def test_a_module_not_loaded_is_a_zero_not_a_failed_scrape(kernels):
    got = collect(None, kernels[1])
    assert got[("multicast_proxy_module_loaded", (("module", "multis"),))] == 0
    assert not [k for k in got if k[0].startswith("multis_")]
    assert got[("multic_packets_total", ())] == 5


def test_no_members_leaves_out_the_member_series(kernels):
    got = collect(*kernels, members=False)
    assert not [k for k in got if k[0].startswith("multis_member_")]
    assert got[("multis_group_packets_total", (("group", "239.1.1.1"),))] == 13
    # and it does not even ask the kernel for them
    assert not [r for r in kernels[0].requests if r.cmd == uapi.MULTIS_CMD_GET_MEMBERS]


def test_textfile_is_written_whole(kernels, tmp_path):
    server, client = kernels
    env = Env(
        open_server=lambda: Server(MultisNetlink(server)),
        open_client=lambda: Client(MulticNetlink(client)),
    )
    path = tmp_path / "multicast_proxy.prom"
    result = CliRunner().invoke(cli_proxy.cli, ["exporter", "--textfile", str(path)], obj=env)
    assert result.exit_code == 0, result.output
    got = samples(path.read_text())
    assert got[("multis_group_packets_total", (("group", "239.1.1.1"),))] == 13
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "127.0.0.1"], "give [ADDRESS]:PORT"),
        (["--listen", "127.0.0.1:70000"], "give [ADDRESS]:PORT"),
        (["--listen", ":9717", "--textfile", "/tmp/x"], "cannot be combined"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "multicast_admin.cli_proxy", "exporter", *args],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_parse_listen():
    assert cli_proxy.parse_listen(":9717") == ("0.0.0.0", 9717)
    assert cli_proxy.parse_listen("[::1]:9717") == ("::1", 9717)
    assert cli_proxy.parse_listen("10.0.0.1:80") == ("10.0.0.1", 80)


def test_serves_http_and_stops_on_sigterm():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "multicast_admin.cli_proxy", "exporter",
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        text = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
                break
            except OSError:
                time.sleep(0.1)
        assert text is not None, proc.stderr
        # no module can be loaded on this host: both say so
        got = samples(text)
        assert got[("multicast_proxy_module_loaded", (("module", "multis"),))] == 0
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
