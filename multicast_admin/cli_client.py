"""multic_admin: the (server, port) -> group entries of a receiving host (the multic module)."""

from __future__ import annotations

import click

from .addresses import IPAddress, host_port
from .cli_common import (
    CONTEXT_SETTINGS,
    AdminCommand,
    counter_lines,
    echo_json,
    env_of,
    note,
    pick_command,
    rule,
    single,
    table,
)
from .client import AddOutcome, AddResult, Client, check_add, parse_key
from .config import CLIENT
from .fleet.ledger import agent_managed
from .lean import use_lean_pyroute2
from .models import ClientEntry

PROG = "multic_admin"

EXAMPLES = """\b
Examples:
  multic_admin -A -i 10.0.0.1 -p 5000 -m 239.1.1.1   copies from 10.0.0.1 to UDP port 5000
                                                      become multicast to 239.1.1.1 again
  multic_admin -A -i 10.0.0.1 -p 0 -m 224.0.0.251    port 0: any port (mDNS, SSDP, ...)
  multic_admin -L                                     list the entries and their counters
  multic_admin -P                                     statistics
  multic_admin -P -i 10.0.0.1 -p 5000 --json          one entry's counters as JSON
  multic_admin -D -i 10.0.0.1 -p 5000                 delete an entry
  multic_admin -C                                     delete every entry

\b
Exit codes: 0 done, 1 other error, 2 usage or invalid input, 3 not found,
4 limit reached, 5 module not loaded, 6 not permitted, 7 state file, 8 conflict.
Every change is saved to /etc/multicast-proxy/multic.json.
"""

CLIENT_COUNTERS = {
    "packets": "copies restored to their group",
    "bytes": "bytes restored (IP)",
    "not_local": "left alone: marked copies not addressed to this host",
    "drop_nomem": "dropped: could not be made writable (out of memory)",
}
NAMESPACE_COUNTERS = {
    **CLIENT_COUNTERS,
    "no_entry": "left alone: marked copies no entry matches",
    "not_udp": "left alone: marked IPv6 packets, not plain UDP",
}

KEY = "-i SERVER and -p PORT"
ADD_NEEDS = "-i SERVER, -p PORT and -m GROUP"
RULES = {
    "-A": rule(needs=["-i", "-p", "-m"], takes=["--broadcast"], needs_text=ADD_NEEDS),
    "-D": rule(needs=["-i", "-p"], needs_text=KEY),
    "-C": rule(),
    "-P": rule(takes=["-i", "-p", "--json"]),
    "-L": rule(takes=["--json"]),
    "--reset-stats": rule(),
}


@click.command(
    name=PROG,
    cls=AdminCommand,
    context_settings=CONTEXT_SETTINGS,
    epilog=EXAMPLES,
    help="Configure which unicast copies this host turns back into multicast "
    "(the multic kernel module).  Give exactly one of -A -D -C -P -L --reset-stats.",
)
@click.option("-A", "--add", is_flag=True, help="Add an entry (-i, -p, -m); moves an existing one.")
@click.option("-D", "--delete", is_flag=True, help="Delete the entry -i SERVER -p PORT.")
@click.option("-C", "--clear", is_flag=True, help="Delete every entry.")
@click.option("-P", "--stats", is_flag=True, help="Show statistics, of one entry with -i and -p.")
@click.option("-L", "--list", "list_", is_flag=True, help="List the entries.")
@click.option("--reset-stats", is_flag=True, help="Zero every counter.")
@click.option("-i", "--ip", "server", multiple=True, metavar="SERVER", help="Sending host.")
@click.option("-p", "--port", multiple=True, metavar="PORT", help="UDP port, 0 = any port.")
@click.option("-m", "--multiip", "group", multiple=True, metavar="GROUP", help="Group address.")
@click.option("--broadcast", is_flag=True, help="The group is a broadcast address (with -A).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (-P, -L).")
@click.pass_context
def cli(
    ctx: click.Context,
    add: bool,
    delete: bool,
    clear: bool,
    stats: bool,
    list_: bool,
    reset_stats: bool,
    server: tuple[str, ...],
    port: tuple[str, ...],
    group: tuple[str, ...],
    broadcast: bool,
    as_json: bool,
) -> None:
    given = {
        name
        for name, value in (
            ("-i", server),
            ("-p", port),
            ("-m", group),
            ("--broadcast", broadcast),
            ("--json", as_json),
        )
        if value
    }
    command = pick_command(
        {
            "-A": add,
            "-D": delete,
            "-C": clear,
            "-P": stats,
            "-L": list_,
            "--reset-stats": reset_stats,
        },
        given,
        RULES,
    )
    if command == "-P" and bool(server) != bool(port):
        raise click.UsageError(f"-P needs both {KEY}, or neither")
    address, udp_port, target = single(server, "-i"), single(port, "-p"), single(group, "-m")
    # Bad input is answered before the kernel is even asked (module loaded or not).
    if command == "-A":
        check_add(address, udp_port, target, broadcast=broadcast)
    elif address is not None:
        parse_key(address, udp_port)

    env = env_of(ctx)
    with env.open_client() as client:
        state = CLIENT.state_file(env.state_dir)
        tell = note(PROG)
        if command == "-A":
            result = CLIENT.change(
                client, lambda c: c.add(address, udp_port, target, broadcast=broadcast), state, tell
            )
            _report_add(result)
        elif command == "-D":
            key = parse_key(address, udp_port)
            CLIENT.change(client, lambda c: c.delete(*key), state, tell)
            click.echo(f"entry {_key(*key)} deleted")
        elif command == "-C":
            count = CLIENT.change(client, _clear, state, tell)
            click.echo(f"every entry deleted ({count})")
        elif command == "--reset-stats":
            client.reset_stats()
            click.echo("counters reset")
        elif command == "-L":
            _list(client, as_json)
        elif address is not None:
            _entry_stats(client.entry(address, udp_port), as_json)
        else:
            _stats(client, as_json)


def _key(server: IPAddress, port: int) -> str:
    return host_port(server, port) + (" (any port)" if port == 0 else "")


def _clear(client: Client) -> int:
    count = len(client.entries())
    client.clear()
    return count


def _report_add(result: AddResult) -> None:
    key = _key(result.server, result.port)
    if result.outcome is AddOutcome.ADDED:
        click.echo(f"entry {key} -> {result.group} added")
    elif result.outcome is AddOutcome.MOVED:
        click.echo(f"entry {key} moved from {result.previous_group} to {result.group}")
    else:
        click.echo(f"entry {key} -> {result.group} already exists, unchanged")


def _port_text(port: int) -> str:
    return "any" if port == 0 else str(port)


def _list(client: Client, as_json: bool) -> None:
    entries = client.entries()
    agent = agent_managed().entries
    if as_json:
        echo_json(
            {
                "entries": [
                    {**e.to_json(), "agent": (e.server, e.port, e.group) in agent} for e in entries
                ]
            }
        )
        return
    if not entries:
        click.echo(f"no entry configured (add one: {PROG} -A -i SERVER -p PORT -m GROUP)")
        return
    rows = [
        (
            f"{e.server} (agent)" if (e.server, e.port, e.group) in agent else str(e.server),
            _port_text(e.port),
            str(e.group),
            e.stats.packets,
            e.stats.bytes,
            e.stats.not_local,
            e.stats.drop_nomem,
        )
        for e in entries
    ]
    headers = ("SERVER", "PORT", "GROUP", "RESTORED", "BYTES", "NOT LOCAL", "NO MEMORY")
    click.echo(table(headers, rows))


def _entry_stats(entry: ClientEntry, as_json: bool) -> None:
    if as_json:
        agent = (entry.server, entry.port, entry.group) in agent_managed().entries
        echo_json({**entry.to_json(), "agent": agent})
        return
    click.echo(f"entry {_key(entry.server, entry.port)} -> {entry.group}")
    click.echo(counter_lines(entry.stats.to_json(), CLIENT_COUNTERS))


def _stats(client: Client, as_json: bool) -> None:
    status = client.stats()
    if as_json:
        echo_json(status.to_json())
        return
    click.echo("all entries")
    click.echo(counter_lines(status.stats.to_json(), NAMESPACE_COUNTERS))
    click.echo("")
    click.echo(f"  entries     {status.entry_count} of {status.max_entries}")
    click.echo(f"  groups      {status.group_count} of {status.max_groups}")
    click.echo(f"  marker TOS  {status.marker_tos:#04x}")


def main() -> None:
    """Console script entry point."""
    use_lean_pyroute2()
    cli.main(prog_name=PROG)


__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
