"""TLS (with client certificates) and user/password authentication to a real etcd."""

from __future__ import annotations

import json

import pytest
from etcd_server import EtcdServer, etcd_binary, make_certs
from fleet_hosts import Host, wait_for
from test_fleet_cli import Proxy

from multicast_admin.fleet.settings import EtcdSettings, parse_endpoints


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def etcd_tls(tmp_path_factory, certs):
    server = EtcdServer(etcd_binary(), tmp_path_factory.mktemp("etcd-tls") / "data", tls=certs)
    server.start()
    yield server
    server.stop()


def _tls(certs, *, client: bool = True, ca: bool = True) -> list[str]:
    args = ["--etcd-cacert", str(certs / "ca.pem")] if ca else []
    if client:
        args += [
            "--etcd-cert",
            str(certs / "client.pem"),
            "--etcd-key",
            str(certs / "client-key.pem"),
        ]
    return args


def test_tls_with_a_client_certificate(etcd_tls, certs, domain, tmp_path):
    proxy = Proxy(etcd_tls.url, domain, str(tmp_path / "absent.conf"))
    r = proxy("group", "add", "239.1.1.1", "--port", "5000", *_tls(certs))
    assert r.exit_code == 0, r.stderr
    listed = proxy("group", "list", "--json", *_tls(certs))
    assert [g["group"] for g in json.loads(listed.stdout)["groups"]] == ["239.1.1.1"]


@pytest.mark.parametrize(("client", "ca"), [(False, True), (True, False)])
def test_tls_without_the_client_certificate_or_the_ca_fails(
    etcd_tls, certs, domain, tmp_path, client, ca
):
    proxy = Proxy(etcd_tls.url, domain, str(tmp_path / "absent.conf"))
    r = proxy("group", "list", *_tls(certs, client=client, ca=ca))
    assert r.exit_code == 9
    assert f"{etcd_tls.url}:" in r.stderr


def test_an_agent_over_tls_converges(etcd_tls, certs, domain, tmp_path):
    proxy = Proxy(etcd_tls.url, domain, str(tmp_path / "absent.conf"))
    assert proxy("group", "add", "239.1.1.1", "--port", "5000", *_tls(certs)).exit_code == 0
    settings = EtcdSettings(
        parse_endpoints(etcd_tls.url),
        domain,
        cacert=certs / "ca.pem",
        cert=certs / "client.pem",
        key=certs / "client-key.pem",
    )
    a = Host(tmp_path, "10.0.0.1", etcd_tls.url, domain)
    b = Host(tmp_path, "10.0.0.2", etcd_tls.url, domain)
    for h in (a, b):
        h.settings = type(h.settings)(settings, (h.address,), (), 2)
        h.start()
    try:
        b.joins("239.1.1.1")  # seen through the watch stream, over TLS too
        wait_for(lambda: a.members("239.1.1.1") == ["10.0.0.2"])
    finally:
        a.stop()
        b.stop()


def test_user_and_password(etcd_own, domain, tmp_path):
    etcd_own.etcdctl("user", "add", "root", "--new-user-password=rootpw")
    etcd_own.etcdctl("auth", "enable")
    proxy = Proxy(etcd_own.url, domain, str(tmp_path / "absent.conf"))
    auth = ["--etcd-user", "root", "--etcd-password", "rootpw"]
    r = proxy("group", "add", "239.1.1.1", "--port", "5000", *auth)
    assert r.exit_code == 0, r.stderr
    wrong = proxy("group", "list", "--etcd-user", "root", "--etcd-password", "nope")
    assert wrong.exit_code == 9
    assert "etcd refused the request" in wrong.stderr
    assert "authentication failed" in wrong.stderr
    anonymous = proxy("group", "list")
    assert anonymous.exit_code == 9
    conf = tmp_path / "agent.conf"
    conf.write_text(f"[etcd]\nendpoints = {etcd_own.url}\nuser = root\npassword = rootpw\n")
    proxy.conf = str(conf)
    listed = proxy("group", "list", "--json")
    assert listed.exit_code == 0, listed.stderr
    assert [g["group"] for g in json.loads(listed.stdout)["groups"]] == ["239.1.1.1"]
