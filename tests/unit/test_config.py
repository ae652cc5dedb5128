"""The state files: format, atomic writes, locking, corruption, legacy import, save/restore."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from fakes import FakeMulticKernel, FakeMultisKernel

from multicast_admin import uapi
from multicast_admin.client import Client
from multicast_admin.config import CLIENT, SERVER, GroupConfig, ServerConfig, config_dir
from multicast_admin.errors import ConfigError, InvalidArgument
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.server import Server

A = IPv4Address


def server_on(kernel: FakeMultisKernel) -> Server:
    return Server(MultisNetlink(kernel))


def client_on(kernel: FakeMulticKernel) -> Client:
    return Client(MulticNetlink(kernel))


@pytest.fixture
def legacy_dir(tmp_path):
    directory = tmp_path / "usr-local-etc"
    directory.mkdir()
    return directory


def test_config_dir_comes_from_the_environment(state_dir, monkeypatch):
    assert config_dir() == state_dir
    monkeypatch.delenv("MULTICAST_PROXY_CONFIG_DIR")
    assert str(config_dir()) == "/etc/multicast-proxy"


def test_the_lock_lives_under_run_lock_unless_told_otherwise(state_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("MULTICAST_PROXY_CONFIG_DIR")
    assert SERVER.state_file().lock_path == Path("/run/lock/multicast-proxy/multis.lock")
    assert CLIENT.state_file().path == Path("/etc/multicast-proxy/multic.json")
    # a state directory of its own keeps its lock beside it
    assert CLIENT.state_file(tmp_path).lock_path == tmp_path / "multic.lock"
    monkeypatch.setenv("MULTICAST_PROXY_LOCK_DIR", str(tmp_path / "locks"))
    assert SERVER.state_file().lock_path == tmp_path / "locks" / "multis.lock"
    with SERVER.state_file().locked(timeout=1):
        assert (tmp_path / "locks" / "multis.lock").exists()


OLD = {"format": "multicast-proxy/multis", "version": 1, "groups": []}
NEW = {**OLD, "groups": [{"group": "239.1.1.1", "members": ["10.0.0.1"]}]}


def test_atomic_write(state_dir):
    state = SERVER.state_file()
    state.write(OLD)
    assert json.loads(state.path.read_text()) == OLD
    assert stat.S_IMODE(state.path.stat().st_mode) == 0o644
    state.write(NEW)
    assert json.loads(state.path.read_text()) == NEW
    assert sorted(p.name for p in state_dir.iterdir()) == ["multis.json"]  # no temp file left


class Crash(BaseException):
    """A power cut: nothing after it runs (not even an except OSError)."""


@pytest.mark.parametrize("at", ["write", "fsync", "replace"])
def test_a_crash_while_writing_leaves_the_old_file_whole(state_dir, monkeypatch, at):
    # Wherever the writer stops, the file is the old one, byte for byte: the
    # new content goes to another file that is fsynced, then renamed over it.
    state = SERVER.state_file()
    state.write(OLD)
    old = state.path.read_bytes()
    events = []
    real_fsync, real_replace, real_fdopen = os.fsync, os.replace, os.fdopen

    def fdopen(fd, *args, **kwargs):
        handle = real_fdopen(fd, *args, **kwargs)
        real_write = handle.write

        def write(text):
            events.append("write")
            if at == "write":
                real_write(text[: len(text) // 2])
                handle.flush()
                raise Crash
            return real_write(text)

        handle.write = write
        return handle

    def fsync(fd):
        events.append("fsync")
        if at == "fsync":
            raise Crash
        real_fsync(fd)

    def replace(src, dst):
        events.append("replace")
        if at == "replace":
            raise Crash
        real_replace(src, dst)

    monkeypatch.setattr(os, "fdopen", fdopen)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(Crash):
        state.write(NEW)
    assert state.path.read_bytes() == old
    monkeypatch.undo()
    # and the new content was made durable before it replaced the old file
    events.clear()
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    at = None
    state.write(NEW)
    assert events[:2] == ["fsync", "replace"]
    assert json.loads(state.path.read_text()) == NEW


def test_save_and_restore_round_trip(state_dir):
    first = FakeMultisKernel(max_members=300)
    server = server_on(first)
    server.join("239.1.1.1", [f"10.0.{i // 100}.{i % 100 + 1}" for i in range(300)])
    server.join("255.255.255.255", ["10.1.0.1"], broadcast=True)
    server.join("224.0.0.18", [], vrrp=True)
    saved = SERVER.save(server)
    assert len(saved.groups) == 3

    second = FakeMultisKernel(max_members=300)
    report = SERVER.restore(server_on(second))
    assert report.ok, report.failures
    assert (report.source, report.legacy, report.applied) == (SERVER.state_file().path, False, 3)
    assert second.state() == first.state()
    assert second.restored  # the restore ended with SET_RESTORED
    # restoring again onto the same state changes nothing but the mark again
    sent = len(second.changes())
    assert SERVER.restore(server_on(second)).ok
    assert [r.cmd for r in second.changes()[sent:]] == [uapi.MULTIS_CMD_SET_RESTORED]


def test_client_save_and_restore_round_trip(state_dir):
    first = FakeMulticKernel()
    client = client_on(first)
    client.add("10.0.0.1", 1234, "239.1.1.1")
    client.add("10.0.0.2", 0, "224.0.0.251")
    client.add("10.0.0.3", 0, "255.255.255.255", broadcast=True)
    client.add("10.0.0.3", 7, "10.0.0.255", broadcast=True)  # a subnet's broadcast
    CLIENT.save(client)
    second = FakeMulticKernel()
    second.set_entry("10.9.9.9", 9, "239.9.9.9")  # stale state is replaced
    report = CLIENT.restore(client_on(second))
    assert report.ok
    assert second.state() == first.state()


def test_restore_without_any_file_does_nothing_but_mark_it_restored(state_dir):
    kernel = FakeMultisKernel(restored=False)
    kernel.set_group("239.1.1.1", ["10.0.0.1"])  # nothing saved: nothing to lose either
    report = SERVER.restore(server_on(kernel))
    assert (report.source, report.ok) == (None, True)
    assert [r.cmd for r in kernel.changes()] == [uapi.MULTIS_CMD_SET_RESTORED]
    assert kernel.restored
    assert kernel.state() == {"239.1.1.1": (0, ["10.0.0.1"])}


def test_restore_that_partly_fails_keeps_the_file(state_dir):
    state = SERVER.state_file()
    content = {
        "format": "multicast-proxy/multis",
        "version": 1,
        "groups": [
            {"group": f"239.0.0.{i}", "members": ["10.0.0.1"], "broadcast": False, "vrrp": False}
            for i in range(1, 4)
        ],
    }
    state.write(content)
    original = state.path.read_bytes()
    kernel = FakeMultisKernel(max_groups=2)  # the operator lowered the limit meanwhile
    report = SERVER.restore(server_on(kernel))
    assert not report.ok
    assert report.failures == ["group 239.0.0.3: group limit 2 reached"]
    assert report.applied == 2
    assert state.path.read_bytes() == original
    assert report.kept_copy == state_dir / "multis.json.failed"
    assert report.kept_copy.read_bytes() == original


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{", "not valid JSON"),
        ("[]", "the top level must be a JSON object"),
        ('{"format": "other", "version": 1}', '"format" must be "multicast-proxy/multis"'),
        ('{"format": "multicast-proxy/multis", "version": 3}', '"version" 3 is not supported'),
        (
            '{"format": "multicast-proxy/multis", "version": 1, "groups": [{"group": "1.2.3"}]}',
            "groups[0].group '1.2.3' is not a valid IP address",
        ),
        (
            '{"format": "multicast-proxy/multis", "version": 1, "groups": '
            '[{"group": "239.1.1.1", "members": [5]}]}',
            "groups[0].members[0] must be an address string, not 5",
        ),
        (
            '{"format": "multicast-proxy/multis", "version": 1, "groups": '
            '[{"group": "239.1.1.1", "vrrp": "yes"}]}',
            "groups[0].vrrp must be true or false",
        ),
    ],
)
def test_a_corrupt_file_is_refused_and_kept(state_dir, content, problem):
    state = SERVER.state_file()
    state_dir.mkdir(parents=True)
    state.path.write_text(content)
    kernel = FakeMultisKernel()
    with pytest.raises(ConfigError) as caught:
        SERVER.restore(server_on(kernel))
    assert str(caught.value).startswith(f"{state.path} is corrupt (")
    assert problem in str(caught.value)
    assert str(caught.value).endswith("it was left as it is: fix it or move it away")
    with pytest.raises(ConfigError):
        SERVER.change(server_on(kernel), lambda s: s.join("239.1.1.1", []))
    assert kernel.changes() == []
    assert state.path.read_text() == content


def test_the_legacy_server_file_is_imported_once(state_dir, legacy_dir):
    legacy = {
        "multi_group_array": [
            {"group_ip": "239.1.1.1", "member_array": ["10.0.0.1", "10.0.0.2"]},
            {"group_ip": "239.1.1.1", "member_array": ["10.0.0.2", "10.0.0.3", "224.5.5.5"]},
            {"group_ip": "255.255.255.255", "member_array": ["10.0.0.4"]},
        ]
    }
    (legacy_dir / "multi_server_startup_config").write_text(json.dumps(legacy, indent=8))
    kernel = FakeMultisKernel()
    report = SERVER.restore(server_on(kernel))
    assert report.ok, report.failures
    assert report.legacy
    assert report.source == legacy_dir / "multi_server_startup_config"
    assert report.skipped == ("group 239.1.1.1: member 224.5.5.5 is a multicast address",)
    assert kernel.state() == {
        "239.1.1.1": (0, ["10.0.0.1", "10.0.0.2", "10.0.0.3"]),
        "255.255.255.255": (1, ["10.0.0.4"]),
    }
    ours = SERVER.read(SERVER.state_file())
    assert ours == SERVER.from_kernel(server_on(kernel))
    # from now on our file wins, even if the old one changes
    (legacy_dir / "multi_server_startup_config").write_text('{"multi_group_array": []}')
    assert SERVER.restore(server_on(FakeMultisKernel())).source == SERVER.state_file().path


def test_the_legacy_running_file_is_used_when_there_is_no_startup_file(state_dir, legacy_dir):
    legacy = {"multi_group_array": [{"group_ip": "239.1.1.1", "member_array": ["10.0.0.1"]}]}
    (legacy_dir / "multi_server_running_config").write_text(json.dumps(legacy))
    imported = SERVER.import_legacy()
    assert imported is not None
    assert imported.path.name == "multi_server_running_config"


def test_the_legacy_client_file_is_imported(state_dir, legacy_dir):
    legacy = {
        "multi_server_info_array": [
            {"server_ip": "10.0.0.1", "group_ip": "239.1.1.1", "client_port": 1234},
            {"server_ip": "10.0.0.2", "group_ip": "224.0.0.251", "client_port": "0"},
        ]
    }
    (legacy_dir / "multi_client_startup_config").write_text(json.dumps(legacy))
    kernel = FakeMulticKernel()
    report = CLIENT.restore(client_on(kernel))
    assert report.ok
    assert report.legacy
    assert kernel.state() == {"10.0.0.1:1234": "239.1.1.1", "10.0.0.2:0": "224.0.0.251"}
    assert CLIENT.from_kernel(client_on(kernel)).to_json()["entries"] == [
        {"server": "10.0.0.1", "port": 1234, "group": "239.1.1.1"},
        {"server": "10.0.0.2", "port": 0, "group": "224.0.0.251"},
    ]
    assert json.loads(CLIENT.state_file().path.read_text())["entries"][1]["port"] == 0


def test_a_corrupt_legacy_file_is_refused(state_dir, legacy_dir):
    (legacy_dir / "multi_client_startup_config").write_text("{not json")
    with pytest.raises(ConfigError, match="multi_client_startup_config is corrupt"):
        CLIENT.restore(client_on(FakeMulticKernel()))


def test_a_change_holds_the_lock_from_before_the_kernel_to_after_the_file(state_dir):
    # Deterministic: while the change runs, and while the file is written, any
    # other taker of the lock (another process, another file description) fails.
    kernel = FakeMultisKernel()
    state = SERVER.state_file()
    seen = []

    def other_taker_fails() -> None:
        try:
            with state.locked(timeout=0):
                seen.append("got the lock")
        except ConfigError as error:
            seen.append("stayed locked" if "stayed locked" in str(error) else str(error))

    real_write = type(state).write

    def write(self, data):
        other_taker_fails()
        real_write(self, data)

    def change(server):
        other_taker_fails()
        return server.join("239.1.1.1", ["10.0.0.1"])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(state), "write", write)
        SERVER.change(server_on(kernel), change, state)
    assert seen == ["stayed locked", "stayed locked"]
    other_taker_fails()
    assert seen[-1] == "got the lock"  # released afterwards


def test_the_lock_excludes_another_process(state_dir):
    state = CLIENT.state_file()
    state_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(state.lock_path)!r}, 'a')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(3)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        started = time.monotonic()
        with pytest.raises(ConfigError, match="stayed locked"), state.locked(timeout=0.3):
            pass
        assert time.monotonic() - started >= 0.3
    finally:
        holder.kill()
        holder.wait()
    with state.locked(timeout=1):
        pass


def test_a_refused_change_writes_nothing(state_dir):
    kernel = FakeMulticKernel()
    with pytest.raises(InvalidArgument):
        CLIENT.change(client_on(kernel), lambda c: c.add("10.0.0.1", 1, "10.1.1.1"))
    assert not CLIENT.state_file().path.exists()


def _write_refused(directory: Path) -> bool:
    try:
        SERVER.state_file(directory).write({})
    except Exception as err:  # noqa: BLE001 - the message is what is checked
        return "run as root" in str(err)
    return False


def test_unwritable_directory_is_reported(tmp_path):
    if os.geteuid() != 0:
        directory = tmp_path / "ro"
        directory.mkdir(mode=0o555)
        assert _write_refused(directory)
        return
    # root writes anywhere: check as nobody, in a child, in a directory
    # nobody can reach but not write
    top = Path(tempfile.mkdtemp(prefix="mcp-ro-", dir="/tmp"))
    try:
        top.chmod(0o755)
        directory = top / "ro"
        directory.mkdir(mode=0o555)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            try:
                os.setgroups([])
                os.setgid(65534)
                os.setuid(65534)
                os._exit(0 if _write_refused(directory) else 1)
            finally:
                os._exit(2)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        directory.chmod(0o755)
        shutil.rmtree(top)


def _saved_state(groups: int, members: int) -> dict:
    """G groups of M members each, as ServerConfig writes them."""
    first = int(IPv4Address("10.0.0.1"))
    config = ServerConfig(
        tuple(
            GroupConfig(
                IPv4Address(int(IPv4Address("239.0.0.1")) + g),
                tuple(IPv4Address(first + g * members + m) for m in range(members)),
            )
            for g in range(groups)
        )
    )
    return config.to_json()


@pytest.mark.parametrize(("groups", "members"), [(10, 128), (200, 4)])
def test_a_restore_takes_round_trips_in_proportion_to_the_groups(state_dir, groups, members):
    # Into the empty kernel of a fresh start: one dump of the groups, then one
    # JOIN per group; all accepted, nothing is read back; one SET_RESTORED.
    SERVER.state_file().write(_saved_state(groups, members))
    kernel = FakeMultisKernel(max_groups=groups, max_members=members)
    report = SERVER.restore(server_on(kernel))
    assert report.ok, report.failures[:3]
    assert report.applied == groups
    assert len(kernel.requests) == groups + 2
    assert len(kernel.changes()) == groups + 1
    assert SERVER.from_kernel(server_on(kernel)) == SERVER.read(SERVER.state_file())


def test_a_client_restore_is_one_add_per_entry(state_dir):
    entries = [
        {"server": f"10.0.{i // 250}.{i % 250 + 1}", "port": 5000, "group": "239.1.1.1"}
        for i in range(500)
    ]
    CLIENT.state_file().write(
        {"format": "multicast-proxy/multic", "version": 1, "entries": entries}
    )
    kernel = FakeMulticKernel()
    assert CLIENT.restore(client_on(kernel)).ok
    assert len(kernel.requests) == 500 + 2  # a dump, one ADD each, SET_RESTORED
