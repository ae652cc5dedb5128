"""``multicast-proxy trace``: one line per datagram the modules handled, live.

    multicast-proxy trace [-m GROUP] [-i SERVER] [-p PORT] [--drops-only]
                          [--json | --count SECONDS] [--side sender|receiver]
                          [--netns NAME|PATH | --all-netns] [--duration SECONDS]

Built on bcc (multicast_admin.tracing.probe) attached to the tracepoints of
both modules; the words are multicast_admin.tracing.events'.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from types import FrameType

import click

from .addresses import parse_ipv4
from .tracing.events import Clock, Joiner, Raw, Summary, as_json, line
from .tracing.probe import SIDES, Filters, Probe, netns_of, preflight


def _address(value: str | None, what: str) -> str | None:
    return None if value is None else str(parse_ipv4(value, what))


@click.command()
@click.option("-m", "--group", metavar="GROUP", help="Only this group.")
@click.option(
    "-i", "--server", metavar="ADDR", help="Only datagrams of this server (sender's address)."
)
@click.option("-p", "--port", type=click.IntRange(0, 65535), help="Only this UDP port.")
@click.option("--drops-only", is_flag=True, help="Only copies not sent, left alone or dropped.")
@click.option("--json", "as_json_lines", is_flag=True, help="One JSON object per line.")
@click.option(
    "--count",
    "every",
    type=click.IntRange(1, None),
    metavar="SECONDS",
    help="A summary per group and reason every SECONDS instead of events.",
)
@click.option(
    "--side", type=click.Choice(sorted(SIDES)), help="One side only (default: both loaded)."
)
@click.option(
    "--netns",
    metavar="NAME|PATH",
    help="That network namespace's events (`ip netns` name, or /proc/PID/ns/net).",
)
@click.option("--all-netns", is_flag=True, help="Every network namespace, not only this one.")
@click.option(
    "--duration",
    type=click.FloatRange(0, None, min_open=True),
    metavar="SECONDS",
    help="Stop after SECONDS (default: at Ctrl-C).",
)
def trace(
    group: str | None,
    server: str | None,
    port: int | None,
    drops_only: bool,
    as_json_lines: bool,
    every: int | None,
    side: str | None,
    netns: str | None,
    all_netns: bool,
    duration: float | None,
) -> None:
    """Why did a datagram not arrive: each fan-out, copy and restore, as it happens."""
    group, server = _address(group, "group"), _address(server, "server")
    if netns and all_netns:
        raise click.UsageError("--netns and --all-netns cannot be combined: give one")
    netns_inode = None if all_netns else netns_of(netns or "/proc/self/ns/net")
    filters = Filters(
        sides=preflight((side,) if side else tuple(sorted(SIDES, reverse=True))),
        netns=netns_inode,
        group=group,
        server=server,
        port=port,
        drops_only=drops_only,
    )
    probe = Probe(filters)
    joiner = Joiner(Clock())
    summary = Summary()

    def on_raw(data: bytes) -> None:
        event = joiner.feed(Raw.unpack(data))
        if event is None:
            return
        if every:
            summary.add(event)
        elif as_json_lines:
            click.echo(json.dumps(as_json(event)))
        else:
            click.echo(line(event))

    stop = False

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    probe.open(on_raw)
    click.echo(
        f"multicast-proxy trace: tracing the {' and '.join(filters.sides)}, Ctrl-C to end",
        err=True,
    )
    start = time.monotonic()
    next_summary = start + (every or 0)
    try:
        while not stop and (duration is None or time.monotonic() - start < duration):
            probe.poll(200)
            if every and time.monotonic() >= next_summary:
                _print_summary(summary, as_json_lines)
                next_summary += every
        probe.poll(0)
        if every:
            _print_summary(summary, as_json_lines)
        lost = probe.lost()
        if lost:
            click.echo(f"multicast-proxy trace: {lost} events lost (too many)", err=True)
    finally:
        probe.close()
        sys.stdout.flush()


def _print_summary(summary: Summary, as_json_lines: bool) -> None:
    rows, now = summary.take(), time.time()
    if as_json_lines:
        click.echo(json.dumps({"time": round(now, 6), "counts": rows}))
        return
    for text in Summary.lines(rows, now):
        click.echo(text)
