"""multicast-proxy agent: this host's membership, kept in step with the domain."""

from __future__ import annotations

import logging
import signal
import threading
from ipaddress import IPv4Address
from pathlib import Path
from types import FrameType

import click

from .addresses import check_member, parse_ipv4
from .cli_common import CONTEXT_SETTINGS, Env
from .cli_etcd import etcd_options
from .errors import InvalidArgument
from .fleet.agent import Agent, default_address
from .fleet.backend import KernelBackend
from .fleet.ledger import Ledger, ledger_path
from .fleet.membership import PROC_IGMP, Membership
from .fleet.settings import Conf, EtcdSettings, agent_settings
from .fleet.store import Store


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--address", help="The address other hosts reach this one at.")
@click.option("--join", multiple=True, metavar="GROUP", help="Be a member of GROUP (repeatable).")
@click.option("--ttl", type=int, help="Lease TTL in seconds (default 10).")
@click.option(
    "--igmp",
    type=click.Path(dir_okay=False, path_type=Path),
    default=str(PROC_IGMP),
    show_default=True,
    help="Where the namespace's IGMP joins are read.",
)
@etcd_options
@click.pass_obj
def agent(
    env: Env,
    address: str | None,
    join: tuple[str, ...],
    ttl: int | None,
    igmp: Path,
    conf: Conf,
    etcd: EtcdSettings,
) -> None:
    """Keep this host's multis members and multic entries equal to the domain's."""
    settings = agent_settings(conf, etcd, address=address, join=join, ttl=ttl)
    for group in settings.join:
        parse_ipv4(group, "--join group")
    me = parse_ipv4(settings.address, "--address") if settings.address else None
    me = me or default_address(settings)
    try:
        check_member(me)
    except InvalidArgument as error:
        raise InvalidArgument(f"address {me} of this host: {error}; give --address") from None
    logging.basicConfig(level=logging.INFO, format="multicast-proxy agent: %(message)s")
    ledger = Ledger.load(ledger_path(etcd.domain))
    the_agent = Agent(
        settings,
        IPv4Address(me),
        Store(etcd),
        KernelBackend(env.open_server, env.open_client, ledger),
        Membership(igmp),
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    click.echo(f"multicast-proxy agent: {me} in domain {etcd.domain}", err=True)
    the_agent.run(stop)
