"""The RPMs: built with rpmbuild, then inspected the way rpm shows them.

Builds multi_server, multi_client and multicast-proxy-dkms once per run with
scripts/build-rpms.sh, for the kernel of this repository's VM kit (KVER, or
what scripts/kver.sh says), and asserts their names, file lists, modes,
%config flags, scriptlets and requirements; unpacks the payload and runs the
vendored tools; builds the DKMS sources the way dkms.conf says.  Nothing is
skipped: without rpmbuild or a kernel build tree the tests fail and say what
to install.
"""

from __future__ import annotations

import configparser
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD_RPMS = REPO / "scripts" / "build-rpms.sh"
PYLIB = "/usr/lib/multicast-proxy"
RHEL_KVER = "4.18.0-513.el8.x86_64"  # a name an RPM database knows (kernel-uname-r)


def version() -> str:
    text = (REPO / "pyproject.toml").read_text()
    return re.search(r'^version = "(.+)"', text, re.MULTILINE).group(1)


def kernel() -> tuple[str, Path]:
    """The kit kernel and its build tree, or a failure that says how to get them."""
    kver = (
        os.environ.get("KVER")
        or subprocess.run(
            [str(REPO / "scripts" / "kver.sh")], capture_output=True, text=True, check=False
        ).stdout.strip()
    )
    for kdir in (REPO / "build" / "kit" / kver / "build", Path(f"/lib/modules/{kver}/build")):
        if (kdir / "Makefile").is_file():
            return kver, kdir
    pytest.fail(f"no kernel build tree for {kver!r}: run `make setup`", pytrace=False)


def rpm(*args: str) -> str:
    proc = subprocess.run(["rpm", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@dataclass
class Package:
    path: Path

    def query(self, fmt: str) -> list[str]:
        return rpm("-qp", "--queryformat", fmt, str(self.path)).splitlines()

    def files(self) -> dict[str, tuple[str, str, str]]:
        """{path: (mode, flags, digest)} as rpm lists them."""
        rows = self.query(
            "[%{FILENAMES}\t%{FILEMODES:perms}\t%{FILEFLAGS:fflags}\t%{FILEDIGESTS}\n]"
        )
        out = {}
        for row in rows:
            name, mode, flags, digest = row.split("\t")
            out[name] = (mode, flags, digest)
        return out

    def listed(self) -> set[str]:
        """`rpm -qlp`, without the vendored Python tree."""
        return {p for p in rpm("-qlp", str(self.path)).split() if not p.startswith(PYLIB + "/")}

    def requires(self) -> set[str]:
        return {r.strip() for r in rpm("-qpR", str(self.path)).splitlines()}

    def provides(self) -> set[str]:
        return {r.strip() for r in rpm("-qp", "--provides", str(self.path)).splitlines()}

    def scripts(self) -> dict[str, str]:
        """{"post": body, ...} from `rpm -qp --scripts`."""
        text = rpm("-qp", "--scripts", str(self.path))
        parts = re.split(r"^(\w+) scriptlet \(using /bin/sh\):\n", text, flags=re.MULTILINE)
        return {parts[i].replace("install", ""): parts[i + 1] for i in range(1, len(parts), 2)}

    def extract(self, root: Path) -> Path:
        """The payload under ``root`` (rpm2archive: Debian has no cpio by default)."""
        data = subprocess.run(
            ["rpm2archive", "-"], stdin=self.path.open("rb"), capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(root, filter="data")
        return root


@dataclass
class Built:
    kver: str
    kdir: Path
    server: Package
    client: Package
    dkms: Package


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Built:
    if shutil.which("rpmbuild") is None:
        pytest.fail(
            "rpmbuild is missing: apt-get install rpm (Debian) or dnf install rpm-build",
            pytrace=False,
        )
    kver, kdir = kernel()
    top = tmp_path_factory.mktemp("rpm")
    proc = subprocess.run(
        [str(BUILD_RPMS), "--kver", kver, "--kdir", str(kdir), "--topdir", str(top / "work"),
         "--out", str(top / "out")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        pytest.fail(f"build-rpms.sh failed:\n{proc.stdout}\n{proc.stderr}", pytrace=False)
    v = version()
    out = top / "out"
    return Built(
        kver,
        kdir,
        Package(out / f"multi_server-{v}-1.x86_64.rpm"),
        Package(out / f"multi_client-{v}-1.x86_64.rpm"),
        Package(out / f"multicast-proxy-dkms-{v}-1.noarch.rpm"),
    )


def test_the_packages_have_the_guides_names(built):
    for package in (built.server, built.client, built.dkms):
        assert package.path.is_file(), package.path
    assert built.server.query("%{NAME} %{ARCH}") == ["multi_server x86_64"]
    assert built.dkms.query("%{NAME} %{ARCH}") == ["multicast-proxy-dkms noarch"]


@pytest.mark.parametrize(("side", "svc"), [("server", "multis"), ("client", "multic")])
def test_file_lists(built, side, svc):
    package = getattr(built, side)
    name = f"multi_{side}"
    assert package.listed() == {
        f"/lib/modules/{built.kver}/extra/{svc}.ko",
        f"/usr/sbin/{svc}_admin",
        "/usr/sbin/multicast-proxy-service",
        PYLIB,
        f"/etc/rc.d/init.d/{svc}",
        f"/usr/lib/systemd/system/{svc}.service",
        f"/etc/modprobe.d/{svc}.conf",
        "/etc/multicast-proxy",
        f"/usr/share/doc/{name}",
        *(f"/usr/share/doc/{name}/{doc.name}" for doc in docs()),
    }
    files = package.files()
    # the Python package and its vendored dependencies, without byte code
    for module in (
        "__init__",
        "service",
        "config/__init__",
        "config/sync",
        "netlink",
        f"cli_{side}",
    ):
        assert f"{PYLIB}/multicast_admin/{module}.py" in files
    assert f"{PYLIB}/pyroute2/__init__.py" in files
    assert f"{PYLIB}/click/__init__.py" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]
    # modes and flags: executables, %config(noreplace), the state directory
    assert files[f"/usr/sbin/{svc}_admin"][0] == "-rwxr-xr-x"
    assert files[f"/etc/rc.d/init.d/{svc}"][0] == "-rwxr-xr-x"
    assert files[f"/lib/modules/{built.kver}/extra/{svc}.ko"][0] == "-rw-r--r--"
    assert files[f"/etc/modprobe.d/{svc}.conf"][1] == "cn"  # %config(noreplace)
    assert files["/etc/multicast-proxy"][0].startswith("d")
    assert files["/etc/multicast-proxy"][1] == "n"
    assert rpm("-qpc", str(package.path)).split() == [f"/etc/modprobe.d/{svc}.conf"]


def docs() -> list[Path]:
    names = ("README.md", "docs/usage.md", "docs/packaging.md", "docs/kernels.md")
    return [REPO / n for n in names if (REPO / n).is_file()]


def test_server_and_client_install_together(built, tmp_path):
    """Their shared files (tools, vendored libraries) are identical: no rpm conflict."""
    server, client = built.server.files(), built.client.files()
    shared = set(server) & set(client)
    assert "/usr/sbin/multicast-proxy-service" in shared
    assert [f for f in shared if server[f] != client[f]] == []
    proc = subprocess.run(
        ["rpm", "-i", "--test", "--nodeps", "--root", str(tmp_path), "--dbpath",
         str(tmp_path / "rpmdb"), str(built.server.path), str(built.client.path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize(("side", "svc"), [("server", "multis"), ("client", "multic")])
def test_requirements(built, side, svc):
    package = getattr(built, side)
    assert {r for r in package.requires() if not r.startswith("rpmlib(")} == {
        "/bin/sh",
        "python3 >= 3.9",
        "/usr/sbin/modprobe",
        "/usr/sbin/depmod",
    }
    assert f"{svc}-kmod = {version()}-1" in package.provides()
    # nothing generated from the build host's Python (vendored wheels stay private)
    assert not [p for p in package.provides() if "python" in p]


def test_dkms_requirements(built):
    assert {r for r in built.dkms.requires() if not r.startswith("rpmlib(")} == {
        "/bin/sh",
        "dkms >= 2.2.0.3",
        "gcc",
        "make",
        "kernel-devel",
    }
    v = version()
    assert {f"multis-kmod = {v}-1", f"multic-kmod = {v}-1"} <= built.dkms.provides()


@pytest.mark.parametrize(("side", "svc"), [("server", "multis"), ("client", "multic")])
def test_scriptlets(built, side, svc):
    scripts = getattr(built, side).scripts()
    assert sorted(scripts) == ["post", "postun", "preun"]
    post, preun, postun = scripts["post"], scripts["preun"], scripts["postun"]
    # the module: depmod for its kernel after install and after erase
    assert f"/usr/sbin/depmod -a {built.kver}" in post
    assert f"/usr/sbin/depmod -a {built.kver}" in postun
    # systemd: preset on first install, disable --now on erase, try-restart on upgrade
    assert f"systemctl --no-reload preset {svc}.service" in post
    assert "if [ $1 -eq 1 ]" in post
    assert f"systemctl --no-reload disable --now {svc}.service" in preun
    assert f"systemctl try-restart {svc}.service" in postun
    # SysV fallback when systemd is not running
    assert f"/sbin/chkconfig --add {svc}" in post
    assert f"/etc/rc.d/init.d/{svc} stop" in preun
    assert f"/sbin/chkconfig --del {svc}" in preun
    assert f"/etc/rc.d/init.d/{svc} try-restart" in postun
    # the byte code Python leaves next to the tools goes with the last package
    assert f"[ ! -e {PYLIB}/multicast_admin/__init__.py ]" in postun
    assert f"rm -rf {PYLIB}" in postun
    for body in scripts.values():
        check = subprocess.run(["sh", "-n"], input=body, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr


def test_dkms_scriptlets(built):
    scripts = built.dkms.scripts()
    v = version()
    assert f"dkms add -m multicast-proxy -v {v} --rpm_safe_upgrade" in scripts["post"]
    assert f"dkms install -m multicast-proxy -v {v}" in scripts["post"]
    assert f"dkms remove -m multicast-proxy -v {v} --all --rpm_safe_upgrade" in scripts["preun"]


def test_kernel_requires_for_an_rpm_kernel(built, tmp_path):
    """For a kernel an RPM database knows (RHEL, Alinux), the package requires it."""
    proc = subprocess.run(
        [str(BUILD_RPMS), "--kver", RHEL_KVER, "--kdir", str(built.kdir), "--topdir",
         str(tmp_path / "work"), "--out", str(tmp_path / "out"), "server"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    package = Package(tmp_path / "out" / f"multi_server-{version()}-1.x86_64.rpm")
    assert f"kernel-uname-r = {RHEL_KVER}" in package.requires()
    assert f"/lib/modules/{RHEL_KVER}/extra/multis.ko" in package.listed()
    assert f"/usr/sbin/depmod -a {RHEL_KVER}" in package.scripts()["post"]


def test_a_missing_kernel_tree_is_a_clear_error(tmp_path):
    proc = subprocess.run(
        [str(BUILD_RPMS), "--kver", "9.9.9-nowhere", "--topdir", str(tmp_path), "server"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("build-rpms: no build tree for kernel 9.9.9-nowhere")
    assert "install kernel-devel-9.9.9-nowhere" in proc.stderr


def test_the_spec_itself_refuses_a_missing_kernel_tree(built, tmp_path):
    """rpmbuild run by hand (not through build-rpms.sh) stops in %prep with the same advice."""
    proc = subprocess.run(
        ["rpmbuild", "-bp", "--nodeps", "--define", f"_topdir {tmp_path}", "--define",
         "pkgversion 1", "--define", "kver 9.9.9-nowhere",
         str(REPO / "packaging" / "rpm" / "multi.spec")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "error: no build tree for kernel 9.9.9-nowhere at /lib/modules/9.9.9-nowhere/build" in (
        proc.stderr
    )
    assert "kernel-devel-9.9.9-nowhere" in proc.stderr


def test_the_vendored_tools_run_with_their_own_libraries(built, tmp_path):
    """The payload's launchers, on the system python3, import only the vendored copies."""
    root = built.server.extract(tmp_path)
    launcher = (root / "usr/sbin/multis_admin").read_text()
    assert launcher.startswith("#!/usr/bin/python3 -I\n")
    assert f'sys.path.insert(0, "{PYLIB}")' in launcher
    python = shutil.which("python3", path="/usr/bin") or sys.executable
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); import click, pyroute2, multicast_admin;"
        "print(click.__version__, pyroute2.__file__.startswith(sys.argv[1]),"
        " multicast_admin.__file__.startswith(sys.argv[1]))"
    )
    lib = str(root / PYLIB.lstrip("/"))
    out = subprocess.run(
        [python, "-I", "-c", probe, lib], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[1:] == ["True", "True"]
    assert out[0].startswith("8.1.")
    for tool, module in (("multis_admin", "cli_server"), ("multicast-proxy-service", "service")):
        run = (
            f"import sys; sys.path.insert(0, {lib!r}); sys.argv[0] = {tool!r};"
            f"from multicast_admin.{module} import main; sys.exit(main())"
        )
        proc = subprocess.run(
            [python, "-I", "-c", run, "--help"], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, proc.stderr
        assert "usage" in proc.stdout.lower()


def test_the_dkms_sources_build_as_dkms_conf_says(built, tmp_path):
    root = built.dkms.extract(tmp_path / "root")
    src = root / f"usr/src/multicast-proxy-{version()}"
    assert not [p for p in src.rglob("*") if p.suffix in (".o", ".ko", ".cmd")]
    conf = (src / "dkms.conf").read_text()
    assert f'PACKAGE_VERSION="{version()}"' in conf
    # what dkms does: copy the tree, run MAKE[0] with kernel_source_dir set
    build = tmp_path / "dkms-build"
    shutil.copytree(src, build)
    script = (
        f'kernel_source_dir={built.kdir}; . ./dkms.conf; eval "$MAKE"'
        " CONFIG_DEBUG_INFO_BTF_MODULES= && for i in 0 1; do"
        ' echo "${BUILT_MODULE_LOCATION[$i]}${BUILT_MODULE_NAME[$i]}.ko"'
        ' "${DEST_MODULE_LOCATION[$i]}"; done'
    )
    proc = subprocess.run(["bash", "-c", script], cwd=build, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    built_modules = proc.stdout.splitlines()[-2:]
    assert built_modules == [
        "kernel/multis/multis.ko /updates/dkms",
        "kernel/multic/multic.ko /updates/dkms",
    ]
    for line in built_modules:
        assert (build / line.split()[0]).is_file()


@pytest.mark.parametrize("svc", ["multis", "multic"])
def test_init_scripts_have_chkconfig_and_lsb_headers(svc):
    text = (REPO / "packaging" / "init.d" / svc).read_text()
    assert "# chkconfig: 2345 09 91" in text
    lsb = text[text.index("### BEGIN INIT INFO") : text.index("### END INIT INFO")]
    for line in (f"# Provides:          {svc}", "# Default-Start:     2 3 4 5",
                 "# Default-Stop:      0 1 6", "# Required-Start:    $local_fs"):  # fmt: skip
        assert line in lsb
    assert f"prog={svc}" in text
    assert subprocess.run(["sh", "-n", str(REPO / "packaging" / "init.d" / svc)]).returncode == 0
    # LSB exit codes: 2 for an unknown action, 5 when the program is missing
    # (this host has no /usr/sbin/multicast-proxy-service)
    script = str(REPO / "packaging" / "init.d" / svc)
    proc = subprocess.run(["sh", script, "bogus"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: ")
    if not Path("/usr/sbin/multicast-proxy-service").exists():
        proc = subprocess.run(["sh", script, "start"], capture_output=True, text=True)
        assert proc.returncode == 5
        assert proc.stderr == f"{svc}: /usr/sbin/multicast-proxy-service is not installed\n"


@pytest.mark.parametrize("svc", ["multis", "multic"])
def test_systemd_units(svc):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment]
    unit.read(REPO / "packaging" / "systemd" / f"{svc}.service")
    assert dict(unit["Service"]) == {
        "Type": "oneshot",
        "RemainAfterExit": "yes",
        "ExecStart": f"/usr/sbin/multicast-proxy-service {svc} start",
        "ExecStop": f"/usr/sbin/multicast-proxy-service {svc} stop",
    }
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    assert unit["Unit"]["Before"] == "network.target"


@pytest.mark.parametrize(
    ("kver", "builds"),
    [
        ("3.10.0-1160.el7.x86_64", False),
        ("4.18.0-513.el8.x86_64", False),
        ("4.19.91-27.al7.x86_64", False),
        ("5.4.0-150-generic", False),
        ("5.10.0-46-amd64", True),
        ("5.10.134-16.al8.x86_64", True),
        ("5.14.0-362.el9.x86_64", True),
        ("6.1.0-56-amd64", True),
        ("6.12.117+deb12-amd64", True),
        ("10.1.0", True),
    ],
)
def test_dkms_refuses_kernels_older_than_5_10(kver, builds):
    conf = REPO / "packaging" / "dkms" / "dkms.conf.in"
    script = f". {conf}; [[ {kver} =~ $BUILD_EXCLUSIVE_KERNEL ]]"
    assert (subprocess.run(["bash", "-c", script]).returncode == 0) == builds
