"""The RPMs: built with rpmbuild, then inspected the way rpm shows them.

Builds multi_server, multi_client, multicast-proxy-tools and
multicast-proxy-dkms once per run with
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
import itertools
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
        # the "data" filter where this Python has it (Debian 12's 3.11.2 has not)
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(root, **safe)
        return root


@dataclass
class Built:
    kver: str
    kdir: Path
    server: Package
    client: Package
    tools: Package
    dkms: Package

    def all(self) -> list[Package]:
        return [self.server, self.client, self.tools, self.dkms]


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
        Package(out / f"multicast-proxy-tools-{v}-1.noarch.rpm"),
        Package(out / f"multicast-proxy-dkms-{v}-1.noarch.rpm"),
    )


def test_the_packages_have_the_guides_names(built):
    for package in built.all():
        assert package.path.is_file(), package.path
    assert built.server.query("%{NAME} %{ARCH}") == ["multi_server x86_64"]
    assert built.client.query("%{NAME} %{ARCH}") == ["multi_client x86_64"]
    assert built.tools.query("%{NAME} %{ARCH}") == ["multicast-proxy-tools noarch"]
    assert built.dkms.query("%{NAME} %{ARCH}") == ["multicast-proxy-dkms noarch"]


@pytest.mark.parametrize(("side", "svc"), [("server", "multis"), ("client", "multic")])
def test_a_module_package_holds_its_module_only(built, side, svc):
    package = getattr(built, side)
    assert package.listed() == {f"/lib/modules/{built.kver}/extra/{svc}.ko"}
    assert package.files()[f"/lib/modules/{built.kver}/extra/{svc}.ko"][0] == "-rw-r--r--"


def test_the_tools_package_file_list(built):
    assert built.tools.listed() == {
        PYLIB,
        *(f"/usr/sbin/{tool}" for tool in TOOLS),
        *(f"/etc/rc.d/init.d/{svc}" for svc in SERVICES),
        *(f"/usr/lib/systemd/system/{svc}.service" for svc in SERVICES),
        *(f"/etc/modprobe.d/{svc}.conf" for svc in SERVICES),
        "/etc/multicast-proxy",
        *(f"/etc/multicast-proxy/{svc}.json" for svc in SERVICES),
        f"/etc/rc.d/init.d/{AGENT}",
        f"/usr/lib/systemd/system/{AGENT}.service",
        "/etc/multicast-proxy/agent.conf",
        "/usr/share/doc/multicast-proxy-tools",
        *(f"/usr/share/doc/multicast-proxy-tools/{doc.name}" for doc in docs()),
    }
    files = built.tools.files()
    for module in (
        "__init__",
        "service",
        "config/__init__",
        "config/sync",
        "netlink",
        "cli_server",
        "cli_client",
    ):
        assert f"{PYLIB}/multicast_admin/{module}.py" in files
    assert f"{PYLIB}/pyroute2/__init__.py" in files
    assert f"{PYLIB}/click/__init__.py" in files
    assert f"{PYLIB}/prometheus_client/__init__.py" in files
    # the agent's etcd client and everything it imports (VENDORED_FOR_ETCD)
    for module in VENDORED_FOR_ETCD:
        assert f"{PYLIB}/{module}/__init__.py" in files, module
    assert f"{PYLIB}/multicast_admin/fleet/agent.py" in files
    # wrapt without its C extension: nothing compiled in a noarch package
    assert [f for f in files if f.endswith((".so", ".c"))] == []
    # modes and flags: executables, %config(noreplace), the state directory,
    # the state files %ghost (owned, never shipped: empty digest)
    for svc in SERVICES:
        assert files[f"/etc/rc.d/init.d/{svc}"][0] == "-rwxr-xr-x"
        assert files[f"/etc/modprobe.d/{svc}.conf"][1] == "cn"
        mode, flags, digest = files[f"/etc/multicast-proxy/{svc}.json"]
        assert (mode, sorted(flags), digest) == ("-rw-r--r--", ["c", "g", "n"], "")
    assert files[f"{PYLIB}/launch"][0] == "-rwxr-xr-x"
    for tool in TOOLS:
        assert files[f"/usr/sbin/{tool}"][0].startswith("l")
    assert files["/etc/multicast-proxy"][0].startswith("d")
    assert files[f"/etc/rc.d/init.d/{AGENT}"][0] == "-rwxr-xr-x"
    assert files[f"/usr/lib/systemd/system/{AGENT}.service"][0] == "-rw-r--r--"
    # agent.conf: shipped (a commented example), kept when changed, root only
    # (it may hold etcd's password)
    mode, flags, digest = files["/etc/multicast-proxy/agent.conf"]
    assert (mode, sorted(flags), bool(digest)) == ("-rw-------", ["c", "n"], True)
    assert rpm("-qpc", str(built.tools.path)).split() == [
        "/etc/modprobe.d/multic.conf",
        "/etc/modprobe.d/multis.conf",
        "/etc/multicast-proxy/agent.conf",
        "/etc/multicast-proxy/multic.json",
        "/etc/multicast-proxy/multis.json",
    ]


def test_the_tools_are_byte_compiled_at_build_time(built):
    """Byte code for the build host's Python ships in the package: nothing is left to clean."""
    tag = sys.implementation.cache_tag
    files = built.tools.files()
    sources = [f for f in files if f.endswith(".py") and "/bin/" not in f]
    compiled = {f for f in files if f.endswith(f".{tag}.pyc")}
    missing = [
        f for f in sources
        if f"{Path(f).parent}/__pycache__/{Path(f).stem}.{tag}.pyc" not in compiled
    ]  # fmt: skip
    assert sources
    assert missing == []


SERVICES = ("multic", "multis")
AGENT = "multicast-proxy-agent"
#: what `import etcd3gw` brings, each vendored (packaging/rpm/vendor-*.txt)
VENDORED_FOR_ETCD = (
    "etcd3gw", "futurist", "debtcollector", "wrapt", "pbr", "requests", "urllib3", "idna",
    "certifi", "charset_normalizer",
)  # fmt: skip
TOOLS = ("multis_admin", "multic_admin", "multicast-proxy-service", "multicast-proxy")


def docs() -> list[Path]:
    names = ("README.md", "docs/usage.md", "docs/packaging.md", "docs/kernels.md")
    return [REPO / n for n in names if (REPO / n).is_file()]


def test_no_file_is_shipped_by_two_packages(built):
    listed = {p.path.name: set(p.files()) for p in built.all()}
    for a, b in itertools.combinations(listed, 2):
        assert listed[a] & listed[b] == set(), (a, b)


def rpm_test_install(tmp_path: Path, *packages: Package) -> str:
    """What `rpm -i --test` into an empty database says about these packages."""
    proc = subprocess.run(
        ["rpm", "-i", "--test", "--root", str(tmp_path), "--dbpath", str(tmp_path / "rpmdb"),
         *(str(p.path) for p in packages)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return proc.stderr


def test_server_client_and_tools_install_together(built, tmp_path):
    said = rpm_test_install(tmp_path, built.server, built.client, built.tools)
    # an empty database lacks /bin/sh and Python, but nothing conflicts and
    # the tools the modules require are there
    assert "conflicts" not in said
    assert "multicast-proxy-tools = " not in said
    assert "/usr/sbin/modprobe is needed by multicast-proxy-tools" in said


@pytest.mark.parametrize("side", ["server", "client"])
def test_dkms_and_a_module_package_exclude_each_other(built, tmp_path, side):
    said = rpm_test_install(tmp_path, getattr(built, side), built.tools, built.dkms)
    assert f"multicast-proxy-dkms conflicts with multi_{side}" in said


@pytest.mark.parametrize(("side", "svc"), [("server", "multis"), ("client", "multic")])
def test_requirements(built, side, svc):
    package = getattr(built, side)
    assert {r for r in package.requires() if not r.startswith("rpmlib(")} == {
        "/bin/sh",
        f"multicast-proxy-tools = {version()}-1",
        "/usr/sbin/depmod",
    }
    assert f"{svc}-kmod = {version()}-1" in package.provides()
    assert package.query("[%{CONFLICTS}\n]") == ["multicast-proxy-dkms"]


def test_tools_requirements(built):
    pythons = " or ".join(f"/usr/bin/python3.{minor}" for minor in range(9, 15))
    assert {r for r in built.tools.requires() if not r.startswith("rpmlib(")} == {
        "/bin/sh",
        f"({pythons})",
        "/usr/sbin/modprobe",
    }
    # nothing generated from the build host's Python (vendored wheels stay private)
    assert not [p for p in built.tools.provides() if "python" in p]


def test_dkms_requirements(built):
    v = version()
    assert {r for r in built.dkms.requires() if not r.startswith("rpmlib(")} == {
        "/bin/sh",
        f"multicast-proxy-tools = {v}-1",
        "dkms >= 2.2.0.3",
        "gcc",
        "make",
        "kernel-devel",
    }
    assert {f"multis-kmod = {v}-1", f"multic-kmod = {v}-1"} <= built.dkms.provides()
    assert sorted(built.dkms.query("[%{CONFLICTS}\n]")) == ["multi_client", "multi_server"]


@pytest.mark.parametrize(("side", "svc"), [("server", "multis"), ("client", "multic")])
def test_scriptlets(built, side, svc):
    scripts = getattr(built, side).scripts()
    assert sorted(scripts) == ["post", "postun", "preun"]
    post, postun = scripts["post"], scripts["postun"]
    # the module: depmod for its kernel after install and after erase
    assert f"/usr/sbin/depmod -a {built.kver}" in post
    assert f"/usr/sbin/depmod -a {built.kver}" in postun
    for body in [*scripts.values(), *built.tools.scripts().values()]:
        check = subprocess.run(["sh", "-n"], input=body, text=True, capture_output=True)
        assert check.returncode == 0, check.stderr
    # what they do on install, upgrade and erase is tested in the VM
    # (tests/vm/test_service.py, tests/vm/test_dkms.py)


def _run_dkms_scriptlet(body: str, arg: int, tmp_path: Path, kver: str, fail: str = "") -> tuple:
    """Run a scriptlet of the DKMS package with a recording ``dkms`` and ``uname -r`` = kver.

    Returns (exit status, stderr, the dkms commands it ran).
    """
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    log = tmp_path / "dkms.log"
    log.write_text("")
    (stubs / "dkms").write_text(f'#!/bin/sh\necho "$*" >>{log}\n[ "$1" != "{fail}" ]\n')
    (stubs / "uname").write_text(f"#!/bin/sh\necho {kver}\n")
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    proc = subprocess.run(
        ["sh", "-c", body, "sh", str(arg)],
        capture_output=True, text=True, env={"PATH": f"{stubs}:/usr/bin:/bin"},
    )  # fmt: skip
    return proc.returncode, proc.stderr, log.read_text().splitlines()


def test_dkms_scriptlets(built, tmp_path):
    """What the DKMS package's scriptlets ask dkms to do, in order, and what they say."""
    scripts = built.dkms.scripts()
    v = version()
    name = f"-m multicast-proxy -v {v}"
    # headers of the running kernel present (`make deps` installs them): add, build, install
    assert (Path("/lib/modules") / built.kver / "build" / "Makefile").is_file()
    rc, err, ran = _run_dkms_scriptlet(scripts["post"], 1, tmp_path, built.kver)
    assert (rc, err) == (0, "")
    assert ran == [f"add {name} --rpm_safe_upgrade", f"build {name}", f"install {name} --force"]
    # a failed build: nothing installed, the log named, the package still installs
    rc, err, ran = _run_dkms_scriptlet(scripts["post"], 1, tmp_path, built.kver, fail="build")
    assert rc == 0
    assert ran == [f"add {name} --rpm_safe_upgrade", f"build {name}"]
    assert f"/var/lib/dkms/multicast-proxy/{v}/build/make.log" in err
    # no headers for the running kernel: added only, and the operator told what to install
    rc, err, ran = _run_dkms_scriptlet(scripts["post"], 1, tmp_path, "9.9.9-nowhere")
    assert rc == 0
    assert ran == [f"add {name} --rpm_safe_upgrade"]
    assert "install kernel-devel-9.9.9-nowhere, then run: dkms autoinstall" in err
    # erase, and the old package of an upgrade: this version leaves DKMS, builds and all
    for arg in (0, 1):
        rc, err, ran = _run_dkms_scriptlet(scripts["preun"], arg, tmp_path, built.kver)
        assert (rc, ran) == (0, [f"remove {name} --all --rpm_safe_upgrade"])


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


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_the_installed_tools_run_with_their_own_libraries(built, tmp_path):
    """The payload's commands, run from where they are, import only the vendored copies
    and write nothing next to them."""
    root = built.tools.extract(tmp_path / "root")
    before = tree(root)
    for tool in TOOLS:
        proc = subprocess.run(
            [str(root / "usr/sbin" / tool), "--help"], capture_output=True, text=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        assert "usage" in proc.stdout.lower()
    assert tree(root) == before  # -B: no byte code written beside the package's
    # which libraries: a probe run the way the launcher runs the tools
    lib = root / PYLIB.lstrip("/")
    (lib / "bin" / "probe").write_text(
        "import os.path, sys\n"
        "sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))\n"
        "import click, pyroute2, prometheus_client, multicast_admin\n"
        "import etcd3gw, etcd3gw.client, etcd3gw.lease\n"
        f"etcd = [sys.modules[m] for m in {VENDORED_FOR_ETCD!r}]\n"
        "print(sys.executable, click.__version__, sys.flags.isolated,"
        " sys.flags.dont_write_bytecode, *(m.__file__.startswith(sys.path[0])"
        " for m in (click, pyroute2, prometheus_client, multicast_admin)),"
        " all(m.__file__.startswith(sys.path[0]) for m in etcd), etcd3gw.__version__)\n"
    )
    (root / "usr/sbin/probe").symlink_to("../lib/multicast-proxy/launch")
    out = subprocess.run(
        [str(root / "usr/sbin/probe")], capture_output=True, text=True, check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    ).stdout.split()  # fmt: skip
    assert re.fullmatch(r"/usr/bin/python3\.(9|1[0-4])", out[0])
    assert out[1].startswith("8.1.")
    # -I, -B, all vendored (etcd3gw's whole tree too)
    assert out[2:] == ["1", "1", "True", "True", "True", "True", "True", "2.5.0"]
    # the agent: its help, and against no etcd the documented exit code 9
    # (the vendored etcd3gw and requests imported and used)
    proc = subprocess.run(
        [str(root / "usr/sbin/multicast-proxy"), "agent", "--help"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "--etcd" in proc.stdout
    proc = subprocess.run(
        [str(root / "usr/sbin/multicast-proxy"), "status", "--etcd", "http://127.0.0.1:9"],
        capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    # the exporter, with the vendored prometheus_client (no module on this host)
    prom = tmp_path / "metrics.prom"
    subprocess.run(
        [str(root / "usr/sbin/multicast-proxy"), "exporter", "--textfile", str(prom)],
        check=True, env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert 'multicast_proxy_module_loaded{module="multis"} 0.0' in prom.read_text()


def test_the_launcher_takes_the_named_interpreter_and_refuses_unknown_tools(built, tmp_path):
    root = built.tools.extract(tmp_path / "root")
    fake = tmp_path / "python-fake"
    fake.write_text('#!/bin/sh\necho "fake $*"\n')
    fake.chmod(0o755)
    proc = subprocess.run(
        [str(root / "usr/sbin/multis_admin"), "-S"], capture_output=True, text=True,
        env={"PATH": "/usr/bin:/bin", "MULTICAST_PROXY_PYTHON": str(fake)},
    )  # fmt: skip
    assert proc.stdout == f"fake -I -B {root}{PYLIB}/bin/multis_admin -S\n"
    (root / "usr/sbin/bogus").symlink_to("../lib/multicast-proxy/launch")
    proc = subprocess.run([str(root / "usr/sbin/bogus")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.startswith("multicast-proxy-launch: no tool named bogus")


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
    # LSB exit codes: 2 for an unknown action, 3 for an unimplemented one, 5
    # when the program is missing
    # (this host has no /usr/sbin/multicast-proxy-service)
    script = str(REPO / "packaging" / "init.d" / svc)
    proc = subprocess.run(["sh", script, "bogus"], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: ")
    # 3 for an action it does not implement
    proc = subprocess.run(["sh", script, "reload"], capture_output=True, text=True, check=False)
    assert proc.returncode == 3
    assert proc.stderr == (
        f"{svc}: reload is not supported: use restart (stop saves the configuration,"
        " start restores it)\n"
    )
    if not Path("/usr/sbin/multicast-proxy-service").exists():
        proc = subprocess.run(["sh", script, "start"], capture_output=True, text=True)
        assert proc.returncode == 5
        assert proc.stderr == f"{svc}: /usr/sbin/multicast-proxy-service is not installed\n"


def test_the_agent_service(tmp_path):
    """The agent's unit and init script run `multicast-proxy agent`, which reads agent.conf."""
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment]
    unit.read(REPO / "packaging" / "systemd" / f"{AGENT}.service")
    service = unit["Service"]
    assert (service["Type"], service["ExecStart"]) == ("simple", "/usr/sbin/multicast-proxy agent")
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a bad agent.conf does not heal
    assert {"multis.service", "multic.service", "network-online.target"} <= set(
        unit["Unit"]["After"].split()
    )
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    script = REPO / "packaging" / "init.d" / AGENT
    text = script.read_text()
    assert "# chkconfig: 2345 12 88" in text  # after multis/multic (09), stops before them (91)
    lsb = text[text.index("### BEGIN INIT INFO") : text.index("### END INIT INFO")]
    assert f"# Provides:          {AGENT}" in lsb
    assert "# Required-Start:    $local_fs $network multis multic" in lsb
    assert "# config: /etc/multicast-proxy/agent.conf" in text
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0
    proc = subprocess.run(["sh", str(script), "bogus"], capture_output=True, text=True)
    assert (proc.returncode, proc.stderr.startswith("Usage: ")) == (2, True)
    proc = subprocess.run(["sh", str(script), "reload"], capture_output=True, text=True)
    assert proc.returncode == 3
    # the example agent.conf: every line a comment, so it parses as no settings
    # (the agent then asks for endpoints, exit 2: the unit does not restart it)
    conf = REPO / "packaging" / "etc" / "agent.conf"
    lines = [line for line in conf.read_text().splitlines() if line.strip()]
    assert all(line.startswith("#") for line in lines)
    assert "# [etcd]" in lines
    assert "# endpoints = https://10.0.0.5:2379,https://10.0.0.6:2379" in lines
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    env["MULTICAST_PROXY_AGENT_CONF"] = str(conf)
    proc = subprocess.run(
        [sys.executable, "-m", "multicast_admin.cli_proxy", "agent"],
        capture_output=True, text=True, env=env,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "no etcd endpoint" in proc.stderr
    # uncommented, the example is a valid configuration
    filled = tmp_path / "agent.conf"
    filled.write_text("\n".join(line[2:] for line in lines if line.startswith("# ") and (
        line[2:].startswith("[") or " = " in line)) + "\n")  # fmt: skip
    # (its certificate files, here)
    filled.write_text(filled.read_text().replace("/etc/multicast-proxy/", f"{tmp_path}/"))
    for pem in ("etcd-ca.pem", "etcd-client.pem", "etcd-client-key.pem"):
        (tmp_path / pem).write_text("")
    from multicast_admin.fleet.settings import agent_settings, etcd_settings, read_conf

    conf_read = read_conf(filled)
    settings = agent_settings(conf_read, etcd_settings(conf_read))
    assert str(settings.etcd.endpoints[0]) == "https://10.0.0.5:2379"
    assert (settings.addresses, settings.ttl) == (("10.0.0.11", "2001:db8::11"), 10)


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
