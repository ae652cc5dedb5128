"""multicast-proxy host forget: remove the record of a host that left the fleet."""

from __future__ import annotations

from contextlib import closing

import click

from .cli_common import CONTEXT_SETTINGS
from .cli_etcd import etcd_options
from .fleet.settings import Conf, EtcdSettings
from .fleet.status import forget as forget_host
from .fleet.store import Store


@click.group(context_settings=CONTEXT_SETTINGS)
def host() -> None:
    """The hosts `status` lists, alive or not."""


@host.command("forget")
@click.argument("address", metavar="ADDRESS")
@etcd_options
def forget(address: str, conf: Conf, etcd: EtcdSettings) -> None:
    """Remove the record of ADDRESS's host (expired or stopped): `status` no longer lists it."""
    with closing(Store(etcd)) as store:
        forget_host(store, address)
    click.echo(f"host {address}: forgotten (domain {etcd.domain})")
