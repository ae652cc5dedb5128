"""``multicast-proxy diagnose``: the first thing wrong for one group, and its fix.

    multicast-proxy diagnose -m GROUP [--wait S] [--json]                  (sender)
    multicast-proxy diagnose -m GROUP -i SERVER -p PORT [--wait S] [--json] (receiver)

The side is the receiver's when ``-i``/``-p`` are given, the sender's
otherwise; ``--side server|client`` says it explicitly.  The checks are in
multicast_admin.diagnose; this is their output.  Exit status 0: every check
passed; 1: a check failed (the last line printed, with its fix); other
failures keep the tools' exit codes (docs/usage.md).
"""

from __future__ import annotations

import sys

import click

from .cli_common import Env, echo_json
from .diagnose import DEFAULT_WAIT, Diagnosis, HostProbe, diagnose_receiver, diagnose_sender

#: The exit status when a check failed.
PROBLEM_EXIT = 1

#: Builds the host probe (tests replace it).
make_probe = HostProbe


def render(diagnosis: Diagnosis) -> str:
    """One short line per passed check; the failed one with its fix."""
    width = max(len(f.check) for f in diagnosis.findings)
    lines = []
    for finding in diagnosis.findings:
        mark = "ok  " if finding.ok else "FAIL"
        lines.append(f"{mark}  {finding.check.ljust(width)}  {finding.text}")
        if finding.fix:
            lines.append(f"      {''.ljust(width)}  fix: {finding.fix}")
    if diagnosis.ok:
        what = f"copies of {diagnosis.group}"
        if diagnosis.server is not None:
            what += f" from {diagnosis.server} to port {diagnosis.port}"
        lines.append(f"{diagnosis.side.name.lower()}: {what}: every check passed")
    return "\n".join(lines)


@click.command()
@click.option("-m", "--group", required=True, metavar="GROUP", help="The multicast group.")
@click.option("-i", "--server", metavar="SERVER", help="Receiver: the sender's address.")
@click.option("-p", "--port", metavar="PORT", help="Receiver: the UDP port (0: any).")
@click.option(
    "--side",
    type=click.Choice(["server", "client"]),
    help="Which host this is (default: client with -i/-p, server without).",
)
@click.option(
    "--wait",
    type=float,
    default=DEFAULT_WAIT,
    show_default=True,
    metavar="SECONDS",
    help="How long to watch the counters (and, on a receiver, the wire).",
)
@click.option("--json", "as_json", is_flag=True, help="The findings as JSON.")
@click.pass_obj
def diagnose(
    env: Env,
    group: str,
    server: str | None,
    port: str | None,
    side: str | None,
    wait: float,
    as_json: bool,
) -> None:
    """Check one group, in order, and say the first thing wrong with its fix."""
    side = side or ("client" if server is not None or port is not None else "server")
    if side == "client":
        if server is None or port is None:
            raise click.UsageError("the client side needs -i SERVER and -p PORT")
        diagnosis = diagnose_receiver(
            group, server, port, wait=wait, probe=make_probe(), open_client=env.open_client
        )
    else:
        if server is not None or port is not None:
            raise click.UsageError("-i and -p are the client side's: not with --side server")
        diagnosis = diagnose_sender(
            group, wait=wait, probe=make_probe(), open_server=env.open_server
        )
    if as_json:
        echo_json(diagnosis.to_json())
    else:
        click.echo(render(diagnosis))
    sys.exit(0 if diagnosis.ok else PROBLEM_EXIT)
