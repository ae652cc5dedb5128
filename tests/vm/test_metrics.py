"""`multicast-proxy exporter` scraped by a real Prometheus server, in a real kernel.

Guest side: tests/vm/guest/metrics.py (one VM boot).  Prometheus is Debian's
package, unpacked on the host by scripts/setup-prometheus.sh; the guest sees
it over the shared root.  What is asserted is what Prometheus's HTTP API
answers: exactly the counts the traffic produced, on both sides.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.vm import harness
from tests.vm.conftest import GuestFacts, boot_and_run

GUEST = "tests/vm/guest/metrics.py"
GROUP, COUNT, MORE = "239.1.1.1", 20, 5
MEMBERS = ("10.0.0.11", "10.0.0.12")


@pytest.fixture(scope="module")
def facts() -> GuestFacts:
    proc = subprocess.run(
        [str(harness.REPO / "scripts" / "setup-prometheus.sh")], capture_output=True, text=True
    )
    if proc.returncode != 0:
        pytest.fail(f"setup-prometheus.sh failed:\n{proc.stderr}", pytrace=False)
    return boot_and_run(GUEST, proc.stdout.strip(), timeout=1200)


def test_without_prometheus_the_traffic_itself_arrives(facts):
    for name in ("recv1", "recv2"):
        got = facts["configure"]["received"][name]
        assert (got["count"], got["intact"]) == (COUNT, True), name


def test_prometheus_scrapes_both_sides(facts):
    step = facts["scrape"]
    assert step["prometheus"]["loaded"] == {"module=multic": 1.0, "module=multis": 1.0}


def test_prometheus_has_exactly_the_counts_the_traffic_produced(facts):
    seen = facts["scrape"]["prometheus"]
    group = f"group={GROUP}"
    assert seen["datagrams"] == {group: COUNT}
    assert seen["packets"] == {group: 2 * COUNT}
    assert seen["member_packets"] == {f"{group},member={m}": COUNT for m in MEMBERS}
    assert set(seen["group_drops"].values()) == {0.0}
    assert {"nomem", "no_route", "xmit"} <= {k.split("reason=")[1] for k in seen["group_drops"]}
    # recv1 is scraped: its one entry restored every copy
    assert seen["entry_packets"] == {f"{group},port=5000,server=10.0.0.1": COUNT}


def test_prometheus_agrees_with_the_cli(facts):
    step = facts["scrape"]
    group = step["cli"]["group"]
    assert group["stats"]["packets"] == step["prometheus"]["packets"][f"group={GROUP}"]
    for member in group["members"]:
        key = f"group={GROUP},member={member['address']}"
        assert member["stats"]["packets"] == step["prometheus"]["member_packets"][key]
    (entry,) = step["cli"]["entries"]["entries"]
    assert entry["stats"]["packets"] == COUNT


def test_the_metrics_are_live(facts):
    step = facts["live"]
    assert step["seconds"] < 60  # scrapes are every 15 s
    assert step["entry_seconds"] < 60
    assert step["entry_packets"] == {f"group={GROUP},port=5000,server=10.0.0.1": COUNT + MORE}
    assert set(step["up"].values()) == {1.0}


def test_exporter_and_prometheus_stop_cleanly(facts):
    assert facts.data["exits"] == [0, 0, 0], facts.data.get("logs_tail")
    facts.assert_clean_end()
