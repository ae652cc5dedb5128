"""multicast_admin.service on fake kernels: what `service multis|multic ACTION` does.

The module loader is a double that records modprobe/insmod/rmmod; the kernel
is the netlink-level fake of tests/unit/fakes.py, replaced by a fresh one on
every load (unloading a module loses its state, as in the real kernel).
"""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest
from fakes import FakeMulticKernel, FakeMultisKernel

from multicast_admin import service
from multicast_admin.client import Client
from multicast_admin.errors import ModuleNotLoaded
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.server import Server
from multicast_admin.service import ConfigStateStore, Exit, Kmod, Service, ServiceError


class FakeModules:
    """Loaded modules and the kernel state each holds; records every command."""

    def __init__(self, installed: bool = True, max_groups: int = 10) -> None:
        self.is_installed = installed
        self.max_groups = max_groups
        self.kernels: dict[str, FakeMultisKernel | FakeMulticKernel] = {}
        self.log: list[str] = []

    def loaded(self, name: str) -> bool:
        return name in self.kernels

    def installed(self, name: str) -> Path | None:
        return Path(f"/lib/modules/K/extra/{name}.ko") if self.is_installed else None

    def load(self, name: str, path: Path | None) -> None:
        self.log.append(f"modprobe {name}" if path is None else f"insmod {path}")
        kind = FakeMultisKernel if name == "multis" else FakeMulticKernel
        # a module just loaded: empty, and not restored (as the real one)
        self.kernels[name] = kind(max_groups=self.max_groups, restored=False)

    def unload(self, name: str) -> None:
        self.log.append(f"rmmod {name}")
        del self.kernels[name]

    def kernel(self, name: str):
        if name not in self.kernels:
            raise ModuleNotLoaded(name)
        return self.kernels[name]


@pytest.fixture
def modules() -> FakeModules:
    return FakeModules()


OPEN = {
    "multis": lambda kernel: Server(MultisNetlink(kernel)),
    "multic": lambda kernel: Client(MulticNetlink(kernel)),
}


def make(name: str, modules: FakeModules, state_dir: Path, **kwargs) -> Service:
    out, err = io.StringIO(), io.StringIO()
    store = ConfigStateStore(
        service.ROLES[name],
        state_dir,
        legacy_dir=state_dir.parent / "legacy",
        open=lambda: OPEN[name](modules.kernel(name)),
        out=out,
    )
    return Service(service.ROLES[name], modules, store, out=out, err=err, **kwargs)


def output(svc: Service) -> str:
    return svc.out.getvalue() + svc.err.getvalue()  # type: ignore[attr-defined]


def configure_server(modules: FakeModules) -> None:
    server = Server(MultisNetlink(modules.kernel("multis")))
    server.join("239.1.1.1", ["10.0.0.11", "10.0.0.12"])
    server.join("239.2.2.2", ["10.0.0.13"], vrrp=True)


# --------------------------------------------------------------------------- start/stop


def test_start_loads_the_installed_module_with_modprobe(modules, state_dir):
    svc = make("multis", modules, state_dir)
    assert svc.run("start") == Exit.OK
    assert modules.log == ["modprobe multis"]
    assert "module loaded (modprobe, /lib/modules/K/extra/multis.ko)" in output(svc)
    assert "nothing to restore" in output(svc)


def test_stop_saves_the_running_state_then_unloads(modules, state_dir):
    svc = make("multis", modules, state_dir)
    svc.run("start")
    configure_server(modules)
    assert svc.run("stop") == Exit.OK
    assert modules.log == ["modprobe multis", "rmmod multis"]
    saved = json.loads((state_dir / "multis.json").read_text())
    assert saved["groups"] == [
        {
            "group": "239.1.1.1",
            "broadcast": False,
            "vrrp": False,
            "members": ["10.0.0.11", "10.0.0.12"],
        },
        {"group": "239.2.2.2", "broadcast": False, "vrrp": True, "members": ["10.0.0.13"]},
    ]
    assert f"saved 2 groups, 3 members to {state_dir / 'multis.json'}" in output(svc)


def test_start_restores_exactly_what_stop_saved(modules, state_dir):
    svc = make("multis", modules, state_dir)
    svc.run("start")
    configure_server(modules)
    before = modules.kernels["multis"].state()
    svc.run("stop")
    assert svc.run("start") == Exit.OK
    assert modules.kernels["multis"].state() == before
    assert "restored 2 groups, 3 members" in output(svc)


def test_client_round_trip(modules, state_dir):
    svc = make("multic", modules, state_dir)
    svc.run("start")
    client = Client(MulticNetlink(modules.kernel("multic")))
    client.add("10.0.0.1", 5000, "239.1.1.1")
    client.add("10.0.0.1", 0, "239.2.2.2")
    before = modules.kernels["multic"].state()
    assert svc.run("restart") == Exit.OK
    assert modules.log == ["modprobe multic", "rmmod multic", "modprobe multic"]
    assert modules.kernels["multic"].state() == before
    assert "restored 2 entries" in output(svc)


def test_start_twice_says_so_and_succeeds(modules, state_dir):
    svc = make("multis", modules, state_dir)
    svc.run("start")
    assert svc.run("start") == Exit.OK
    assert modules.log == ["modprobe multis"]
    assert "already running" in output(svc)


def test_stop_when_stopped_says_so_and_succeeds(modules, state_dir):
    state_dir.mkdir(parents=True)
    (state_dir / "multis.json").write_text("keep me")
    svc = make("multis", modules, state_dir)
    assert svc.run("stop") == Exit.OK
    assert modules.log == []
    assert "not running" in output(svc)
    assert (state_dir / "multis.json").read_text() == "keep me"


def test_try_restart_leaves_a_stopped_service_stopped(modules, state_dir):
    svc = make("multis", modules, state_dir)
    assert svc.run("try-restart") == Exit.OK
    assert modules.log == []


# --------------------------------------------------------------------------- refusals


def test_a_corrupt_state_file_refuses_start_and_is_kept(modules, state_dir):
    state_dir.mkdir(parents=True)
    corrupt = b'{"format": "multicast-proxy/multis", "version": 1, "groups": [ {'
    (state_dir / "multis.json").write_bytes(corrupt)
    svc = make("multis", modules, state_dir)
    assert svc.run("start") == Exit.NOT_CONFIGURED
    assert modules.log == []  # the module was not even loaded
    assert (state_dir / "multis.json").read_bytes() == corrupt
    err = svc.err.getvalue()  # type: ignore[attr-defined]
    assert err.startswith("multis: not started: ")
    assert f"{state_dir / 'multis.json'} is corrupt" in err
    assert "was left as it is" in err


def test_a_restore_the_kernel_refuses_unloads_again_and_keeps_the_file(state_dir):
    modules = FakeModules(max_groups=1)
    state_dir.mkdir(parents=True)
    text = json.dumps(
        {
            "format": "multicast-proxy/multis",
            "version": 1,
            "groups": [
                {"group": "239.1.1.1", "members": ["10.0.0.11"]},
                {"group": "239.2.2.2", "members": ["10.0.0.12"]},
            ],
        }
    )
    (state_dir / "multis.json").write_text(text)
    svc = make("multis", modules, state_dir)
    assert svc.run("start") == Exit.NOT_CONFIGURED
    assert modules.log == ["modprobe multis", "rmmod multis"]
    assert (state_dir / "multis.json").read_text() == text
    assert (state_dir / "multis.json.failed").read_text() == text
    err = svc.err.getvalue()  # type: ignore[attr-defined]
    assert "group 239.2.2.2" in err
    assert "group limit 1 reached" in err
    assert "unloaded again" in err


def test_a_failed_save_keeps_the_module_loaded(modules, state_dir, monkeypatch):
    svc = make("multis", modules, state_dir)
    svc.run("start")
    configure_server(modules)

    def broken(*_args, **_kwargs):
        from multicast_admin.errors import ConfigError

        raise ConfigError("cannot write /etc/multicast-proxy: Read-only file system")

    monkeypatch.setattr(service.config.Side, "save", broken)
    assert svc.run("stop") == Exit.FAILED
    assert modules.loaded("multis")
    assert "The module stays loaded" in svc.err.getvalue()  # type: ignore[attr-defined]


def test_a_missing_module_names_the_kernel_and_the_package(state_dir):
    svc = make("multic", FakeModules(installed=False), state_dir)
    assert svc.run("start") == Exit.NOT_INSTALLED
    err = svc.err.getvalue()  # type: ignore[attr-defined]
    assert "multic kernel module is not installed for the running kernel" in err
    assert "multi_client" in err


def test_the_development_tree_is_the_last_resort(tmp_path, state_dir):
    ko = tmp_path / "kernel" / "multis" / "multis.ko"
    ko.parent.mkdir(parents=True)
    ko.write_bytes(b"\x7fELF")
    modules = FakeModules(installed=False)
    svc = make("multis", modules, state_dir, ko_dir=tmp_path / "kernel")
    assert svc.run("start") == Exit.OK
    assert modules.log == [f"insmod {ko}"]
    # installed wins over the development tree
    modules = FakeModules(installed=True)
    svc = make("multis", modules, state_dir, ko_dir=tmp_path / "kernel")
    svc.run("start")
    assert modules.log == ["modprobe multis"]
    # an explicit --ko wins over both
    modules = FakeModules(installed=True)
    svc = make("multis", modules, state_dir, ko=ko)
    svc.run("start")
    assert modules.log == [f"insmod {ko}"]


def test_start_and_stop_need_root(modules, state_dir):
    svc = make("multis", modules, state_dir, is_root=False)
    assert svc.run("start") == Exit.NO_PRIVILEGE
    assert svc.run("stop") == Exit.NO_PRIVILEGE
    assert "multis: start needs root" in svc.err.getvalue()  # type: ignore[attr-defined]
    assert modules.log == []


# --------------------------------------------------------------------------- status


def test_status_of_a_running_server(modules, state_dir):
    svc = make("multis", modules, state_dir)
    svc.run("start")
    configure_server(modules)
    svc.out = io.StringIO()
    assert svc.run("status") == Exit.OK
    assert svc.out.getvalue().splitlines() == [
        "multis: running (module loaded)",
        "  group 239.1.1.1: 10.0.0.11, 10.0.0.12",
        "  group 239.2.2.2 (vrrp): 10.0.0.13",
        f"state file: {state_dir / 'multis.json'} (nothing saved)",
    ]


def test_status_of_a_stopped_client(modules, state_dir):
    svc = make("multic", modules, state_dir)
    svc.run("start")
    Client(MulticNetlink(modules.kernel("multic"))).add("10.0.0.1", 0, "239.1.1.1")
    svc.run("stop")
    svc.out = io.StringIO()
    assert svc.run("status") == Exit.NOT_RUNNING
    assert svc.out.getvalue().splitlines() == [
        "multic: stopped (module not loaded)",
        f"state file: {state_dir / 'multic.json'} (1 entry)",
    ]


def test_status_shows_an_unusable_state_file(modules, state_dir):
    state_dir.mkdir(parents=True)
    (state_dir / "multic.json").write_text("[]")
    svc = make("multic", modules, state_dir)
    assert svc.run("status") == Exit.NOT_RUNNING
    assert "(UNUSABLE: " in svc.out.getvalue()  # type: ignore[attr-defined]


def test_status_mentions_an_old_configuration_to_migrate(modules, state_dir):
    legacy = state_dir.parent / "legacy"
    legacy.mkdir(parents=True)
    (legacy / "multi_server_startup_config").write_text(
        json.dumps(
            {"multi_group_array": [{"group_ip": "239.1.1.1", "member_array": ["10.0.0.11"]}]}
        )
    )
    svc = make("multis", modules, state_dir)
    svc.run("status")
    assert "to migrate: 1 group, 1 member" in svc.out.getvalue()  # type: ignore[attr-defined]
    assert svc.run("start") == Exit.OK
    assert "(migrated from " in svc.out.getvalue()  # type: ignore[attr-defined]
    assert modules.kernels["multis"].state() == {"239.1.1.1": (0, ["10.0.0.11"])}


# --------------------------------------------------------------------------- Kmod, main


class Recorder:
    def __init__(self, results: dict[str, tuple[int, str, str]]) -> None:
        self.results = results
        self.calls: list[list[str]] = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        rc, out, err = self.results.get(argv[0], (0, "", ""))
        return subprocess.CompletedProcess(list(argv), rc, out, err)


def test_kmod_reads_sysfs_and_runs_the_tools(tmp_path):
    (tmp_path / "multis").mkdir()
    (tmp_path / "multis" / "initstate").write_text("live\n")
    run = Recorder({"modinfo": (0, "/lib/modules/6.1.0-56-amd64/extra/multis.ko\n", "")})
    kmod = Kmod(run=run, sys_module=tmp_path)
    assert kmod.loaded("multis")
    assert not kmod.loaded("multic")
    assert kmod.installed("multis") == Path("/lib/modules/6.1.0-56-amd64/extra/multis.ko")
    kmod.load("multis", None)
    kmod.unload("multis")
    assert run.calls[1:] == [["modprobe", "multis"], ["rmmod", "multis"]]


def test_kmod_loads_what_a_module_file_depends_on_first(tmp_path):
    # insmod resolves nothing: multic.ko needs nf_defrag_ipv4 loaded before it
    run = Recorder({"modinfo": (0, "nf_defrag_ipv4\n", "")})
    Kmod(run=run, sys_module=tmp_path).load("multic", Path("/src/multic.ko"))
    assert run.calls == [
        ["modinfo", "-F", "depends", "/src/multic.ko"],
        ["modprobe", "nf_defrag_ipv4"],
        ["insmod", "/src/multic.ko"],
    ]


def test_kmod_reports_what_the_tools_said(tmp_path):
    run = Recorder(
        {
            "modinfo": (1, "", "modinfo: ERROR: Module multis not found.\n"),
            "modprobe": (1, "", "modprobe: ERROR: could not insert 'multis': Invalid argument\n"),
        }
    )
    kmod = Kmod(run=run, sys_module=tmp_path)
    assert kmod.installed("multis") is None
    with pytest.raises(ServiceError) as caught:
        kmod.load("multis", None)
    assert str(caught.value) == (
        "cannot load the multis kernel module: modprobe multis: "
        "modprobe: ERROR: could not insert 'multis': Invalid argument"
    )


def test_main_rejects_unknown_actions(capsys):
    with pytest.raises(SystemExit) as caught:
        service.main(["multis", "reload"])
    assert caught.value.code == 2
    assert "invalid choice: 'reload'" in capsys.readouterr().err
