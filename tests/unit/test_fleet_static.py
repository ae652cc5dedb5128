"""What the agent added is never saved as static: the service's save and the CLIs' writes
leave out every member, group and entry of the agents' ledgers."""

from __future__ import annotations

import json
import os
from ipaddress import IPv4Address as Ip
from pathlib import Path

from fakes import FakeMulticKernel, FakeMultisKernel

from multicast_admin.client import Client
from multicast_admin.config import CLIENT, SERVER
from multicast_admin.fleet.ledger import Ledger, ledger_path
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.server import Server

G, G2 = "239.1.1.1", "239.1.1.2"


def _ledger() -> None:
    ledger = Ledger(ledger_path("default", Path(os.environ["MULTICAST_PROXY_RUN_DIR"])))
    ledger.members = {(Ip(G), Ip("10.0.0.2")), (Ip(G2), Ip("10.0.0.3"))}
    ledger.created_groups = {Ip(G2)}
    ledger.entries = {(Ip("10.0.0.5"), 5000, Ip(G))}
    ledger.save()


def _saved(state_dir: Path, role: str) -> dict:
    return json.loads((state_dir / f"{role}.json").read_text())


def test_service_stop_saves_only_static_members(state_dir):
    kernel = FakeMultisKernel()
    kernel.set_group(G, ["10.0.0.2", "10.9.9.9"])  # 10.0.0.2: the agent's, 10.9.9.9: static
    kernel.set_group(G2, ["10.0.0.3"])  # created by the agent, only its member
    _ledger()
    SERVER.save(Server(MultisNetlink(kernel)))
    groups = _saved(state_dir, "multis")["groups"]
    assert [(g["group"], g["members"]) for g in groups] == [(G, ["10.9.9.9"])]
    assert kernel.state()[G2] == (0, ["10.0.0.3"])  # the kernel itself is left as it is


def test_an_agents_group_with_a_static_member_is_saved_with_it_alone(state_dir):
    kernel = FakeMultisKernel()
    kernel.set_group(G2, ["10.0.0.3", "10.7.7.7"])
    _ledger()
    SERVER.save(Server(MultisNetlink(kernel)))
    assert [(g["group"], g["members"]) for g in _saved(state_dir, "multis")["groups"]] == [
        (G2, ["10.7.7.7"])
    ]


def test_service_stop_saves_only_static_entries(state_dir):
    kernel = FakeMulticKernel()
    kernel.set_entry("10.0.0.5", 5000, G)  # the agent's
    kernel.set_entry("10.0.0.6", 5000, G)  # static
    _ledger()
    CLIENT.save(Client(MulticNetlink(kernel)))
    assert [e["server"] for e in _saved(state_dir, "multic")["entries"]] == ["10.0.0.6"]


def test_a_static_change_does_not_save_the_agents_members(multis_admin, multis_kernel, state_dir):
    multis_kernel.set_group(G, ["10.0.0.2"])
    _ledger()
    assert multis_admin("-A", "-m", G, "-j", "10.9.9.9").exit_code == 0
    assert multis_kernel.state()[G] == (0, ["10.0.0.2", "10.9.9.9"])
    groups = _saved(state_dir, "multis")["groups"]
    assert [(g["group"], g["members"]) for g in groups] == [(G, ["10.9.9.9"])]


def test_listings_mark_what_the_agent_manages(
    multis_admin, multic_admin, multis_kernel, multic_kernel
):
    multis_kernel.set_group(G, ["10.0.0.2", "10.9.9.9"])
    multic_kernel.set_entry("10.0.0.5", 5000, G)
    multic_kernel.set_entry("10.0.0.6", 5000, G)
    _ledger()
    members = multis_admin("-L", "-m", G, "--json").json()["members"]
    assert [(m["address"], m["agent"]) for m in members] == [
        ("10.0.0.2", True),
        ("10.9.9.9", False),
    ]
    text = multis_admin("-L", "-m", G).stdout
    assert "10.0.0.2 (agent)" in text
    assert "10.9.9.9 (agent)" not in text
    entries = multic_admin("-L", "--json").json()["entries"]
    assert [(e["server"], e["agent"]) for e in entries] == [("10.0.0.5", True), ("10.0.0.6", False)]
    assert "10.0.0.5 (agent)" in multic_admin("-L").stdout
    one = multic_admin("-P", "-i", "10.0.0.5", "-p", "5000", "--json").json()
    assert one["agent"] is True
