#!/usr/bin/env python3
"""`make demo`: multicast crossing a simulated VPC that drops it, in one VM boot.

The host side: checks that `make setup modules` left what the demo needs,
boots the test VM once (tests/vm/harness.py: QEMU, the Debian kernel of the
kit, this machine's root file system read-only), runs demo/guest.py in it
and shows its output as it comes.  Exits with the scenario's status: 0 when
every datagram arrived where it should and nowhere else, 1 when not, 2 when
the demo could not run at all.

    .venv/bin/python demo/run.py [--kver KVER] [--timeout SECONDS] [--guest SCRIPT]

``--guest demo/fleet.py`` is `make demo-fleet`: the same VPC configured by
etcd and agents alone.

$MULTICAST_PROXY_KO_DIR names another build tree of the modules (with
multis/multis.ko and multic/multic.ko) than this checkout's kernel/.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.vm import harness  # noqa: E402

VENV_BIN = REPO / ".venv" / "bin"


def problems(kver: str, ko_dir: Path) -> list[str]:
    """What is missing for the demo, each with the command that provides it."""
    found = []
    if not shutil.which("qemu-system-x86_64"):
        found.append("qemu-system-x86_64 is not installed: run `make setup`")
    if not (harness.BUILD / "kit" / kver / ".done").exists():
        found.append(f"the VM kernel kit build/kit/{kver} is missing: run `make setup`")
    for name in ("multis", "multic"):
        if not (ko_dir / name / f"{name}.ko").exists():
            found.append(f"{ko_dir}/{name}/{name}.ko is not built: run `make modules`")
    for name in ("multis", "multic"):
        if not (REPO / "packaging" / "init.d" / name).exists():
            found.append(f"packaging/init.d/{name} is missing from this checkout")
    for tool in ("multis_admin", "multic_admin"):
        if not (VENV_BIN / tool).exists():
            found.append(f".venv/bin/{tool} is missing: run `make setup` (the venv)")
    return found


def follow(path: Path, done: threading.Event) -> None:
    """Print what the guest writes to ``path`` as it arrives (the 9p share)."""
    offset = 0
    while True:
        finished = done.is_set()
        if path.exists():
            with path.open("rb") as f:
                f.seek(offset)
                chunk = f.read()
            if chunk:
                offset += len(chunk)
                sys.stdout.write(chunk.decode(errors="replace"))
                sys.stdout.flush()
        if finished:
            return
        done.wait(0.3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kver", default=None, help="kernel ABI (default: scripts/kver.sh)")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="VM time limit, seconds (default 900)"
    )
    parser.add_argument(
        "--guest", default="demo/guest.py", help="the scenario (default demo/guest.py)"
    )
    args = parser.parse_args()

    started = time.monotonic()
    try:
        kver = args.kver or harness.default_kver()
    except Exception as err:  # noqa: BLE001 - any failure here means "not set up"
        print(f"demo: cannot tell the kernel version ({err}): run `make setup`", file=sys.stderr)
        return 2
    # The modules the guest loads: this checkout's, or another build tree of
    # them named by $MULTICAST_PROXY_KO_DIR (as for multicast-proxy-service).
    ko_dir = Path(os.environ.get("MULTICAST_PROXY_KO_DIR") or REPO / "kernel").resolve()
    missing = problems(kver, ko_dir)
    if missing:
        for line in missing:
            print(f"demo: {line}", file=sys.stderr)
        return 2

    # Compile the Python the guest imports here, once: the guest's root is
    # read-only (it cannot cache bytecode) and compiling under TCG is slow.
    for tree in ("multicast_admin", "demo", "tests/vm/guest"):
        compileall.compile_dir(REPO / tree, quiet=1)
    for package in ("tests/__init__.py", "tests/vm/__init__.py"):
        compileall.compile_file(REPO / package, quiet=1)

    print(
        f"demo: booting a VM with Debian's kernel {kver} (QEMU, software emulation: "
        "Python in it runs about 30 times slower than here)...",
        flush=True,
    )
    runs = harness.BUILD / "vm" / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    results = Path(tempfile.mkdtemp(prefix=time.strftime("demo-%H%M%S-"), dir=runs))
    path = f"{VENV_BIN}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    command = (
        f"PATH={path} MULTICAST_PROXY_KO_DIR={shlex.quote(str(ko_dir))} "
        f"exec {VENV_BIN}/python -u {shlex.quote(args.guest)}"
    )

    done = threading.Event()
    printer = threading.Thread(target=follow, args=(results / "output", done), daemon=True)
    printer.start()
    try:
        # Multi-threaded TCG: the configuration step runs four hosts' commands
        # at once, and one host thread for both vCPUs makes the demo take
        # about twice as long.  The demo loads the modules with no traffic
        # flowing and guest-init pins the netfilter keys they would flip, so
        # the live-patching flaw of multi-threaded TCG is not in its way
        # (tests/vm/harness.py, docs/kernels.md).
        result = harness.run(
            command, kver=kver, timeout=args.timeout, results_dir=results, tcg_thread="multi"
        )
    except harness.VMError as err:
        done.set()
        printer.join()
        # the guest's output was shown already: only the console part
        text = str(err).split("\n--- command output ---")[0]
        print(f"\ndemo: the VM failed: {text}", file=sys.stderr)
        return 2
    finally:
        done.set()
        printer.join()

    status = result.returncode
    trouble = result.trouble()
    if trouble:
        print("\ndemo: the guest kernel logged trouble:\n  " + "\n  ".join(trouble))
        status = status or 1
    print(
        f"\ndemo: {'PASS' if status == 0 else 'FAIL'} in {time.monotonic() - started:.0f} s "
        f"(VM {result.seconds:.0f} s; kernel log and demo.json in "
        f"{os.path.relpath(results, REPO)})"
    )
    return status


if __name__ == "__main__":
    sys.exit(main())
