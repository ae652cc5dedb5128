"""How the fleet commands reach etcd: options over /etc/multicast-proxy/agent.conf.

agent.conf is an INI file (docs/usage.md)::

    [etcd]
    endpoints = https://10.0.0.5:2379,https://10.0.0.6:2379
    domain = default
    cacert = /etc/multicast-proxy/etcd-ca.pem
    cert = /etc/multicast-proxy/etcd-client.pem
    key = /etc/multicast-proxy/etcd-client-key.pem
    user = multicast-proxy
    password = secret

    [agent]
    address = 10.0.0.11, 2001:db8::11
    join = 239.1.1.1, 239.1.1.2, ff15::1:5
    ttl = 10

A missing file is no error (options alone may be enough); a file that cannot
be parsed, an unknown key or a bad value is.  ``$MULTICAST_PROXY_AGENT_CONF``
or ``--config`` names another file.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import ConfigError, InvalidArgument

#: agent.conf read: {section: {key: value}}
Conf = dict[str, dict[str, str]]

DEFAULT_CONF = Path("/etc/multicast-proxy/agent.conf")
DEFAULT_DOMAIN = "default"
DEFAULT_TTL = 10
DOMAIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

_URL_HINT = "not a URL such as https://10.0.0.5:2379"
_KEYS = {
    "etcd": {"endpoints", "domain", "cacert", "cert", "key", "user", "password"},
    "agent": {"address", "join", "ttl"},
}


@dataclass(frozen=True)
class Endpoint:
    """One etcd client URL."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class EtcdSettings:
    """Where etcd is and how to authenticate to it."""

    endpoints: tuple[Endpoint, ...] = ()
    domain: str = DEFAULT_DOMAIN
    cacert: Path | None = None
    cert: Path | None = None
    key: Path | None = None
    user: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class AgentSettings:
    """What the agent itself needs beyond etcd."""

    etcd: EtcdSettings = field(default_factory=EtcdSettings)
    addresses: tuple[str, ...] = ()
    """This host's addresses, at most one per family (--address, [agent] address)."""
    join: tuple[str, ...] = ()
    ttl: int = DEFAULT_TTL


def parse_endpoints(value: str) -> tuple[Endpoint, ...]:
    """``URL[,URL...]``: http(s)://host[:port]; a bare host:port is http."""
    endpoints = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        text = item if "://" in item else f"http://{item}"
        try:
            url = urlsplit(text)
            port = url.port or 2379
        except ValueError:
            raise InvalidArgument(f"--etcd {item!r}: {_URL_HINT}") from None
        if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/"):
            raise InvalidArgument(f"--etcd {item!r}: {_URL_HINT}")
        endpoints.append(Endpoint(url.scheme, url.hostname, port))
    if not endpoints:
        raise InvalidArgument("--etcd: no endpoint given")
    return tuple(endpoints)


def check_domain(value: str) -> str:
    if not DOMAIN_RE.match(value):
        raise InvalidArgument(
            f"--domain {value!r}: use letters, digits, '.', '_' or '-' (at most 63)"
        )
    return value


def conf_path(given: Path | None) -> Path:
    if given is not None:
        return given
    return Path(os.environ.get("MULTICAST_PROXY_AGENT_CONF", str(DEFAULT_CONF)))


def read_conf(path: Path) -> dict[str, dict[str, str]]:
    """The sections of agent.conf; {} when the file does not exist."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with path.open(encoding="utf-8") as stream:
            parser.read_file(stream)
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, configparser.Error) as error:
        raise ConfigError(f"{path}: {error}".splitlines()[0]) from None
    result: dict[str, dict[str, str]] = {}
    for section in parser.sections():
        if section not in _KEYS:
            raise ConfigError(f"{path}: unknown section [{section}] (known: etcd, agent)")
        unknown = sorted(set(parser[section]) - _KEYS[section])
        if unknown:
            raise ConfigError(f"{path}: [{section}] has unknown key {', '.join(unknown)}")
        result[section] = dict(parser[section])
    return result


def _path(value: str | None) -> Path | None:
    return Path(value) if value else None


def etcd_settings(
    conf: dict[str, dict[str, str]],
    *,
    endpoints: str | None = None,
    domain: str | None = None,
    cacert: Path | None = None,
    cert: Path | None = None,
    key: Path | None = None,
    user: str | None = None,
    password: str | None = None,
) -> EtcdSettings:
    """The options given, else the file's values, else the defaults."""
    section = conf.get("etcd", {})
    urls = endpoints or section.get("endpoints")
    if not urls:
        raise InvalidArgument(
            "no etcd endpoint: give --etcd URL[,URL...] or set endpoints in [etcd] of agent.conf"
        )
    settings = EtcdSettings(
        endpoints=parse_endpoints(urls),
        domain=check_domain(domain or section.get("domain") or DEFAULT_DOMAIN),
        cacert=cacert or _path(section.get("cacert")),
        cert=cert or _path(section.get("cert")),
        key=key or _path(section.get("key")),
        user=user or section.get("user") or None,
        password=password or section.get("password") or None,
    )
    if (settings.cert is None) != (settings.key is None):
        raise InvalidArgument("--etcd-cert and --etcd-key go together: give both or neither")
    if (settings.user is None) != (settings.password is None):
        raise InvalidArgument("--etcd-user and --etcd-password go together: give both or neither")
    for what, path in (("cacert", settings.cacert), ("cert", settings.cert), ("key", settings.key)):
        if path is not None and not path.is_file():
            raise InvalidArgument(f"--etcd-{what} {path}: no such file")
    return settings


def agent_settings(
    conf: dict[str, dict[str, str]],
    etcd: EtcdSettings,
    *,
    addresses: tuple[str, ...] = (),
    join: tuple[str, ...] = (),
    ttl: int | None = None,
) -> AgentSettings:
    section = conf.get("agent", {})
    given = addresses or tuple(
        a.strip() for a in section.get("address", "").split(",") if a.strip()
    )
    joined = join or tuple(g.strip() for g in section.get("join", "").split(",") if g.strip())
    ttl_text = section.get("ttl")
    if ttl is None and ttl_text is not None:
        if not ttl_text.strip().isdigit():
            raise ConfigError(f"[agent] ttl {ttl_text!r}: give whole seconds")
        ttl = int(ttl_text)
    ttl = DEFAULT_TTL if ttl is None else ttl
    if not 2 <= ttl <= 3600:
        raise InvalidArgument(f"--ttl {ttl}: give 2 to 3600 seconds")
    return AgentSettings(etcd=etcd, addresses=given, join=joined, ttl=ttl)


def with_domain(settings: EtcdSettings, domain: str) -> EtcdSettings:
    return replace(settings, domain=check_domain(domain))
