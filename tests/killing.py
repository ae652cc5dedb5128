"""kill -9 of a CLI change at random points (issue 9, item 8), on any kernel.

Each round forks a child that runs the CLI (``multis_admin``/``multic_admin``,
its real click command and code path: only the interpreter start-up is
skipped) for one change, and SIGKILLs it after a random delay spread over
the measured length of an unkilled change (every 5th round is not killed).
After every round the state file must parse and hold every change whose CLI
returned 0 (an add that returned 0 is in it, a removal that returned 0 is
not); no temporary file may be left beside it once a later change succeeded.
Shared by the unit tests (a fake kernel in another process) and the VM guest
(the real module).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multicast_admin import cli_client, cli_server
from multicast_admin.cli_common import Env
from multicast_admin.config import CLIENT, SERVER

GROUP = "239.1.1.1"
SERVER_ADDR = "10.0.0.1"


def run_killed(change: Callable[[], Any], delay: float | None) -> int | None:
    """Run ``change`` in a child; SIGKILL it after ``delay`` s.  Its exit code, None if killed."""
    pid = os.fork()
    if pid == 0:  # the child: its output goes nowhere, its exit code is the CLI's
        code = 70
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
            change()
            code = 0
        except SystemExit as done:
            code = done.code if isinstance(done.code, int) else 1
        finally:
            os._exit(code)
    if delay is not None:
        time.sleep(delay)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    return None if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


@dataclass
class Campaign:
    """What the rounds did, and every way the file broke the promise (``problems``)."""

    side: str
    rounds: int = 0
    killed: int = 0
    succeeded: int = 0
    failed: list[int] = field(default_factory=list)
    duration: float = 0.0
    problems: list[str] = field(default_factory=list)
    confirmed: set[str] = field(default_factory=set)
    removed: set[str] = field(default_factory=set)

    def to_json(self) -> dict[str, Any]:
        return {
            "side": self.side,
            "rounds": self.rounds,
            "killed": self.killed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "duration": self.duration,
            "problems": self.problems,
            "confirmed": len(self.confirmed),
            "removed": len(self.removed),
        }


def _server_round(i: int, confirmed: set[str]) -> tuple[list[str], str, bool]:
    """(arguments, item, is an add): join a new member; every 4th round quit a confirmed one."""
    if i % 4 == 3 and confirmed:
        member = sorted(confirmed)[i % len(confirmed)]
        return ["-A", "-m", GROUP, "-q", member], member, False
    member = f"10.2.{i // 250}.{i % 250 + 1}"
    return ["-A", "-m", GROUP, "-j", member], member, True


def _client_round(i: int, confirmed: set[str]) -> tuple[list[str], str, bool]:
    if i % 4 == 3 and confirmed:
        key = sorted(confirmed)[i % len(confirmed)]
        return ["-D", "-i", SERVER_ADDR, "-p", key.split(":")[1]], key, False
    port = 1000 + i
    return ["-A", "-i", SERVER_ADDR, "-p", str(port), "-m", GROUP], f"{SERVER_ADDR}:{port}", True


def file_items(side: str, state_dir: Path) -> set[str] | None:
    """What the state file holds (members of GROUP, or server:port keys); None: no file.

    Raises ConfigError if the file does not parse.
    """
    the_side = SERVER if side == "multis" else CLIENT
    config = the_side.read(the_side.state_file(state_dir))
    if config is None:
        return None
    if side == "multis":
        return {str(m) for g in config.groups if str(g.group) == GROUP for m in g.members}
    return {f"{e.server}:{e.port}" for e in config.entries}


def _unkilled_length(change: Callable[[], Any], result: Campaign) -> float:
    """The length of a change nobody kills: the median of three after one that
    pays for caches (one slow run on a busy machine would stretch every delay
    past the change, and nothing would be killed)."""
    lengths = []
    for _ in range(4):
        started = time.monotonic()
        code = run_killed(change, None)
        lengths.append(time.monotonic() - started)
        if code != 0:
            result.problems.append(f"a change, not killed, exited {code}")
    return sorted(lengths[1:])[1]


def campaign(
    side: str, env: Env, state_dir: Path, rounds: int, seed: int = 9, spread: float = 1.5
) -> Campaign:
    """``rounds`` changes of ``side`` through its CLI, each killed at a random point."""
    command = cli_server.cli if side == "multis" else cli_client.cli
    prog = "multis_admin" if side == "multis" else "multic_admin"
    next_round = _server_round if side == "multis" else _client_round
    rng = random.Random(seed)
    result = Campaign(side)

    def call(args: list[str]) -> Callable[[], Any]:
        return lambda: command.main(args, prog_name=prog, obj=env)

    # a change that adds nothing new (it rewrites the file all the same)
    same = ["-A", "-m", GROUP] if side == "multis" else ["-A", "-i", SERVER_ADDR]
    same += [] if side == "multis" else ["-p", "1", "-m", GROUP]
    result.duration = _unkilled_length(call(same), result)
    for i in range(rounds):
        args, item, is_add = next_round(i, result.confirmed)
        # every 5th round runs to its end, so that there is something to lose
        delay = None if i % 5 == 4 else rng.uniform(0, spread * result.duration)
        code = run_killed(call(args), delay)
        result.rounds += 1
        if code != 0 and not is_add:
            # a removal killed after the kernel took it: may be gone, or not
            result.confirmed.discard(item)
        if code is None:
            result.killed += 1
        elif code == 0:
            result.succeeded += 1
            if is_add:
                result.confirmed.add(item)
            else:
                result.confirmed.discard(item)
                result.removed.add(item)
        else:
            result.failed.append(code)
        try:
            held = file_items(side, state_dir)
        except Exception as error:  # noqa: BLE001 -- any way the file fails to parse
            result.problems.append(f"round {i}: the file does not parse: {error}")
            continue
        held = held or set()
        lost = result.confirmed - held
        if lost:
            result.problems.append(
                f"round {i}: changes that returned 0 are missing: {sorted(lost)}"
            )
        back = result.removed & held
        if back:
            result.problems.append(f"round {i}: removals that returned 0 are back: {sorted(back)}")
    # one last change, not killed: the file holds everything and nothing is left beside it
    code = run_killed(call(same), None)
    if code != 0:
        result.problems.append(f"the last change, not killed, exited {code}")
    left = sorted(p.name for p in state_dir.glob(f".{side}.json.*"))
    if left:
        result.problems.append(f"temporary files left beside the state file: {left}")
    return result
