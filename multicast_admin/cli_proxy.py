"""multicast-proxy: the operator's commands beyond the guide's two tools.

    multicast-proxy exporter [--listen [ADDR]:PORT] [--no-members]
    multicast-proxy exporter --textfile PATH [--no-members]
    multicast-proxy diagnose -m GROUP [-i SERVER -p PORT]   (cli_diagnose)
    multicast-proxy trace [-m GROUP] [-i SERVER] [-p PORT] ...   (cli_trace)

``exporter`` serves every counter of both modules as Prometheus metrics
(multicast_admin.metrics), read from the kernel at each scrape; with
``--textfile`` it writes them once, atomically, for node_exporter's textfile
collector, and exits.  ``diagnose`` says the first thing wrong for a group;
``trace`` shows each datagram the modules handle, live.

    multicast-proxy group add GROUP --port N [--broadcast] [--vrrp]
    multicast-proxy group delete GROUP | group list [--json]
    multicast-proxy agent [--address IP ...] [--join GROUP ...]
    multicast-proxy status [--json]
    multicast-proxy host forget ADDRESS

The fleet commands (cli_group, cli_agent, cli_status, cli_host; multicast_admin.fleet)
share a domain through etcd: docs/usage.md.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

import click

from .cli_agent import agent
from .cli_common import CONTEXT_SETTINGS, AdminGroup, Env, env_of
from .cli_diagnose import diagnose
from .cli_group import group
from .cli_host import host
from .cli_status import status
from .cli_trace import trace
from .errors import InvalidArgument, MulticastProxyError
from .lean import use_lean_pyroute2

DEFAULT_LISTEN = "127.0.0.1:9717"


def parse_listen(value: str) -> tuple[str, int]:
    """``[ADDR]:PORT`` (``[::1]:PORT`` for IPv6) as (address, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(
            f"--listen {value!r}: give [ADDRESS]:PORT, e.g. 127.0.0.1:9717 or [::]:9717"
        )
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port)


@click.group(cls=AdminGroup, context_settings=CONTEXT_SETTINGS)
@click.pass_context
def cli(ctx: click.Context) -> None:
    """multicast-proxy: metrics, diagnosis, tracing and fleet membership (etcd)."""
    ctx.obj = env_of(ctx)


@cli.command()
@click.option(
    "--listen",
    metavar="[ADDR]:PORT",
    help=f"Serve /metrics on this address (default {DEFAULT_LISTEN}).",
)
@click.option(
    "--textfile",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the metrics once to this file (atomically) and exit.",
)
@click.option("--no-members", is_flag=True, help="Leave out the per-member series (large groups).")
@click.pass_obj
def exporter(env: Env, listen: str | None, textfile: Path | None, no_members: bool) -> None:
    """Every counter of multis and multic as Prometheus metrics."""
    if listen and textfile:
        raise click.UsageError("--listen and --textfile cannot be combined: give one")
    # prometheus_client only here: the other commands do not pay for its import
    from prometheus_client import (  # noqa: PLC0415
        CollectorRegistry,
        start_http_server,
        write_to_textfile,
    )

    from .metrics import KernelCollector  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    registry.register(KernelCollector(env.open_server, env.open_client, members=not no_members))
    if textfile is not None:
        try:
            write_to_textfile(str(textfile), registry)
        except OSError as error:
            raise MulticastProxyError(f"{textfile}: {error.strerror or error}") from None
        return
    host, port = parse_listen(listen or DEFAULT_LISTEN)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise MulticastProxyError(f"--listen {host}:{port}: {error.strerror or error}") from None
    click.echo(f"multicast-proxy exporter: serving http://{listen or DEFAULT_LISTEN}/metrics")
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    server.shutdown()
    thread.join()


cli.add_command(trace)
cli.add_command(diagnose)
cli.add_command(group)
cli.add_command(agent)
cli.add_command(status)
cli.add_command(host)


def main() -> None:
    """Console script entry point."""
    use_lean_pyroute2()
    cli.main(prog_name="multicast-proxy")


if __name__ == "__main__":
    main()
