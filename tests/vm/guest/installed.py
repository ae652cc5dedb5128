"""Guest side: what the scripts that install the RPMs share (service.py, dkms.py).

A writable root for rpm and dkms (overlays over the read-only host root, a
module tree trimmed to what the tests load), shell commands whose status and
output are recorded, and one exchange of datagrams over the simulated VPC.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.vm.guest.vpc import Host, Receiver, Sender, payloads, sh

KVER = os.environ["MCP_KVER"]


def run(cmd: str) -> dict:
    """Run a shell command; its exit status and output (stdout and stderr together)."""
    proc = subprocess.run(
        cmd, shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return {"rc": proc.returncode, "out": proc.stdout}


def in_ns(ns: str, cmd: str) -> dict:
    return run(f"ip netns exec {ns} {cmd}")


def loaded() -> list[str]:
    return sorted(m for m in ("multis", "multic") if Path(f"/sys/module/{m}").exists())


def overlay(target: str, lower: str | None = None) -> None:
    """A writable layer over ``target`` (its upper layer on the /run tmpfs)."""
    work = Path("/run/overlay") / target.strip("/").replace("/", "_")
    (work / "up").mkdir(parents=True)
    (work / "work").mkdir()
    sh(
        f"mount -t overlay overlay -o lowerdir={lower or target},upperdir={work}/up,"
        f"workdir={work}/work {target}"
    )


def slim_module_tree(kver: str = KVER) -> Path:
    """A writable /lib/modules/KVER with only the modules this test uses.

    The packages' %post runs `depmod -a KVER`, which over Debian's 4000
    modules takes minutes under TCG: the tree gets the modules loaded now,
    what multis/multic depend on (nf_defrag_ipv4, nf_defrag_ipv6), and the kernel's
    modules.builtin files.
    """
    full = Path(os.environ["MCP_KIT"]) / "lib" / "modules" / kver
    slim = Path("/run/slim") / kver
    slim.mkdir(parents=True)
    for name in ("modules.builtin", "modules.builtin.modinfo", "modules.order"):
        if (full / name).exists():
            (slim / name).write_bytes((full / name).read_bytes())
    names = {line.split()[0] for line in Path("/proc/modules").read_text().splitlines()}
    paths = {sh(f"modinfo -n {n}").strip() for n in names}
    for dep in ("nf_defrag_ipv4", "nf_defrag_ipv6"):
        for line in sh(f"modprobe --show-depends {dep}").splitlines():
            if line.startswith("insmod "):
                paths.add(line.split()[1])
    for path in sorted(p for p in paths if p.startswith("/")):
        relative = Path(path).relative_to(f"/lib/modules/{kver}")
        (slim / relative).parent.mkdir(parents=True, exist_ok=True)
        (slim / relative).write_bytes(Path(path).read_bytes())
    return slim


def writable_root() -> None:
    """Writable /usr and /lib/modules/KVER for rpm (and dkms).

    /lib is /usr/lib here: the overlay on /usr hides the harness's mounts on
    /lib/modules, so the module tree is mounted again.  RHEL's /etc/init.d
    is a link to rc.d/init.d, where the packages put their scripts (Debian's
    `service` looks in /etc/init.d): the links are made here.
    """
    slim = slim_module_tree()
    overlay("/usr")
    sh("mount -t tmpfs tmpfs /lib/modules")
    Path(f"/lib/modules/{KVER}").mkdir()
    sh(f"mount --bind {slim} /lib/modules/{KVER}")
    sh(f"depmod -a {KVER}")
    Path("/etc/rc.d/init.d").mkdir(parents=True, exist_ok=True)
    for name in ("multis", "multic"):
        link = Path(f"/etc/init.d/{name}")
        if not link.is_symlink():
            link.symlink_to(f"../rc.d/init.d/{name}")


def exchange(sender: Host, receivers: list[Host], group: str, port: int, count: int) -> dict:
    """Send ``count`` datagrams from the sender to group:port; what each receiver got."""
    data = payloads(f"{group}:{port}", count, 100)
    socks = [Receiver(h, group, port) for h in receivers]
    tx = Sender(sender)
    try:
        tx.send(group, port, data)
        out = {}
        for rx in socks:
            got = rx.drain()
            out[rx.host.name] = {
                "count": len(got),
                "intact": sorted(d.payload for d in got) == sorted(data),
                "sources": sorted({d.source[0] for d in got}),
            }
        return out
    finally:
        tx.close()
        for rx in socks:
            rx.close()
