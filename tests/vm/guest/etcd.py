"""Guest side: a real etcd (Debian's, unpacked by scripts/setup-etcd.sh under
build/tools/etcd on the host, seen here over the 9p root), in a network
namespace of the simulated VPC or in the VM's own.

Its data directory is on the /run tmpfs.  ``stop``/``cont`` freeze and thaw
it (SIGSTOP/SIGCONT: an etcd that answers nothing, as one cut off would),
``kill``/``start`` end it and start it again on the same data.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
ETCD = REPO / "build" / "tools" / "etcd" / "usr" / "bin" / "etcd"


class GuestEtcd:
    def __init__(self, name: str, addr: str, netns: str | None = None, port: int = 2379) -> None:
        self.name, self.addr, self.netns, self.port = name, addr, netns, port
        self.data = Path("/run/etcd") / name
        self.log = Path("/run/etcd") / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.addr}:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        self.data.mkdir(parents=True, exist_ok=True)
        peer = f"http://{self.addr}:{self.port + 1}"
        argv = [
            str(ETCD), "--name", self.name, "--data-dir", str(self.data),
            "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"{self.name}={peer}", "--log-level", "warn",
        ]  # fmt: skip
        if self.netns:
            argv = ["nsenter", f"--net=/run/netns/{self.netns}", *argv]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited: {self.log.read_text()[-2000:]}")
            if self.healthy():
                return
            time.sleep(0.3)
        raise RuntimeError(f"etcd not healthy in {timeout} s: {self.log.read_text()[-2000:]}")

    def healthy(self) -> bool:
        """/health answered (from this namespace: the caller's, so enter the VPC first)."""
        from tests.vm.guest.vpc import inside

        def ask() -> bool:
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as reply:
                    return b"true" in reply.read()
            except OSError:
                return False

        if self.netns:
            with inside(self.netns):
                return ask()
        return ask()

    def freeze(self) -> None:
        assert self.proc
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
