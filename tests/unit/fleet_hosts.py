"""Fake hosts for the agent tests: fake kernels, an IGMP file, a real etcd, an Agent thread."""

from __future__ import annotations

import sys
import threading
import time
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Callable

from fakes import FakeMulticKernel, FakeMultisKernel

from multicast_admin.client import Client
from multicast_admin.errors import ModuleNotLoaded
from multicast_admin.fleet.agent import Agent
from multicast_admin.fleet.backend import KernelBackend
from multicast_admin.fleet.ledger import Ledger
from multicast_admin.fleet.membership import Membership
from multicast_admin.fleet.settings import AgentSettings, EtcdSettings, parse_endpoints
from multicast_admin.fleet.store import Store
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.server import Server

IGMP_HEAD = "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"


def igmp_text(groups: list[str]) -> str:
    """/proc/net/igmp as the kernel prints it: lo with 224.0.0.1, eth0 with ``groups``."""
    lines = [
        IGMP_HEAD,
        "1\tlo        :     1      V3\n",
        "\t\t\t\t010000E0     1 0:00000000\t\t0\n",
    ]
    lines.append(f"2\teth0      :     {len(groups) + 1}      V3\n")
    for group in groups:
        raw = int.from_bytes(IPv4Address(group).packed, sys.byteorder)
        lines.append(f"\t\t\t\t{raw:08X}     1 0:00000000\t\t0\n")
    lines.append("\t\t\t\t010000E0     1 0:00000000\t\t0\n")
    return "".join(lines)


def igmp6_text(groups: list[str]) -> str:
    """/proc/net/igmp6 as the kernel prints it: lo's and eth0's all-nodes, eth0 with ``groups``."""
    lines = [
        "1    lo              ff020000000000000000000000000001     1 0000000C 0\n",
        "2    eth0            ff020000000000000000000000000001     1 0000000C 0\n",
        "2    eth0            ff0200000000000000000001ff000002     1 00000004 0\n",
    ]
    for group in groups:
        lines.append(f"2    eth0            {IPv6Address(group).packed.hex()}     1 00000004 0\n")
    return "".join(lines)


def wait_for(check: Callable[[], bool], timeout: float = 20.0) -> float:
    """Seconds until ``check()`` held; AssertionError after ``timeout`` (generous:
    a loaded machine; the tests that bound a time give their own)."""
    start = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - start
        except RuntimeError:  # a dict the agent's thread changed while we read it
            pass
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not reached in {timeout} s")
        time.sleep(0.05)


class Host:
    def __init__(
        self,
        tmp: Path,
        address: str,
        etcd_url: str,
        domain: str,
        *,
        sender: bool = True,
        receiver: bool = True,
        join: tuple[str, ...] = (),
        ttl: int = 2,
        address6: str | None = None,
        multis: FakeMultisKernel | None = None,
        multic: FakeMulticKernel | None = None,
        kernel_check: float = 1.0,
    ) -> None:
        self.address = address
        self.address6 = address6
        self.multis = multis or FakeMultisKernel()
        self.multic = multic or FakeMulticKernel()
        self.igmp = tmp / f"{address}.igmp"
        self.igmp.write_text(igmp_text([]))
        self.igmp6 = tmp / f"{address}.igmp6"
        self.igmp6.write_text(igmp6_text([]))
        self.ledger_path = tmp / f"{address}.ledger.json"
        self.sender, self.receiver = sender, receiver
        self.kernel_check = kernel_check
        self.settings = AgentSettings(
            EtcdSettings(parse_endpoints(etcd_url), domain),
            (address, address6) if address6 else (address,),
            join,
            ttl,
        )
        self.thread: threading.Thread | None = None
        self.agent: Agent | None = None

    def open_server(self) -> Server:
        if not self.sender:
            raise ModuleNotLoaded("multis")
        return Server(MultisNetlink(self.multis))

    def open_client(self) -> Client:
        if not self.receiver:
            raise ModuleNotLoaded("multic")
        return Client(MulticNetlink(self.multic))

    def start(self, store: Store | None = None) -> Host:
        backend = KernelBackend(self.open_server, self.open_client, Ledger.load(self.ledger_path))
        self.agent = Agent(
            self.settings,
            [ip_address(a) for a in self.settings.addresses],
            store or Store(self.settings.etcd, timeout=1),
            backend,
            Membership(self.igmp, self.igmp6),
            poll=0.1,
            retry=0.5,
            kernel_check=self.kernel_check,
        )
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop_event,), daemon=True)
        self.thread.start()
        return self

    def stop(self, *, revoke: bool = True) -> None:
        """Stop the agent; ``revoke=False`` is a killed agent (its lease expires)."""
        if self.thread is None:
            return
        self.agent.revoke_on_exit = revoke
        self.stop_event.set()
        self.thread.join(10)
        self.thread = None

    def joins(self, *groups: str) -> None:
        """The local applications' groups now (what /proc/net/igmp and igmp6 show)."""
        self.igmp.write_text(igmp_text([g for g in groups if ":" not in g]))
        self.igmp6.write_text(igmp6_text([g for g in groups if ":" in g]))

    def members(self, group: str) -> list[str]:
        return self.multis.state().get(group, (0, []))[1]

    def entries(self) -> dict[str, str]:
        return self.multic.state()
