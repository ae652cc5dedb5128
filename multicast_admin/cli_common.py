"""What multis_admin and multic_admin share: option rules, errors, output.

Each CLI is one click command with the guide's flags (``-A -D -C -P -L -S``
as separate booleans, exactly one of them per call).  Errors are one line on
stderr and the documented exit code of its error class (``exit_code``):
2 usage, 3 not found, 4 limit, 5 module not loaded, 6 no privilege,
7 state file, 8 conflict, 1 anything else.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn

import click

from .client import Client
from .errors import InvalidArgument, MulticastProxyError
from .models import JSON_SCHEMA_VERSION
from .server import Server

USAGE_EXIT = InvalidArgument.exit_code
CONTEXT_SETTINGS = {"help_option_names": ["-H", "-h", "--help"], "max_content_width": 100}


@dataclass
class Env:
    """Where a CLI gets its kernel connection and state directory (tests pass their own)."""

    open_server: Callable[[], Server] = Server.open
    open_client: Callable[[], Client] = Client.open
    state_dir: Path | None = None


def env_of(ctx: click.Context) -> Env:
    return ctx.obj if isinstance(ctx.obj, Env) else Env()


class _AdminHabits:
    """The old tools' habits (``-help``), the usage on stderr with exit 2 when
    called without arguments, and one line per error with a documented exit
    code: for a click command or group (below)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = ["--help" if arg == "-help" else arg for arg in args]
        return super().parse_args(ctx, args)

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: object,
    ) -> NoReturn:
        argv = list(sys.argv[1:] if args is None else args)
        prog = prog_name or self.name or "admin"
        if not argv:
            with click.Context(self, info_name=prog) as ctx:
                click.echo(self.get_help(ctx), err=True)
            sys.exit(USAGE_EXIT)
        try:
            code = super().main(argv, prog, complete_var, standalone_mode=False, **extra)
        except click.UsageError as error:
            text = error.format_message().rstrip(".")
            fail(prog, f"{text} (see '{prog} --help')", USAGE_EXIT)
        except click.ClickException as error:
            fail(prog, error.format_message(), error.exit_code)
        except click.Abort:
            fail(prog, "aborted", 1)
        except MulticastProxyError as error:
            fail(prog, str(error), error.exit_code)
        sys.exit(code if isinstance(code, int) else 0)


class AdminCommand(_AdminHabits, click.Command):
    """multis_admin, multic_admin: one command with the guide's flags."""


class AdminGroup(_AdminHabits, click.Group):
    """multicast-proxy: subcommands."""


def note(prog: str) -> Callable[[str], None]:
    """A note for the operator: one line on stderr, ``<prog>: note: <text>``."""
    return lambda text: click.echo(f"{prog}: note: {text}", err=True)


def fail(prog: str, message: str, code: int) -> NoReturn:
    """One line on stderr, then exit with ``code``."""
    line = " ".join(message.split())
    click.echo(f"{prog}: {line}", err=True)
    sys.exit(code)


@dataclass(frozen=True)
class Rule:
    """Which options a command needs and which it accepts."""

    needs: frozenset[str]
    takes: frozenset[str]
    needs_text: str = ""


def rule(needs: Iterable[str] = (), takes: Iterable[str] = (), needs_text: str = "") -> Rule:
    needed = frozenset(needs)
    return Rule(needed, needed | frozenset(takes), needs_text)


def pick_command(commands: Mapping[str, bool], given: set[str], rules: Mapping[str, Rule]) -> str:
    """The one command flag given, checked against its rule; UsageError otherwise."""
    chosen = [name for name, on in commands.items() if on]
    if not chosen:
        raise click.UsageError(f"no command given: use one of {', '.join(commands)}")
    if len(chosen) > 1:
        raise click.UsageError(f"{' and '.join(chosen)} cannot be combined: give one command")
    command = chosen[0]
    this = rules[command]
    missing = this.needs - given
    if missing:
        raise click.UsageError(f"{command} needs {this.needs_text or ', '.join(sorted(missing))}")
    extra = sorted(given - this.takes)
    if extra:
        raise click.UsageError(f"{command} does not take {', '.join(extra)}")
    return command


def single(values: Sequence[str], option: str) -> str | None:
    """The value of an option that may be given once."""
    if len(values) > 1:
        raise click.UsageError(f"option {option} given more than once")
    return values[0] if values else None


# --- output -----------------------------------------------------------------


def echo_json(data: Mapping[str, Any]) -> None:
    click.echo(json.dumps({"version": JSON_SCHEMA_VERSION, **data}, indent=2))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Aligned columns: numbers to the right, text to the left."""
    cells = [list(headers)] + [[str(v) for v in row] for row in rows]
    numeric = [
        bool(rows) and all(isinstance(row[i], int) for row in rows) for i in range(len(headers))
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(headers))]
    lines = []
    for line in cells:
        parts = [
            cell.rjust(width) if is_number else cell.ljust(width)
            for cell, width, is_number in zip(line, widths, numeric)
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def counter_lines(counters: Mapping[str, int], labels: Mapping[str, str]) -> str:
    """One labelled line per counter, values aligned."""
    width = max(len(label) for label in labels.values())
    digits = max(len(str(counters[name])) for name in labels)
    return "\n".join(
        f"  {label.ljust(width)}  {str(counters[name]).rjust(digits)}"
        for name, label in labels.items()
    )


def listing(items: Iterable[object]) -> str:
    return ", ".join(str(item) for item in items)
