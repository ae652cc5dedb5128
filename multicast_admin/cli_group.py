"""multicast-proxy group add|delete|list: the fleet's group definitions in etcd."""

from __future__ import annotations

from contextlib import closing

import click

from .cli_common import CONTEXT_SETTINGS, echo_json, table
from .cli_etcd import etcd_options
from .fleet.groups import check_definition, define, undefine
from .fleet.settings import Conf, EtcdSettings
from .fleet.store import Store
from .fleet.view import View


@click.group(context_settings=CONTEXT_SETTINGS)
def group() -> None:
    """Define the fleet's groups (once, for every host of the domain)."""


@group.command("add")
@click.argument("address", metavar="GROUP")
@click.option("--port", required=True, help="UDP destination port (0: any port).")
@click.option("--broadcast", is_flag=True, help="GROUP is a broadcast address.")
@click.option("--vrrp", is_flag=True, help="Copy VRRP (IP protocol 112) too.")
@etcd_options
def add(
    address: str, port: str, broadcast: bool, vrrp: bool, conf: Conf, etcd: EtcdSettings
) -> None:
    """Define GROUP with its port: every agent of the domain configures it."""
    spec = check_definition(address, port, broadcast=broadcast, vrrp=vrrp)
    with closing(Store(etcd)) as store:
        created = define(store, spec)
    what = "defined" if created else "already defined so: unchanged"
    click.echo(f"group {spec.group} port {spec.port}: {what} (domain {etcd.domain})")


@group.command("delete")
@click.argument("address", metavar="GROUP")
@etcd_options
def delete(address: str, conf: Conf, etcd: EtcdSettings) -> None:
    """Delete GROUP's definition; the agents remove what they configured for it."""
    with closing(Store(etcd)) as store:
        undefine(store, address)
    click.echo(f"group {address}: deleted (domain {etcd.domain})")


@group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@etcd_options
def list_groups(as_json: bool, conf: Conf, etcd: EtcdSettings) -> None:
    """The groups defined in the domain."""
    with closing(Store(etcd)) as store:
        definitions = View.of(store.layout, store.snapshot()).definitions()
    if as_json:
        echo_json({"domain": etcd.domain, "groups": [d.to_json() for d in definitions.values()]})
        return
    rows = [
        [str(d.group), d.port, "broadcast" if d.broadcast else "", "vrrp" if d.vrrp else ""]
        for d in definitions.values()
    ]
    click.echo(table(["GROUP", "PORT", "BROADCAST", "VRRP"], rows))
