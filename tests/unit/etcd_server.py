"""A real etcd server for the fleet tests: Debian's etcd-server, unpacked by
scripts/setup-etcd.sh, started on free loopback ports with a data directory of
its own.  If etcd cannot be set up the tests that need it fail (they are never
skipped): `make test` runs setup-etcd.sh first, and so does :func:`etcd_binary`.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def etcd_binary() -> Path:
    proc = subprocess.run(
        [str(REPO / "scripts" / "setup-etcd.sh")], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        pytest.fail(f"setup-etcd.sh failed:\n{proc.stderr}", pytrace=False)
    return Path(proc.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EtcdServer:
    """One etcd member on 127.0.0.1; :meth:`stop` and :meth:`start` keep its data."""

    def __init__(self, binary: Path, data_dir: Path, tls: Path | None = None) -> None:
        self.tls = tls
        """A directory of make_certs(): serve https, and ask for a client certificate."""
        self.binary = binary
        self.data_dir = data_dir
        self.port = free_port()
        self.peer_port = free_port()
        self.proc: subprocess.Popen | None = None
        self.log = data_dir.parent / f"{data_dir.name}.log"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def etcdctl(self, *args: str) -> str:
        argv = [str(self.binary.with_name("etcdctl")), f"--endpoints={self.url}", *args]
        proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=20)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    def start(self) -> None:
        client = self.url
        tls = []
        if self.tls:
            tls = [
                f"--cert-file={self.tls / 'server.pem'}",
                f"--key-file={self.tls / 'server-key.pem'}",
                f"--trusted-ca-file={self.tls / 'ca.pem'}",
                "--client-cert-auth",
            ]
        peer = f"http://127.0.0.1:{self.peer_port}"
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [
                    str(self.binary),
                    "--name=test",
                    f"--data-dir={self.data_dir}",
                    f"--listen-client-urls={client}",
                    f"--advertise-client-urls={client}",
                    f"--listen-peer-urls={peer}",
                    f"--initial-advertise-peer-urls={peer}",
                    f"--initial-cluster=test={peer}",
                    "--log-level=error",
                    "--logger=zap",
                    *tls,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"etcd exited ({self.proc.returncode}): {self.log.read_text()[-2000:]}")
            if self._healthy():
                return
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"etcd did not become healthy in 20 s: {self.log.read_text()[-2000:]}")

    def _healthy(self) -> bool:
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.tls / "ca.pem"))
            context.load_cert_chain(str(self.tls / "client.pem"), str(self.tls / "client-key.pem"))
        else:
            context = None
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1, context=context) as reply:
                return json.loads(reply.read()).get("health") == "true"
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def make_certs(directory: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (openssl).

    The server certificate is for client authentication too: etcd 3.4's gRPC
    gateway dials its own gRPC server with it (etcd's TLS guide says so)."""
    directory.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr

    d = str(directory)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", f"{d}/ca-key.pem", "-out", f"{d}/ca.pem", "-days", "2",
            "-subj", "/CN=test-ca")  # fmt: skip
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (directory / f"{name}.ext").write_text(ext + "\n")
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                "-keyout", f"{d}/{name}-key.pem", "-out", f"{d}/{name}.csr",
                "-subj", f"/CN={name}")  # fmt: skip
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem",
                "-CAkey", f"{d}/ca-key.pem", "-CAcreateserial", "-out", f"{d}/{name}.pem",
                "-days", "2", "-extfile", f"{d}/{name}.ext")  # fmt: skip
    return directory
