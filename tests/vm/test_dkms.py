"""The DKMS package with the real dkms, in a real kernel (one VM boot).

Host side: builds multicast-proxy-tools, multicast-proxy-dkms and
multi_server for the VM's kernel, prepares a second kernel's kit (the 6.12
series of `make kernels`), boots once, and asserts on what the guest
(tests/vm/guest/dkms.py) recorded, for Debian's os-release and for a
RHEL-like one: where dkms installs the modules, which package owns which
file (rpm -qf), that modprobe loads dkms's build and multicast flows with
it, that `dkms autoinstall` builds for the second kernel too (and, in a
second boot of that kernel, that those modules load and carry multicast),
and that the
DKMS package and a module package exclude each other, because on a
RHEL-like host dkms takes over the module package's file.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.vm import harness
from tests.vm.conftest import GuestFacts, boot_and_run

GUEST = "tests/vm/guest/dkms.py"
GUEST_SECOND = "tests/vm/guest/dkms_second.py"
COUNT = 10
SECOND_SERIES = "6.12"


@pytest.fixture(scope="module")
def kver() -> str:
    return harness.default_kver()


@pytest.fixture(scope="module")
def kver2() -> str:
    scripts = harness.REPO / "scripts"
    line = subprocess.run(
        [str(scripts / "kernels.sh"), "list", SECOND_SERIES],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    assert line[0] == SECOND_SERIES
    subprocess.run([str(scripts / "setup-kit.sh"), line[1]], check=True, capture_output=True)
    return line[1]


@pytest.fixture(scope="module")
def rpms(kver: str) -> list[Path]:
    (harness.BUILD / "vm" / "rpms").mkdir(parents=True, exist_ok=True)
    out = Path(tempfile.mkdtemp(prefix=f"dkms-{kver}-", dir=harness.BUILD / "vm" / "rpms"))
    proc = subprocess.run(
        [str(harness.REPO / "scripts" / "build-rpms.sh"), "--kver", kver, "--topdir",
         str(out / "rpmbuild"), "--out", str(out), "tools", "dkms", "server"],
        capture_output=True, text=True,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"build-rpms.sh failed:\n{proc.stdout}{proc.stderr}", pytrace=False)
    shutil.rmtree(out / "rpmbuild")
    found = {p.name.split("-2")[0]: p for p in out.glob("*.rpm")}
    return [found["multicast-proxy-tools"], found["multicast-proxy-dkms"], found["multi_server"]]


@pytest.fixture(scope="module")
def facts(rpms: list[Path], kver: str, kver2: str) -> GuestFacts:
    kdir2 = harness.BUILD / "kit" / kver2 / "build"
    # four module builds under TCG (two kernels), each several minutes, the
    # three of the first kernel's through ccache (the guest's
    # compiler_cache()): dkms runs make -j2, so a host thread per vCPU,
    # except on the 6.12 series,
    # whose code patching multi-threaded TCG mis-emulates (harness.run)
    thread = "single" if kver.startswith("6.12.") else "multi"
    args = (*map(str, rpms), kver2, str(kdir2))
    return boot_and_run(GUEST, *args, timeout=2700, tcg_thread=thread)


@pytest.fixture(scope="module")
def second(facts: GuestFacts, kver2: str) -> GuestFacts:
    """A second boot, in the second kernel, with the modules dkms built for it."""
    modules = facts.result.results_dir / "second"
    if not (modules / "multis.ko").is_file():
        pytest.fail("the first boot left no modules built for the second kernel", pytrace=False)
    return boot_and_run(GUEST_SECOND, str(modules), kver=kver2)


def ok(result: dict) -> str:
    assert result["rc"] == 0, result["out"]
    return result["out"]


def not_owned(where: dict) -> bool:
    return where["owner"].endswith("is not owned by any package")


def delivered(smoke: dict) -> None:
    ok(smoke["multis"])
    ok(smoke["multic"])
    for result in (*smoke["configure"], *smoke["stop"]):
        ok(result)
    assert smoke["loaded"] == ["multic", "multis"]
    assert smoke["received"]["recv1"] == {"count": COUNT, "intact": True, "sources": ["10.0.0.1"]}


def test_debian_dkms_installs_into_updates_and_that_module_is_loaded(facts, kver):
    step = facts["debian"]
    ok(step["install"])
    where = step["where"]
    assert where["modinfo"] == f"/lib/modules/{kver}/updates/dkms/multis.ko"
    assert not_owned(where)  # dkms's file, not a package's
    assert where["is_dkms_build"]
    assert where["vermagic"] == [kver]
    assert not where["extra"]
    delivered(step["smoke"])
    assert step["verify"] == {"rc": 0, "out": ""}


def test_dkms_autoinstall_builds_for_a_second_kernel(facts, kver2):
    step = facts["debian"]
    ok(step["autoinstall"])
    second = step["second"]
    assert second["modinfo"] == f"/lib/modules/{kver2}/updates/dkms/multis.ko"
    assert second["is_dkms_build"]
    assert second["vermagic"] == [kver2]


def test_the_second_kernels_modules_load_there_and_carry_multicast(second, kver2):
    assert second["load"]["kernel"] == kver2
    assert second["load"]["vermagic"] == {"multis": [kver2], "multic": [kver2]}
    assert second["load"]["loaded"] == ["multic", "multis"]
    assert second["smoke"]["received"]["recv1"] == {
        "count": COUNT,
        "intact": True,
        "sources": ["10.0.0.1"],
    }
    assert second["smoke"]["loaded"] == []
    second.assert_clean_end()


def test_erasing_the_dkms_package_removes_its_modules(facts):
    for name in ("debian", "rhel"):
        step = facts[name]
        ok(step["erase"])
        assert step["after_erase"]["modinfo"] == ""


def test_rhel_like_dkms_installs_into_extra_and_that_module_is_loaded(facts, kver):
    step = facts["rhel"]
    ok(step["install"])
    where = step["where"]
    assert where["modinfo"] == f"/lib/modules/{kver}/extra/multis.ko"  # dkms ignores dkms.conf
    assert not_owned(where)
    assert where["is_dkms_build"]
    assert not where["updates"]
    delivered(step["smoke"])


def test_the_module_package_owns_extra_and_dkms_is_refused_beside_it(facts, kver):
    step = facts["rhel"]
    ok(step["server"])
    where = step["server_where"]
    assert where["modinfo"] == f"/lib/modules/{kver}/extra/multis.ko"
    assert where["owner"].startswith("multi_server-")
    assert not where["is_dkms_build"]
    assert step["refused"]["rc"] != 0
    assert "multicast-proxy-dkms-" in step["refused"]["out"]
    assert "multicast-proxy-dkms conflicts with (installed) multi_server-" in step["refused"]["out"]
    assert step["server_verify"] == {"rc": 0, "out": ""}  # its file untouched


def test_what_the_conflict_prevents(facts, kver):
    """Forced in anyway, dkms archives the module package's file and puts its own there."""
    step = facts["rhel"]
    ok(step["forced"])
    where = step["forced_where"]
    assert where["modinfo"] == f"/lib/modules/{kver}/extra/multis.ko"
    assert where["is_dkms_build"]
    assert where["owner"].startswith("multi_server-")  # rpm still claims the path
    assert step["forced_verify"]["rc"] != 0
    assert f"/lib/modules/{kver}/extra/multis.ko" in step["forced_verify"]["out"]
    assert any(p.endswith("/multis.ko") for p in step["archived"])
    # and both erased: dkms puts the package's file back under updates/dkms,
    # where nothing owns it and it shadows whatever is installed later
    leftover = step["forced_leftover"]
    assert leftover["modinfo"] == f"/lib/modules/{kver}/updates/dkms/multis.ko"
    assert not_owned(leftover)
    assert step["cleaned"]["modinfo"] == ""


def test_the_kernel_log_is_clean(facts):
    facts.assert_clean_end()
