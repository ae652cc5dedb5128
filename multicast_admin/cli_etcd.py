"""The etcd options of every fleet command: ``--etcd``, ``--domain``, TLS, auth, ``--config``."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click

from .fleet.settings import EtcdSettings, conf_path, etcd_settings, read_conf

_FILE = click.Path(dir_okay=False, path_type=Path)


def etcd_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the options; the command gets ``conf`` (agent.conf's sections) and ``etcd``."""

    @click.option("--etcd", "endpoints", metavar="URL[,URL...]", help="etcd client URLs.")
    @click.option("--domain", help="The fleet's domain in etcd (default: default).")
    @click.option("--etcd-cacert", type=_FILE, help="CA certificate of etcd's TLS.")
    @click.option("--etcd-cert", type=_FILE, help="Client certificate for etcd.")
    @click.option("--etcd-key", type=_FILE, help="Key of the client certificate.")
    @click.option("--etcd-user", help="etcd user (with --etcd-password).")
    @click.option("--etcd-password", help="etcd user's password.")
    @click.option(
        "--config",
        type=_FILE,
        help="agent.conf to read (default /etc/multicast-proxy/agent.conf).",
    )
    @functools.wraps(command)
    def wrapper(
        *args: object,
        endpoints: str | None,
        domain: str | None,
        etcd_cacert: Path | None,
        etcd_cert: Path | None,
        etcd_key: Path | None,
        etcd_user: str | None,
        etcd_password: str | None,
        config: Path | None,
        **kwargs: object,
    ) -> object:
        conf = read_conf(conf_path(config))
        settings: EtcdSettings = etcd_settings(
            conf,
            endpoints=endpoints,
            domain=domain,
            cacert=etcd_cacert,
            cert=etcd_cert,
            key=etcd_key,
            user=etcd_user,
            password=etcd_password,
        )
        return command(*args, conf=conf, etcd=settings, **kwargs)

    return wrapper
