"""multis_admin: the groups and members of the sending host (the multis module)."""

from __future__ import annotations

import click

from .addresses import parse_ip
from .cli_common import (
    CONTEXT_SETTINGS,
    AdminCommand,
    counter_lines,
    echo_json,
    env_of,
    listing,
    note,
    pick_command,
    rule,
    single,
    table,
)
from .config import SERVER
from .fleet.ledger import agent_managed
from .lean import use_lean_pyroute2
from .models import Group, ServerCounters
from .server import JoinResult, QuitResult, Server, check_join, check_quit

PROG = "multis_admin"

EXAMPLES = """\b
Examples:
  multis_admin -A -m 239.1.1.1 -j 10.0.0.2,10.0.0.3   create the group, add two members
  multis_admin -A -m 239.1.1.1 -q 10.0.0.3            remove a member
  multis_admin -A -m 239.1.1.1                        create an empty group
  multis_admin -A -m 255.255.255.255 --broadcast -j 10.0.0.2
  multis_admin -S                                     list the groups
  multis_admin -L -m 239.1.1.1                        list a group's members and counters
  multis_admin -P                                     statistics, every drop reason
  multis_admin -P -m 239.1.1.1 --json                 one group's statistics as JSON
  multis_admin -D -m 239.1.1.1                        delete a group
  multis_admin -C                                     delete every group

\b
Exit codes: 0 done, 1 other error, 2 usage or invalid input, 3 not found,
4 limit reached, 5 module not loaded, 6 not permitted, 7 state file, 8 conflict.
Every change is saved to /etc/multicast-proxy/multis.json.
"""

SERVER_COUNTERS = {
    "datagrams": "datagrams fanned out",
    "packets": "copies sent",
    "bytes": "bytes sent (IP)",
    "drop_no_member": "dropped: datagrams to a group with no member",
    "drop_nomem": "dropped copies: out of memory",
    "drop_no_route": "dropped copies: no route to the member",
    "drop_xmit": "dropped copies: refused by the output path",
    "drop_too_big": "dropped copies: DF set, over the path MTU",
}

RULES = {
    "-A": rule(needs=["-m"], takes=["-j", "-q", "--broadcast", "--vrrp"], needs_text="-m GROUP"),
    "-D": rule(needs=["-m"], needs_text="-m GROUP"),
    "-C": rule(),
    "-P": rule(takes=["-m", "--json"]),
    "-L": rule(needs=["-m"], takes=["--json"], needs_text="-m GROUP"),
    "-S": rule(takes=["--json"]),
    "--reset-stats": rule(),
}


@click.command(
    name=PROG,
    cls=AdminCommand,
    context_settings=CONTEXT_SETTINGS,
    epilog=EXAMPLES,
    help="Configure the multicast groups this host fans out to unicast members "
    "(the multis kernel module).  Give exactly one of -A -D -C -P -L -S --reset-stats.",
)
@click.option(
    "-A", "--add", is_flag=True, help="Create a group and/or add (-j) or remove (-q) members."
)
@click.option("-D", "--delete", is_flag=True, help="Delete a group (-m) and its members.")
@click.option("-C", "--clear", is_flag=True, help="Delete every group.")
@click.option("-P", "--stats", is_flag=True, help="Show statistics, of one group with -m.")
@click.option("-L", "--list", "list_", is_flag=True, help="List the members of a group (-m).")
@click.option("-S", "--show", is_flag=True, help="List the groups.")
@click.option("--reset-stats", is_flag=True, help="Zero every counter.")
@click.option("-m", "--multiip", "group", multiple=True, metavar="GROUP", help="Group address.")
@click.option("-j", "--join", multiple=True, metavar="IP[,IP...]", help="Members to add (with -A).")
@click.option(
    "-q", "--quit", "quit_", multiple=True, metavar="IP[,IP...]", help="Members to remove (-A)."
)
@click.option("--broadcast", is_flag=True, help="The group is a broadcast address (with -A).")
@click.option("--vrrp", is_flag=True, help="Fan out VRRP (IP protocol 112) too (with -A).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (-P, -L, -S).")
@click.pass_context
def cli(
    ctx: click.Context,
    add: bool,
    delete: bool,
    clear: bool,
    stats: bool,
    list_: bool,
    show: bool,
    reset_stats: bool,
    group: tuple[str, ...],
    join: tuple[str, ...],
    quit_: tuple[str, ...],
    broadcast: bool,
    vrrp: bool,
    as_json: bool,
) -> None:
    given = {
        name
        for name, value in (
            ("-m", group),
            ("-j", join),
            ("-q", quit_),
            ("--broadcast", broadcast),
            ("--vrrp", vrrp),
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
            "-S": show,
            "--reset-stats": reset_stats,
        },
        given,
        RULES,
    )
    if join and quit_:
        raise click.UsageError("-j and -q cannot be combined: join and quit separately")
    if quit_ and (broadcast or vrrp):
        raise click.UsageError("--broadcast and --vrrp are options of a group, not of -q")
    target = single(group, "-m")
    # Bad input is answered before the kernel is even asked (module loaded or not).
    if command == "-A" and quit_:
        check_quit(target, quit_)
    elif command == "-A":
        check_join(target, join, broadcast=broadcast)
    elif target is not None:
        parse_ip(target, "group")

    env = env_of(ctx)
    with env.open_server() as server:
        state = SERVER.state_file(env.state_dir)
        tell = note(PROG)
        if command == "-A" and quit_:
            result = SERVER.change(server, lambda s: s.quit(target, quit_), state, tell)
            _report_quit(result)
        elif command == "-A":
            result = SERVER.change(
                server, lambda s: s.join(target, join, broadcast=broadcast, vrrp=vrrp), state, tell
            )
            _report_join(result, bool(join))
        elif command == "-D":
            SERVER.change(server, lambda s: s.delete(target), state, tell)
            click.echo(f"group {target} deleted")
        elif command == "-C":
            count = SERVER.change(server, _clear, state, tell)
            click.echo(f"every group deleted ({count})")
        elif command == "--reset-stats":
            server.reset_stats()
            click.echo("counters reset")
        elif command == "-S":
            _show(server, as_json)
        elif command == "-L":
            _list(server, target, as_json)
        elif target is not None:
            _group_stats(server, target, as_json)
        else:
            _stats(server, as_json)


def _clear(server: Server) -> int:
    count = len(server.groups())
    server.clear()
    return count


def _options(group: Group) -> str:
    names = [n for n, on in (("broadcast", group.broadcast), ("vrrp", group.vrrp)) if on]
    return ",".join(names) or "-"


def _report_join(result: JoinResult, members_given: bool) -> None:
    group = result.group
    if result.created:
        click.echo(f"group {group} created")
    elif not members_given:
        click.echo(f"group {group} already exists, unchanged")
    if result.added:
        click.echo(f"group {group}: added {listing(result.added)}")
    if result.already:
        verb = "is already a member" if len(result.already) == 1 else "are already members"
        click.echo(f"group {group}: {listing(result.already)} {verb}, unchanged")
    if result.repeated:
        click.echo(f"group {group}: {listing(result.repeated)} given more than once, counted once")


def _report_quit(result: QuitResult) -> None:
    click.echo(f"group {result.group}: removed {listing(result.removed)}")
    if result.repeated:
        click.echo(
            f"group {result.group}: {listing(result.repeated)} given more than once, counted once"
        )


def _show(server: Server, as_json: bool) -> None:
    groups = server.groups()
    if as_json:
        echo_json({"groups": [g.to_json() for g in groups]})
        return
    if not groups:
        click.echo(f"no group configured (add one: {PROG} -A -m GROUP -j IP[,IP...])")
        return
    rows = [
        (
            str(g.address),
            g.member_count,
            _options(g),
            g.stats.datagrams,
            g.stats.packets,
            g.stats.bytes,
            _drops(g.stats),
        )
        for g in groups
    ]
    headers = ("GROUP", "MEMBERS", "OPTIONS", "DATAGRAMS", "COPIES", "BYTES", "DROPPED")
    click.echo(table(headers, rows))


def _drops(counters: ServerCounters) -> int:
    # every drop_* counter, so that a new drop reason is never left out of the total
    return sum(value for name, value in counters.to_json().items() if name.startswith("drop_"))


def _list(server: Server, target: str | None, as_json: bool) -> None:
    assert target is not None
    group = server.group(target)
    members = server.members(group.address)
    agent = {m for g, m in agent_managed().members if g == group.address}
    if as_json:
        listed = [{**m.to_json(), "agent": m.address in agent} for m in members]
        echo_json({**group.to_json(), "members": listed})
        return
    limit = server.stats().max_members
    options = "" if _options(group) == "-" else f", {_options(group)}"
    click.echo(f"group {group.address}: {len(members)} of {limit} members{options}")
    if not members:
        click.echo(f"no member (add some: {PROG} -A -m {group.address} -j IP[,IP...])")
        return
    rows = [
        (
            f"{m.address} (agent)" if m.address in agent else str(m.address),
            m.stats.packets,
            m.stats.bytes,
            m.stats.drop_nomem,
            m.stats.drop_no_route,
            m.stats.drop_xmit,
            m.stats.drop_too_big,
        )
        for m in members
    ]
    headers = ("MEMBER", "COPIES", "BYTES", "NO MEMORY", "NO ROUTE", "OUTPUT REFUSED", "TOO BIG")
    click.echo(table(headers, rows))


def _group_stats(server: Server, target: str, as_json: bool) -> None:
    group = server.group(target)
    if as_json:
        echo_json(group.to_json())
        return
    click.echo(f"group {group.address} ({group.member_count} members)")
    click.echo(counter_lines(group.stats.to_json(), SERVER_COUNTERS))


def _stats(server: Server, as_json: bool) -> None:
    status = server.stats()
    if as_json:
        echo_json(status.to_json())
        return
    click.echo("all groups")
    click.echo(counter_lines(status.stats.to_json(), SERVER_COUNTERS))
    click.echo("")
    click.echo(f"  groups             {status.group_count} of {status.max_groups}")
    click.echo(f"  members per group  at most {status.max_members}")
    click.echo(f"  marker TOS         {status.marker_tos:#04x}")


def main() -> None:
    """Console script entry point."""
    use_lean_pyroute2()
    cli.main(prog_name=PROG)


__all__ = ["cli", "main"]

if __name__ == "__main__":
    main()
