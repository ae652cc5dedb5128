"""multicast-proxy status: every group with its sources and members, every agent."""

from __future__ import annotations

from contextlib import closing

import click

from .cli_common import CONTEXT_SETTINGS, echo_json, listing, table
from .cli_etcd import etcd_options
from .fleet.settings import Conf, EtcdSettings
from .fleet.status import fleet_status
from .fleet.store import Store


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@etcd_options
def status(as_json: bool, conf: Conf, etcd: EtcdSettings) -> None:
    """The domain's groups and agents, as etcd has them now."""
    with closing(Store(etcd)) as store:
        view = fleet_status(store)
    if as_json:
        echo_json(view)
        return
    click.echo(f"domain {view['domain']} (revision {view['revision']})")
    click.echo(
        table(
            ["GROUP", "PORT", "SOURCES", "MEMBERS"],
            [
                [g["group"], g["port"], listing(g["sources"]) or "-", listing(g["members"]) or "-"]
                for g in view["groups"]
            ],
        )
    )
    click.echo("")
    click.echo(
        table(
            ["AGENT", "HOST", "ROLES", "STATE", "LAST SEEN", "IN STEP"],
            [
                [
                    listing(a["addresses"]) or a["address"],
                    a["hostname"],
                    ",".join(a["roles"]) or "-",
                    a["state"],
                    _seen(a),
                    _in_step(a),
                ]
                for a in view["agents"]
            ],
        )
    )


def _seen(agent: dict) -> str:
    ago = agent["last_seen_seconds_ago"]
    if agent["alive"]:
        return f"{ago}s ago"
    when = (agent["last_seen"] or "?").replace("T", " ").replace("Z", " UTC")
    return when if ago is None else f"{when} ({_duration(ago)} ago)"


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _in_step(agent: dict) -> str:
    if not agent["alive"]:
        return "-"
    return "yes" if agent["in_step"] else "no: " + "; ".join(agent["problems"])
