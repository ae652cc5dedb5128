"""multicast-proxy agent: this host's membership, kept in step with the domain."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from .addresses import parse_ip
from .cli_common import CONTEXT_SETTINGS, Env
from .cli_etcd import etcd_options
from .fleet.agent import Agent, host_addresses
from .fleet.backend import KernelBackend
from .fleet.ledger import Ledger, ledger_path
from .fleet.membership import PROC_IGMP, PROC_IGMP6, Membership
from .fleet.settings import Conf, EtcdSettings, agent_settings
from .fleet.store import Store


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--address",
    "addresses",
    multiple=True,
    metavar="IP",
    help="An address other hosts reach this one at: one per family (IPv4, IPv6).",
)
@click.option("--join", multiple=True, metavar="GROUP", help="Be a member of GROUP (repeatable).")
@click.option("--ttl", type=int, help="Lease TTL in seconds (default 10).")
@click.option(
    "--igmp",
    type=click.Path(dir_okay=False, path_type=Path),
    default=str(PROC_IGMP),
    show_default=True,
    help="Where the namespace's IGMP joins are read.",
)
@click.option(
    "--igmp6",
    type=click.Path(dir_okay=False, path_type=Path),
    default=str(PROC_IGMP6),
    show_default=True,
    help="Where the namespace's MLD (IPv6) joins are read.",
)
@etcd_options
@click.pass_obj
def agent(
    env: Env,
    addresses: tuple[str, ...],
    join: tuple[str, ...],
    ttl: int | None,
    igmp: Path,
    igmp6: Path,
    conf: Conf,
    etcd: EtcdSettings,
) -> None:
    """Keep this host's multis members and multic entries equal to the domain's."""
    settings = agent_settings(conf, etcd, addresses=addresses, join=join, ttl=ttl)
    for group in settings.join:
        parse_ip(group, "--join group")
    mine = host_addresses(settings)
    logging.basicConfig(level=logging.INFO, format="multicast-proxy agent: %(message)s")
    ledger = Ledger.load(ledger_path(etcd.domain))
    the_agent = Agent(
        settings,
        mine,
        Store(etcd),
        KernelBackend(env.open_server, env.open_client, ledger),
        Membership(igmp, igmp6),
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(
        f"multicast-proxy agent: {', '.join(map(str, mine))} in domain {etcd.domain}", err=True
    )
    the_agent.run(stop)
