"""Guest side of tests/vm/test_dkms.py: the real dkms, with Debian's and a RHEL-like os-release.

Arguments: the multicast-proxy-tools, multicast-proxy-dkms and multi_server
RPM files (built on the host for this kernel), and a second kernel's name
and build tree (a kit of `make kernels`).

dkms decides where modules go from /etc/os-release: Debian and Ubuntu get
/lib/modules/KVER/updates/dkms, RHEL-like systems /lib/modules/KVER/extra,
whatever dkms.conf says, and on those it first moves any same-named module
it finds in the kernel's tree into its own archive.  Each step records which
file each package owns (rpm -qf), which module modprobe would load and
whether it is the one dkms built, and what rpm -V says.  The host asserts.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from tests.vm.guest import installed
from tests.vm.guest.facts import Facts
from tests.vm.guest.installed import KVER, in_ns, loaded, run, writable_root
from tests.vm.guest.vpc import build_vpc, sh

TOOLS_RPM, DKMS_RPM, SERVER_RPM, KVER2, KDIR2 = sys.argv[1:6]
VERSION = run(f"rpm -qp --queryformat '%{{VERSION}}' {DKMS_RPM}")["out"].strip()
DKMS_TREE = Path(f"/var/lib/dkms/multicast-proxy/{VERSION}")
G1 = "239.1.1.1"
PORT = 5000
COUNT = 10

facts = Facts()


def digest(path: str) -> str | None:
    p = Path(path)
    return hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else None


def owner(path: str) -> str:
    return run(f"rpm -qf {path}")["out"].strip()


def where(kver: str = KVER) -> dict:
    """Where multis is, who owns it, and whether it is dkms's build for ``kver``."""
    found = run(f"modinfo -k {kver} -n multis")
    resolved = found["out"].strip() if found["rc"] == 0 else ""  # "": no such module
    built = DKMS_TREE / kver / "x86_64" / "module" / "multis.ko"
    return {
        "modinfo": resolved,
        "owner": owner(resolved) if resolved.startswith("/") else None,
        "is_dkms_build": digest(resolved) is not None and digest(resolved) == digest(str(built)),
        "vermagic": run(f"modinfo -k {kver} -F vermagic multis")["out"].split()[:1],
        "extra": Path(f"/lib/modules/{kver}/extra/multis.ko").exists(),
        "updates": Path(f"/lib/modules/{kver}/updates/dkms/multis.ko").exists(),
    }


def os_release(text: str | None) -> None:
    """Put a RHEL-like os-release in place (text), or the machine's own back (None)."""
    path = Path("/etc/os-release")
    if path.is_symlink() or path.exists():
        path.unlink()
    if text is None:
        path.symlink_to("../usr/lib/os-release")
    else:
        path.write_text(text)


def smoke() -> dict:
    """The data path with the module dkms built: service start, configure, send, receive."""
    for state in Path("/etc/multicast-proxy").glob("*.json"):
        state.unlink()
    out = {
        "multis": in_ns("sender", "service multis start"),
        "multic": in_ns("recv1", "service multic start"),
        "configure": [
            in_ns("sender", f"multis_admin -A -m {G1} -j 10.0.0.11"),
            in_ns("recv1", f"multic_admin -A -i 10.0.0.1 -p {PORT} -m {G1}"),
        ],
    }
    out["loaded"] = loaded()
    out["received"] = installed.exchange(vpc.sender, [recv1], G1, PORT, COUNT)
    out["stop"] = [
        in_ns("sender", "service multis stop"),
        in_ns("recv1", "service multic stop"),
    ]
    return out


def compiler_cache() -> None:
    """ccache in front of gcc, for dkms's builds and for those rpm's scriptlets start.

    The four builds below are two kernels' worth: the first boot's kernel
    three times (Debian's os-release, then the RHEL-like one forced beside
    the module package and alone), the second kernel once.  Under TCG each
    takes minutes; the repeated ones are the same sources, flags and build
    directory, so ccache answers their compiler calls and every other part
    of the build (kbuild, modpost, BTF, the link, dkms's install) still runs.
    rpm gives scriptlets a PATH of its own (%_install_script_path), so the
    cache goes in front of that one too.
    """
    Path("/etc/ccache.conf").write_text("cache_dir = /run/ccache\n")
    Path("/etc/rpm").mkdir(exist_ok=True)
    Path("/etc/rpm/macros.ccache").write_text(
        "%_install_script_path /usr/lib/ccache:/sbin:/bin:/usr/sbin:/usr/bin\n"
    )
    os.environ["PATH"] = f"/usr/lib/ccache:{os.environ['PATH']}"


vpc = build_vpc(receivers=1)
(recv1,) = vpc.receivers
writable_root()
compiler_cache()
# the headers of the running kernel (Debian's, installed on the host) and of
# the second kernel (its kit), where dkms looks for them
sh(f"ln -s /usr/src/linux-headers-{KVER} /lib/modules/{KVER}/build")
Path(f"/lib/modules/{KVER2}").mkdir()  # /lib/modules is a tmpfs here
sh(f"ln -s {KDIR2} /lib/modules/{KVER2}/build")
sh("rpm -Uvh --nodeps " + TOOLS_RPM)

with facts.step("debian") as f:
    # Debian's os-release (the machine's own): dkms installs into updates/dkms
    f["install"] = run(f"rpm -Uvh --nodeps {DKMS_RPM}")
    f["status"] = run("dkms status")["out"]
    f["where"] = where()
    f["smoke"] = smoke()
    f["verify"] = run("rpm -V --nodeps multicast-proxy-dkms multicast-proxy-tools")
    # a second kernel's headers: dkms autoinstall builds for that one too
    f["autoinstall"] = run(f"dkms autoinstall -k {KVER2}")
    f["second"] = where(KVER2)
    # for the second boot, in that kernel
    second = Path(os.environ["MCP_RESULTS"]) / "second"
    second.mkdir()
    for m in ("multis", "multic"):
        built = DKMS_TREE / KVER2 / "x86_64" / "module" / f"{m}.ko"
        if built.is_file():  # else the host says that nothing was built
            (second / f"{m}.ko").write_bytes(built.read_bytes())
    f["erase"] = run("rpm -e multicast-proxy-dkms")
    f["after_erase"] = where()

with facts.step("rhel") as f:
    os_release('NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.4"\n')
    # the module package first: it owns extra/multis.ko
    f["server"] = run(f"rpm -Uvh --nodeps {SERVER_RPM}")
    f["server_where"] = where()
    # rpm refuses the DKMS package next to it (conflict), and nothing is touched
    f["refused"] = run(f"rpm -Uvh {DKMS_RPM}")
    f["server_verify"] = run("rpm -V --nodeps multi_server")
    # what the conflict prevents: forced in anyway, dkms moves the module
    # package's file into its archive (rpm -V: missing)
    f["forced"] = run(f"rpm -Uvh --nodeps {DKMS_RPM}")
    f["forced_where"] = where()
    f["forced_verify"] = run("rpm -V --nodeps multi_server")
    f["archived"] = sorted(str(p) for p in DKMS_TREE.parent.rglob("original_module/**/*.ko"))
    run("rpm -e --nodeps multicast-proxy-dkms multi_server")
    # dkms's remove puts the archived file back where dkms.conf says
    # (updates/dkms), not where it was: an orphan no package owns, which
    # depmod prefers to any module installed later.  Recorded, then removed
    # by hand, as an operator would have to.
    f["forced_leftover"] = where()
    run(f"rm -f /lib/modules/{KVER}/updates/dkms/multi[sc].ko && depmod -a {KVER}")
    f["cleaned"] = where()
    # the supported way on such a host: the DKMS package alone
    f["install"] = run(f"rpm -Uvh --nodeps {DKMS_RPM}")
    f["where"] = where()
    f["smoke"] = smoke()
    f["erase"] = run("rpm -e multicast-proxy-dkms")
    f["after_erase"] = where()
    os_release(None)

facts["ccache"] = run("ccache --show-stats")["out"]
print("guest: done", flush=True)
