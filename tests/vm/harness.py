"""Boot a Debian kernel in QEMU and run a command in it, against this host's root.

The host kernel cannot load modules, so every test of the real modules runs in a
small VM: QEMU with TCG (KVM does not work on these machines), the kernel of the
kit prepared by ``scripts/setup-kit.sh`` and a busybox initramfs that mounts the
host's root file system read-only over 9p and switches to it.  The command runs
as root in the repository directory; its output, exit status and any files it
writes to ``$MCP_RESULTS`` come back through a second, writable 9p share.

See shared notes "vm-harness" for the measured facts behind each choice
(``cache=loose``, ``switch_root``, ``-accel tcg``, ``oops=panic``); the
comment at the QEMU command line says why TCG runs single-threaded.

Only the standard library is used: this module also runs as a script
(``tests/vm/vmrun``) before any virtual environment exists.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
GUEST_INIT = REPO / "tests" / "vm" / "guest-init.sh"

# Modules the initramfs loads, in order, to reach the 9p root.
_BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p")

# Console lines that mean the kernel misbehaved, whatever the command said.
KERNEL_TROUBLE = re.compile(
    r"(WARNING:|BUG:|Oops|general protection fault|Kernel panic|Call Trace|"
    r"UBSAN:|KASAN:|kmemleak|refcount_t:|list_add corruption|list_del corruption|"
    r"RCU detected stall|soft lockup|hung_task)"
)


# Taint flags (bit numbers of /proc/sys/kernel/tainted) that mean the kernel
# warned or died, even when no line of the log says so.  Our unsigned
# out-of-tree modules taint O and E: those are expected.
BAD_TAINTS = {"W": 9, "D": 7}


class VMError(RuntimeError):
    """The VM did not produce an exit status: it hung, panicked or failed to boot."""


@dataclasses.dataclass
class VMResult:
    """What one VM run brought back."""

    returncode: int
    output: str
    console: str
    results_dir: Path
    seconds: float

    def kernel_trouble(self) -> list[str]:
        """Console lines showing a WARNING, BUG, Oops or similar."""
        return [line for line in self.console.splitlines() if KERNEL_TROUBLE.search(line)]

    def trouble(self) -> list[str]:
        """Everything showing that the kernel misbehaved during the run.

        The console to its very end (an oops after the command, even during
        power-off), the kernel log guest-init took after letting deferred
        work run (it has the WARNINGs the console's log level hides), and
        the taint flags W and D.
        """
        found = [f"console: {line}" for line in self.kernel_trouble()]
        dmesg = self.results_dir / "dmesg"
        if dmesg.exists():
            found += [
                f"dmesg: {line}"
                for line in dmesg.read_text(errors="replace").splitlines()
                if KERNEL_TROUBLE.search(line)
            ]
        else:
            found.append("dmesg: the guest recorded no kernel log")
        tainted = self.results_dir / "tainted"
        text = tainted.read_text().strip() if tainted.exists() else ""
        if not text.isdigit():
            found.append(f"tainted: the guest recorded no taint flags ({text!r})")
            return found
        found += [
            f"tainted: {flag} (/proc/sys/kernel/tainted = {text})"
            for flag, bit in BAD_TAINTS.items()
            if int(text) & (1 << bit)
        ]
        return found

    def console_tail(self, lines: int = 60) -> str:
        return "\n".join(self.console.splitlines()[-lines:])


def default_kver() -> str:
    kver = os.environ.get("KVER")
    if kver:
        return kver
    return subprocess.run(
        [str(REPO / "scripts" / "kver.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()


def kit_dir(kver: str) -> Path:
    kit = BUILD / "kit" / kver
    if not (kit / ".done").exists():
        raise VMError(f"kernel kit {kit} is missing: run `make setup` (scripts/setup-kit.sh)")
    return kit


def _boot_module_paths(kit: Path, kver: str) -> list[Path]:
    paths: list[Path] = []
    for name in _BOOT_MODULES:
        out = subprocess.run(
            ["modprobe", "-d", str(kit), "-S", kver, "--show-depends", name],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        for line in out.splitlines():
            words = line.split()
            if words[:1] == ["insmod"] and Path(words[1]) not in paths:
                paths.append(Path(words[1]))
    return paths


_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /newroot
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /modules.list); do insmod "/modules/$m" || echo "initramfs: insmod $m failed"; done
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,ro,cache=loose \\
        hostroot /newroot; then
    echo "initramfs: cannot mount the host root"; echo o > /proc/sysrq-trigger
fi
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
mount --move /dev /newroot/dev
exec switch_root /newroot /bin/sh "$MCP_GUEST_INIT"
"""


def _newc_archive(root: Path) -> bytes:
    """The files under ``root`` as a cpio "newc" archive (what the kernel unpacks)."""
    chunks: list[bytes] = []

    def entry(name: str, mode: int, data: bytes, ino: int) -> None:
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        blob = header + name.encode() + b"\0"
        blob += b"\0" * (-len(blob) % 4)
        blob += data + b"\0" * (-len(data) % 4)
        chunks.append(blob)

    paths = sorted(root.rglob("*"))
    for ino, path in enumerate(paths, start=1):
        st = path.lstat()
        data = b"" if path.is_dir() else path.read_bytes()
        entry(str(path.relative_to(root)), st.st_mode, data, ino)
    entry("TRAILER!!!", 0, b"", 0)
    return b"".join(chunks)


def initramfs(kit: Path, kver: str) -> Path:
    """The cached busybox initramfs for this kernel."""
    out = BUILD / "vm" / f"initramfs-{kver}.cpio.gz"
    busybox = Path("/bin/busybox")
    if out.exists() and out.stat().st_mtime >= Path(__file__).stat().st_mtime:
        return out
    if not busybox.exists():
        raise VMError("/bin/busybox is missing: run `make deps` (busybox-static)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="initramfs-") as tmp:
        root = Path(tmp)
        (root / "bin").mkdir()
        (root / "modules").mkdir()
        shutil.copy2(busybox, root / "bin" / "busybox")
        names = []
        for path in _boot_module_paths(kit, kver):
            shutil.copy2(path, root / "modules" / path.name)
            names.append(path.name)
        (root / "modules.list").write_text("\n".join(names) + "\n")
        init = root / "init"
        init.write_text(_INIT)
        init.chmod(0o755)
        cpio = _newc_archive(root)
    # A temporary name of this process's own: with make test's two workers,
    # two VMs of a kernel new to this tree may build it at the same time.
    fd, tmp_name = tempfile.mkstemp(prefix=f"{out.name}.", suffix=".tmp", dir=out.parent)
    with os.fdopen(fd, "wb") as tmp_out:
        tmp_out.write(gzip.compress(cpio, compresslevel=1))
    os.chmod(tmp_name, 0o644)
    os.replace(tmp_name, out)
    return out


def run(
    command: str,
    *,
    kver: str | None = None,
    timeout: float = 600.0,
    memory_mb: int = 1024,
    cpus: int = 2,
    results_dir: Path | None = None,
    tcg_thread: str = "single",
    icount: int | None = None,
) -> VMResult:
    """Boot the VM, run ``command`` with /bin/sh in the repository, power off.

    ``tcg_thread`` is QEMU's TCG threading: "single" (one host thread runs
    every vCPU in turn: what the tests use) or "multi" (a host thread per
    vCPU: faster for parallel work, but it mis-emulates live kernel code
    patching, see the QEMU command line below).  $MCP_TCG_THREAD overrides
    it.  ``icount`` (QEMU's ``-icount shift=N,sleep=on``) makes the guest's
    clock count the instructions it executed, 2**N ns each, instead of
    following the host's: what `make bench` uses, so that what else the
    host runs does not change the guest's measured times (TCG's own speed
    varies with it by tens of per cent).  QEMU 7.2's icount hangs an x86
    guest's second vCPU at boot: use it with ``cpus=1``.  Raises VMError
    when the VM produced no exit status (hang, panic, boot failure); the
    message carries the console tail.
    """
    tcg_thread = os.environ.get("MCP_TCG_THREAD", tcg_thread)
    if tcg_thread not in ("single", "multi"):
        raise VMError(f"tcg_thread must be single or multi, not {tcg_thread!r}")
    if icount is not None and cpus != 1:
        raise VMError(f"icount needs cpus=1 (QEMU hangs a second vCPU at boot), not {cpus}")
    kver = kver or default_kver()
    kit = kit_dir(kver)
    initrd = initramfs(kit, kver)
    runs = BUILD / "vm" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    if results_dir is None:
        results_dir = Path(tempfile.mkdtemp(prefix=time.strftime("%H%M%S-"), dir=runs))
    results_dir.mkdir(parents=True, exist_ok=True)
    for stale in ("rc", "output", "console.log", "dmesg", "tainted"):
        (results_dir / stale).unlink(missing_ok=True)
    (results_dir / "command.sh").write_text(command + "\n")
    console = results_dir / "console.log"
    env_args = (
        f"MCP_GUEST_INIT={GUEST_INIT} MCP_REPO={REPO} MCP_KIT={kit} MCP_KVER={kver} "
        f"MCP_HOST_UID={os.getuid()} MCP_PIN_NF_KEYS={os.environ.get('MCP_PIN_NF_KEYS', '1')}"
    )
    qemu = [
        "qemu-system-x86_64",
        "-nodefaults",
        "-no-user-config",
        # Multi-threaded TCG mis-emulates the kernel's live code patching
        # (text_poke_bp) on 6.12: a static key flipped while another vCPU
        # runs the patched code dies with "Oops: int3", even with no module
        # of ours (nf_tables alone, see docs/kernels.md).  The tests use one
        # host thread for all vCPUs, which still interleaves them; and
        # guest-init pins the netfilter keys that loading our modules flips
        # (MCP_PIN_NF_KEYS=0 does not), which is what makes "multi" safe
        # enough for the demo.
        "-accel",
        f"tcg,thread={tcg_thread}",
        *(["-icount", f"shift={icount},sleep=on"] if icount is not None else []),
        "-cpu",
        "max",
        "-smp",
        str(cpus),
        "-m",
        f"{memory_mb}M",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{console}",
        "-no-reboot",
        "-kernel",
        str(kit / "boot" / f"vmlinuz-{kver}"),
        "-initrd",
        str(initrd),
        "-append",
        # no_timer_check: on a busy host TCG can miss the boot-time check
        # of the IO-APIC timer, and the kernel then panics ("IO-APIC +
        # timer doesn't work!") before it ran anything of ours.
        "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic panic_on_warn=0 no_timer_check "
        f"net.ifnames=0 {env_args}",
        "-fsdev",
        "local,id=root,path=/,security_model=none,readonly=on,multidevs=remap",
        "-device",
        "virtio-9p-pci,fsdev=root,mount_tag=hostroot",
        "-fsdev",
        f"local,id=res,path={results_dir},security_model=none",
        "-device",
        "virtio-9p-pci,fsdev=res,mount_tag=results",
    ]
    started = time.monotonic()
    with contextlib.suppress(subprocess.TimeoutExpired):
        subprocess.run(
            qemu,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            timeout=timeout,
            check=False,
        )
    seconds = time.monotonic() - started
    console_text = console.read_text(errors="replace") if console.exists() else ""
    output_file = results_dir / "output"
    output = output_file.read_text(errors="replace") if output_file.exists() else ""
    rc_file = results_dir / "rc"
    if not rc_file.exists():
        tail = "\n".join(console_text.splitlines()[-80:])
        raise VMError(
            f"the VM gave no exit status after {seconds:.0f}s (hang, panic or boot failure); "
            f"console {console}:\n{tail}\n--- command output ---\n{output[-4000:]}"
        )
    returncode = int(rc_file.read_text().strip() or "255")
    return VMResult(returncode, output, console_text, results_dir, seconds)


def run_script(path: Path, *args: str, **kwargs: object) -> VMResult:
    """Run a Python script of the repository in the guest with the project's venv."""
    python = REPO / ".venv" / "bin" / "python"
    cmd = " ".join(shlex.quote(str(a)) for a in (python, path, *args))
    return run(cmd, **kwargs)  # type: ignore[arg-type]
