"""Guest side of tests/vm/test_cli.py: multis_admin and multic_admin on the real modules.

Most forms run in this process through click's CliRunner with the CLIs' real
environment (real netlink to the real modules, a real state directory per
host): the same code as the console scripts, without paying seconds of
interpreter start-up per call under TCG.  The console scripts themselves run
as real processes for what only they can show: the guide's exact commands,
"module not loaded", an unprivileged user, and two tools changing groups at
the same time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import inspect
import json
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from click.testing import CliRunner

from multicast_admin import cli_client, cli_server, config
from multicast_admin.cli_common import Env
from multicast_admin.client import Client
from multicast_admin.netlink import MultisNetlink
from multicast_admin.server import Server
from tests.vm.guest.facts import Facts
from tests.vm.guest.vpc import Receiver, Sender, build_vpc, insmod, payloads

REPO = Path(__file__).resolve().parents[3]
BIN = REPO / ".venv" / "bin"

facts = Facts()
vpc = build_vpc(receivers=2)
sender, recv1, recv2 = vpc.sender, *vpc.receivers


def state_dir(host) -> Path:
    return Path(f"/tmp/state-{host.name}")


def _runner() -> CliRunner:
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


def run_in(host, command, *args: str, env: Env | None = None) -> dict:
    """One CLI call in ``host``'s namespace, in-process."""
    with host.inside():
        result = _runner().invoke(command, list(args), obj=env or Env(state_dir=state_dir(host)))
    return {"code": result.exit_code, "out": result.stdout, "err": result.stderr}


class NoLimitsKnown:
    """multis's netlink, except that GET_STATS reports no limits.

    Through it the Python layer cannot check a limit before asking the
    kernel: what is refused is refused by the kernel alone.
    """

    def __init__(self, backend: MultisNetlink) -> None:
        self._backend = backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def stats(self) -> Any:
        real = self._backend.stats()
        return dataclasses.replace(real, max_groups=1 << 30, max_members=1 << 30)


def server_without_known_limits() -> Server:
    return Server(cast(Any, NoLimitsKnown(MultisNetlink.open())))


def multis_admin(*args: str) -> dict:
    return run_in(sender, cli_server.cli, *args)


def multic_admin(host, *args: str) -> dict:
    return run_in(host, cli_client.cli, *args)


def tool_env(directory: Path) -> dict[str, str]:
    """The environment that puts the tools' state, and their lock, in ``directory``.

    Every ``ENV_*LOCK*`` setting config.py has (the lock may get a place of
    its own) points there too.
    """
    env = {**os.environ, "HOME": "/tmp", config.ENV_CONFIG_DIR: str(directory)}
    for name in dir(config):
        if name.startswith("ENV_") and "LOCK" in name:
            env[getattr(config, name)] = str(directory)
    return env


def lock_path(env: dict[str, str]) -> Path:
    """The multis lock file the tools use under ``env``, as config.py itself says."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        return Path(config.StateFile(config.SERVER.name).lock_path)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def process(
    host, tool: str, *args: str, user: str | None = None, state: Path | None = None
) -> dict:
    """The installed console script as a real process in ``host``'s namespace."""
    cmd = ["ip", "netns", "exec", host.name]
    if user:
        cmd += ["setpriv", f"--reuid={user}", "--regid=nogroup", "--clear-groups"]
        cmd += ["--inh-caps=-all"]
    cmd += [str(BIN / tool), *args]
    env = tool_env(state or state_dir(host))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    return {"code": proc.returncode, "out": proc.stdout, "err": proc.stderr}


@contextlib.contextmanager
def holding_lock(path: Path) -> Iterator[None]:
    """Hold the tools' exclusive lock (flock), as another change in progress would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def server_state() -> dict:
    """The kernel's groups and members, and the state file's, to compare."""
    with sender.inside(), Server.open() as server:
        kernel = {
            str(g.address): sorted(str(m.address) for m in server.members(g.address))
            for g in server.groups()
        }
    path = state_dir(sender) / "multis.json"
    saved = None
    if path.exists():
        saved = {g["group"]: sorted(g["members"]) for g in json.loads(path.read_text())["groups"]}
    return {"kernel": kernel, "file": saved}


def client_state(host) -> dict:
    with host.inside(), Client.open() as client:
        kernel = sorted(f"{e.server}:{e.port}>{e.group}" for e in client.entries())
    path = state_dir(host) / "multic.json"
    saved = None
    if path.exists():
        saved = sorted(
            f"{e['server']}:{e['port']}>{e['group']}"
            for e in json.loads(path.read_text())["entries"]
        )
    return {"kernel": kernel, "file": saved}


def record(f: dict, name: str, result: dict, state: dict) -> None:
    f[name] = {**result, "state": state}


# --------------------------------------------------------------------------- steps

with facts.step("not_loaded") as f:
    f["multis"] = process(sender, "multis_admin", "-S")
    f["multic"] = process(recv1, "multic_admin", "-L")

insmod(REPO / "kernel/multis/multis.ko")
insmod(REPO / "kernel/multic/multic.ko")

with facts.step("server_forms") as f:
    forms = {
        "add_join": ["-A", "-m", "239.1.1.1", "-j", "10.0.0.11,10.0.0.12"],
        "add_join_again": ["-A", "-m", "239.1.1.1", "-j", "10.0.0.11"],
        "long_add_join": ["--add", "--multiip", "239.1.1.2", "--join", "10.0.0.11"],
        "add_empty": ["-A", "-m", "239.1.1.3"],
        "show": ["-S"],
        "show_json": ["-S", "--json"],
        "list": ["-L", "-m", "239.1.1.1"],
        "list_json": ["--list", "--multiip", "239.1.1.1", "--json"],
        "stats": ["-P"],
        "stats_group": ["-P", "-m", "239.1.1.1"],
        "stats_json": ["--stats", "--json"],
        "quit": ["-A", "-m", "239.1.1.2", "-q", "10.0.0.11"],
        "quit_again": ["--add", "--multiip", "239.1.1.2", "--quit", "10.0.0.11"],
        "delete": ["-D", "-m", "239.1.1.3"],
        "delete_again": ["--delete", "--multiip", "239.1.1.3"],
        "bad_address": ["-A", "-m", "300.1.1.1", "-j", "10.0.0.11"],
        "group_not_multicast": ["-A", "-m", "10.1.1.1", "-j", "10.0.0.11"],
        "member_multicast": ["-A", "-m", "239.1.1.1", "-j", "224.1.1.1"],
        "member_loopback": ["-A", "-m", "239.1.1.1", "-j", "10.0.0.13,127.0.0.1"],
        "member_unspecified": ["-A", "-m", "239.1.1.1", "-j", "0.0.0.0"],
        "member_is_group": ["-A", "-m", "239.1.1.1", "-j", "239.1.1.1"],
        "list_unknown": ["-L", "-m", "239.9.9.9"],
        "stats_unknown": ["-P", "-m", "239.9.9.9"],
        "usage_no_group": ["-D"],
        "usage_two_commands": ["-A", "-D", "-m", "239.1.1.1"],
        "help_H": ["-H"],
        "help_dash": ["-help"],
        "help_long": ["--help"],
        "no_arguments": [],
    }
    for name, args in forms.items():
        record(f, name, multis_admin(*args), server_state())

with facts.step("server_limits") as f:
    for i in range(4, 12):  # 239.1.1.1 and .2 exist: 8 more make 10
        multis_admin("-A", "-m", f"239.1.1.{i}")
    record(f, "eleventh_group", multis_admin("-A", "-m", "239.1.1.99"), server_state())
    members = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(129)]
    record(
        f,
        "first_128",
        multis_admin("-A", "-m", "239.1.1.4", "-j", ",".join(members[:128])),
        server_state(),
    )
    record(
        f, "the_129th", multis_admin("-A", "-m", "239.1.1.4", "-j", members[128]), server_state()
    )
    # 127 members, then a batch of two: one would fit.  The Python layer is
    # told no limit, so the kernel alone refuses, and must refuse it whole.
    record(f, "quit_one", multis_admin("-A", "-m", "239.1.1.4", "-q", members[127]), server_state())
    blind = Env(open_server=server_without_known_limits, state_dir=state_dir(sender))
    batch = ",".join(members[127:129])
    record(
        f,
        "batch_over_limit",
        run_in(sender, cli_server.cli, "-A", "-m", "239.1.1.4", "-j", batch, env=blind),
        server_state(),
    )
    record(f, "clear", multis_admin("-C"), server_state())
    record(f, "clear_long", multis_admin("--clear"), server_state())

with facts.step("client_forms") as f:
    forms = {
        "add": ["-A", "-i", "10.0.0.1", "-p", "5000", "-m", "239.1.1.1"],
        "add_again": ["-A", "-i", "10.0.0.1", "-p", "5000", "-m", "239.1.1.1"],
        "long_add_any_port": ["--add", "--ip", "10.0.0.1", "--port", "0", "--multiip", "239.1.1.2"],
        "list": ["-L"],
        "list_json": ["-L", "--json"],
        "stats": ["-P"],
        "stats_entry": ["-P", "-i", "10.0.0.1", "-p", "5000"],
        "stats_json": ["--stats", "--json"],
        "delete": ["-D", "-i", "10.0.0.1", "-p", "0"],
        "delete_again": ["--delete", "--ip", "10.0.0.1", "--port", "0"],
        "port_too_big": ["-A", "-i", "10.0.0.1", "-p", "65536", "-m", "239.1.1.1"],
        "port_not_number": ["-A", "-i", "10.0.0.1", "-p", "x1", "-m", "239.1.1.1"],
        "server_multicast": ["-A", "-i", "224.0.0.1", "-p", "5000", "-m", "239.1.1.1"],
        "group_not_multicast": ["-A", "-i", "10.0.0.1", "-p", "5001", "-m", "10.0.0.5"],
        "bad_address": ["-A", "-i", "10.0.0", "-p", "5001", "-m", "239.1.1.1"],
        "usage_missing_port": ["-A", "-i", "10.0.0.1", "-m", "239.1.1.1"],
        "help_H": ["-H"],
        "help_dash": ["-help"],
        "no_arguments": [],
    }
    for name, args in forms.items():
        record(f, name, multic_admin(recv1, *args), client_state(recv1))
    for i in range(2, 11):  # 239.1.1.1 is in use: 9 more distinct groups make 10
        multic_admin(recv1, "-A", "-i", f"10.0.1.{i}", "-p", "5000", "-m", f"239.2.0.{i}")
    record(
        f,
        "eleventh_group",
        multic_admin(recv1, "-A", "-i", "10.0.1.99", "-p", "5000", "-m", "239.2.0.99"),
        client_state(recv1),
    )
    record(f, "clear", multic_admin(recv1, "-C"), client_state(recv1))

with facts.step("guide_commands") as f:
    # the published guide's commands, as real processes, then real traffic
    f["server"] = process(
        sender, "multis_admin", "-A", "-m", "239.1.1.1", "-j", "10.0.0.11,10.0.0.12"
    )
    f["clients"] = [
        process(h, "multic_admin", "-A", "-i", "10.0.0.1", "-p", "5000", "-m", "239.1.1.1")
        for h in (recv1, recv2)
    ]
    socks = [Receiver(h, "239.1.1.1", 5000) for h in (recv1, recv2)]
    tx = Sender(sender)
    data = payloads("guide", 10)
    tx.send("239.1.1.1", 5000, data)
    f["received"] = {
        rx.host.name: sorted(d.payload for d in rx.drain()) == sorted(data) for rx in socks
    }
    tx.close()
    for rx in socks:
        rx.close()
    f["server_state"] = server_state()
    f["client_state"] = client_state(recv1)
    # what that traffic must show in the statistics
    f["stats_json"] = multis_admin("-P", "--json")
    f["group_stats_json"] = multis_admin("-P", "-m", "239.1.1.1", "--json")
    f["list_json"] = multis_admin("-L", "-m", "239.1.1.1", "--json")
    f["client_stats_json"] = {h.name: multic_admin(h, "-P", "--json") for h in (recv1, recv2)}
    f["client_list_json"] = {h.name: multic_admin(h, "-L", "--json") for h in (recv1, recv2)}

with facts.step("unprivileged") as f:
    # nobody gets a state directory of its own, writable: the lock and the
    # file are no obstacle, the kernel's CAP_NET_ADMIN check is the only one
    own = Path("/tmp/state-nobody")
    own.mkdir(mode=0o755, exist_ok=True)
    user = pwd.getpwnam("nobody")
    os.chown(own, user.pw_uid, user.pw_gid)
    f["change"] = process(sender, "multis_admin", "-A", "-m", "239.5.5.5", user="nobody", state=own)
    f["read"] = process(sender, "multis_admin", "-S", user="nobody", state=own)
    f["state"] = server_state()
    f["nobody_files"] = sorted(p.name for p in own.iterdir())

with facts.step("locked") as f:
    # another change holds the lock: the tool waits, gives up, changes nothing
    env = tool_env(state_dir(sender))
    f["lock_path"] = str(lock_path(env))
    with holding_lock(Path(f["lock_path"])):
        started = time.monotonic()
        f["run"] = process(sender, "multis_admin", "-A", "-m", "239.6.0.9", "-j", "10.0.0.41")
        f["waited"] = time.monotonic() - started
        f["state"] = server_state()

with facts.step("concurrent") as f:
    # two tools at once, each making three changes; the file must end equal to the kernel
    env = tool_env(state_dir(sender))
    scripts = []
    for side, members in (("a", "10.0.0.2{}"), ("b", "10.0.0.3{}")):
        calls = [
            f"{BIN}/multis_admin -A -m 239.6.0.{1 if side == 'a' else 2} -j {members.format(i)}"
            for i in range(1, 4)
        ]
        scripts.append(" && ".join(calls))
    procs = [
        subprocess.Popen(
            ["ip", "netns", "exec", sender.name, "sh", "-c", s],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for s in scripts
    ]
    f["codes"] = [p.wait() for p in procs]
    f["errors"] = [p.stderr.read() for p in procs]
    f["state"] = server_state()

print("guest: done", flush=True)
