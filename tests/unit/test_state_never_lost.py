"""State is never lost (issue 9, item 8), on the fake kernels.

1. The sequence that lost every saved entry: ``service X stop`` saves and
   unloads; the module is loaded empty by something else (a listing's
   autoload, while the families had an alias; ``modprobe``); root's change;
   ``service X start``.  Every saved group, member and entry survives, plus the new one.
2. kill -9 of the CLI at random points of a change (tests/killing.py): the
   fake kernel lives in a process of its own, as the kernel outlives a killed
   CLI; the file always parses and holds every change that returned 0.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
import struct
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeMulticKernel, FakeMultisKernel, kernel_view
from pyroute2.netlink.exceptions import NetlinkError

from multicast_admin import cli_client, cli_server
from multicast_admin.cli_common import Env
from multicast_admin.client import Client
from multicast_admin.config import CLIENT, SERVER
from multicast_admin.netlink import MulticNetlink, MultisNetlink, Reply
from multicast_admin.server import Server
from tests import killing
from tests.unit.conftest import _invoke
from tests.unit.test_service import OPEN, FakeModules, make

CLI = {"multis": cli_server.cli, "multic": cli_client.cli}
# (the configuration saved, the change after a bare load, what must be there at the end)
SAVED = {
    "multis": [["-A", "-m", "239.1.1.1", "-j", "10.0.0.11,10.0.0.12"], ["-A", "-m", "239.2.2.2"]],
    "multic": [
        ["-A", "-i", "10.0.0.1", "-p", "5000", "-m", "239.1.1.1"],
        ["-A", "-i", "10.0.0.1", "-p", "0", "-m", "239.2.2.2"],
    ],
}
NEW = {
    "multis": ["-A", "-m", "239.1.1.1", "-j", "10.0.0.13"],
    "multic": ["-A", "-i", "10.0.0.2", "-p", "6000", "-m", "239.1.1.1"],
}
FINAL = {
    "multis": {"239.1.1.1": ["10.0.0.11", "10.0.0.12", "10.0.0.13"], "239.2.2.2": []},
    "multic": ["10.0.0.1:0>239.2.2.2", "10.0.0.1:5000>239.1.1.1", "10.0.0.2:6000>239.1.1.1"],
}


def cli(name: str, modules: FakeModules, state_dir: Path, *args: str):
    env = Env(
        open_server=lambda: OPEN["multis"](modules.kernel("multis")),
        open_client=lambda: OPEN["multic"](modules.kernel("multic")),
        state_dir=state_dir,
    )
    return _invoke(CLI[name], env, list(args))


def load_without_state(modules: FakeModules, name: str) -> None:
    """What modprobe does to a stopped service: the module is loaded, empty, unrestored."""
    kind = FakeMultisKernel if name == "multis" else FakeMulticKernel
    modules.kernels[name] = kind(restored=False)


def state_of(name: str, modules: FakeModules, state_dir: Path) -> dict:
    """The kernel's state and the file's, in one form (groups: members; or entries)."""
    side = SERVER if name == "multis" else CLIENT
    config = side.read(side.state_file(state_dir))
    with OPEN[name](modules.kernel(name)) as handle:
        kernel = side.from_kernel(handle)

    def form(c):
        if c is None:
            return None
        if name == "multis":
            return {str(g.group): [str(m) for m in g.members] for g in c.groups}
        return sorted(f"{e.server}:{e.port}>{e.group}" for e in c.entries)

    return {"kernel": form(kernel), "file": form(config)}


@pytest.fixture
def configured(state_dir):
    """Both services started, configured through the CLIs, then stopped (saved, unloaded)."""
    modules = FakeModules()
    for name in ("multis", "multic"):
        assert make(name, modules, state_dir).start() == 0
        for args in SAVED[name]:
            assert cli(name, modules, state_dir, *args).exit_code == 0
        assert make(name, modules, state_dir).stop() == 0
    assert modules.kernels == {}
    return modules


@pytest.mark.parametrize("name", ["multis", "multic"])
def test_stop_bare_load_change_start_keeps_every_saved_entry(configured, state_dir, name):
    modules = configured
    load_without_state(modules, name)
    listing = cli(name, modules, state_dir, "-S" if name == "multis" else "-L")
    assert listing.exit_code == 0
    run = cli(name, modules, state_dir, *NEW[name])  # restores the file first, then changes
    assert run.exit_code == 0, run
    restored = "2 groups, 2 members" if name == "multis" else "2 entries"
    assert run.stderr == (
        f"{name}_admin: note: the {name} module was loaded without its saved state: "
        f"restored {restored} from {state_dir / name}.json first\n"
    )
    assert state_of(name, modules, state_dir) == {"kernel": FINAL[name], "file": FINAL[name]}
    svc = make(name, modules, state_dir)
    assert svc.start() == 0
    assert "already running" in svc.out.getvalue()  # the CLI restored it: the kernel says so
    assert state_of(name, modules, state_dir) == {"kernel": FINAL[name], "file": FINAL[name]}


@pytest.mark.parametrize("name", ["multis", "multic"])
def test_start_restores_a_module_that_something_else_loaded(configured, state_dir, name):
    modules = configured
    load_without_state(modules, name)
    saved = state_of(name, modules, state_dir)["file"]
    assert saved
    svc = make(name, modules, state_dir)
    logged = len(modules.log)
    assert svc.start() == 0
    out = svc.out.getvalue()
    assert "loaded, but its saved state was not restored" in out, out
    assert "started: restored" in out, out
    assert modules.log[logged:] == []  # neither loaded again nor unloaded
    assert state_of(name, modules, state_dir) == {"kernel": saved, "file": saved}
    assert modules.kernels[name].restored


@pytest.mark.parametrize("name", ["multis", "multic"])
def test_stop_of_an_unrestored_module_keeps_the_file(configured, state_dir, name):
    modules = configured
    path = state_dir / f"{name}.json"
    before = path.read_bytes()
    load_without_state(modules, name)
    svc = make(name, modules, state_dir)
    assert svc.stop() == 0
    assert "not saved: the kernel's state was not restored" in svc.out.getvalue()
    assert path.read_bytes() == before
    assert name not in modules.kernels


@pytest.mark.parametrize("name", ["multis", "multic"])
def test_a_restore_that_fails_before_a_change_changes_nothing(configured, state_dir, name):
    modules = configured
    path = state_dir / f"{name}.json"
    before = path.read_bytes()
    load_without_state(modules, name)
    kernel = modules.kernels[name]
    kernel.max_groups = 1  # the saved state has two groups: the restore is refused in part
    run = cli(name, modules, state_dir, *NEW[name])
    assert run.exit_code == 7, run
    assert "nothing changed" in run.stderr, run
    assert f"service {name} restart" in run.stderr, run
    assert path.read_bytes() == before
    assert not kernel.restored


# --------------------------------------------------------------------------- kill -9


class RemoteKernel:
    """A fake kernel in a process of its own, over a Unix socket (it outlives killed CLIs)."""

    def __init__(self, kernel: Any, path: Path) -> None:
        self.path = path
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(8)
        self.pid = os.fork()
        if self.pid == 0:
            try:
                self._serve(kernel, listener)
            finally:
                os._exit(0)
        listener.close()

    @staticmethod
    def _serve(kernel: Any, listener: socket.socket) -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                while True:
                    try:
                        request = _receive(conn)
                    except Exception:  # noqa: BLE001 -- a request cut short by the kill
                        break
                    if request is None:
                        break  # the CLI closed its socket, or was killed
                    flags, raw = request
                    seen = kernel_view(kernel.msg_class)(raw)
                    seen.decode()
                    try:
                        reply = kernel.handle(seen, flags, raw)
                        answer = ("ok", [bytes(m.data) for m in reply.messages], reply.interrupted)
                    except NetlinkError as error:
                        answer = ("err", error.code, error.args[1] if len(error.args) > 1 else "")
                    try:
                        _send(conn, answer)
                    except OSError:
                        break

    def transport(self, msg_class: type, family: str) -> RemoteTransport:
        return RemoteTransport(self.path, msg_class, family)

    def stop(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def _send(conn: socket.socket, value: Any) -> None:
    data = pickle.dumps(value)
    conn.sendall(struct.pack("!I", len(data)) + data)


def _receive(conn: socket.socket) -> Any:
    def exactly(n: int) -> bytes | None:
        chunks = b""
        while len(chunks) < n:
            try:
                chunk = conn.recv(n - len(chunks))
            except OSError:  # the CLI was killed
                return None
            if not chunk:
                return None
            chunks += chunk
        return chunks

    head = exactly(4)
    if head is None:
        return None
    body = exactly(struct.unpack("!I", head)[0])
    return None if body is None else pickle.loads(body)


class RemoteTransport:
    """The netlink Transport of the CLI, to a RemoteKernel."""

    def __init__(self, path: Path, msg_class: type, family: str) -> None:
        self.family = family
        self.msg_class = msg_class
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))

    def request(self, msg: Any, flags: int) -> Reply:
        msg["header"]["type"] = 0x20
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = 1
        msg["header"]["pid"] = 0
        msg.encode()
        _send(self.sock, (flags, bytes(msg.data)))
        answer = _receive(self.sock)
        if answer[0] == "err":
            raise NetlinkError(answer[1], answer[2])
        messages = []
        for raw in answer[1]:
            m = self.msg_class(raw)
            m.decode()
            messages.append(m)
        return Reply(messages, answer[2])

    def close(self) -> None:
        self.sock.close()


ROUNDS = 150


@pytest.mark.parametrize("name", ["multis", "multic"])
def test_kill_9_at_random_points_of_a_change_loses_nothing(tmp_path, name):
    state_dir = tmp_path / "state"
    kind = FakeMultisKernel if name == "multis" else FakeMulticKernel
    # limits far above what the rounds add; a module just loaded (not restored)
    kernel = kind(1000, 10_000, restored=False)
    remote = RemoteKernel(kernel, tmp_path / "kernel.sock")
    try:
        env = Env(
            open_server=lambda: Server(MultisNetlink(remote.transport(*_classes("multis")))),
            open_client=lambda: Client(MulticNetlink(remote.transport(*_classes("multic")))),
            state_dir=state_dir,
        )
        result = killing.campaign(name, env, state_dir, ROUNDS)
        opened = env.open_server() if name == "multis" else env.open_client()
        side = SERVER if name == "multis" else CLIENT
        with opened as handle:
            in_kernel = side.from_kernel(handle)
    finally:
        remote.stop()
    assert result.problems == [], result.to_json()
    # the rounds really were killed at every stage, and really changed things
    assert result.killed >= ROUNDS // 3, result.to_json()
    assert result.succeeded >= ROUNDS // 5, result.to_json()
    assert result.removed, result.to_json()
    assert side.read(side.state_file(state_dir)) == in_kernel


def _classes(name: str) -> tuple[type, str]:
    from multicast_admin.netlink import multicmsg, multismsg

    return (multismsg, "multis") if name == "multis" else (multicmsg, "multic")
