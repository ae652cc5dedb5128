"""Fixtures: fake kernels, a state directory, and the two CLIs wired to them."""

from __future__ import annotations

import inspect
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeMulticKernel, FakeMultisKernel

from multicast_admin import cli_client, cli_server
from multicast_admin.cli_common import Env
from multicast_admin.client import Client
from multicast_admin.netlink import MulticNetlink, MultisNetlink
from multicast_admin.server import Server


@dataclass
class Run:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        return json.loads(self.stdout)


def _runner() -> CliRunner:
    # click < 8.2 mixes stderr into stdout unless told not to; 8.2 removed the option.
    if "mix_stderr" in inspect.signature(CliRunner.__init__).parameters:
        return CliRunner(mix_stderr=False)
    return CliRunner()


@pytest.fixture
def state_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "etc" / "multicast-proxy"
    monkeypatch.setenv("MULTICAST_PROXY_CONFIG_DIR", str(directory))
    monkeypatch.setenv("MULTICAST_PROXY_LEGACY_DIR", str(tmp_path / "usr-local-etc"))
    monkeypatch.setenv("MULTICAST_PROXY_RUN_DIR", str(tmp_path / "run"))
    return directory


@pytest.fixture
def multis_kernel() -> FakeMultisKernel:
    return FakeMultisKernel()


@pytest.fixture
def multic_kernel() -> FakeMulticKernel:
    return FakeMulticKernel()


@pytest.fixture
def env(multis_kernel, multic_kernel, state_dir) -> Env:
    return Env(
        open_server=lambda: Server(MultisNetlink(multis_kernel)),
        open_client=lambda: Client(MulticNetlink(multic_kernel)),
        state_dir=state_dir,
    )


def _invoke(command, env: Env, args: list[str]) -> Run:
    result = _runner().invoke(command, args, obj=env, catch_exceptions=False)
    return Run(result.exit_code, result.stdout, result.stderr)


@pytest.fixture
def multis_admin(env):
    return lambda *args: _invoke(cli_server.cli, env, list(args))


@pytest.fixture
def multic_admin(env):
    return lambda *args: _invoke(cli_client.cli, env, list(args))


# --- a real etcd (the fleet tests) -----------------------------------------


@pytest.fixture(scope="session")
def etcd(tmp_path_factory):
    """One etcd for the session; each test uses a domain of its own (``domain``)."""
    from etcd_server import EtcdServer, etcd_binary

    server = EtcdServer(etcd_binary(), tmp_path_factory.mktemp("etcd") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def etcd_own(tmp_path):
    """An etcd of this test's own, which it may stop and start again."""
    from etcd_server import EtcdServer, etcd_binary

    server = EtcdServer(etcd_binary(), tmp_path / "etcd-data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def domain(request) -> str:
    """A domain name unique to the test, so tests sharing one etcd never meet."""
    import re

    return re.sub(r"[^A-Za-z0-9_.-]", "-", request.node.name)[:63]
