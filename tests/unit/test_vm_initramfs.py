"""tests/vm/harness.py's initramfs cache, built by two workers at once.

make test runs the VM files two at a time, and on a kernel new to the tree
(scripts/kernels.sh vmtest copies the tree) both workers build that kernel's
initramfs together: each must end with a whole file, neither with an error.
"""

from __future__ import annotations

import gzip
import os
import threading

from tests.vm import harness


def test_two_builds_at_once_both_succeed_with_one_whole_file(tmp_path, monkeypatch):
    kver, kit = "6.1.0-0-amd64", tmp_path / "kit"  # no modules needed: the race is the file's
    monkeypatch.setattr(harness, "_boot_module_paths", lambda kit, kver: [])
    monkeypatch.setattr(harness, "BUILD", tmp_path)
    # both builders have written their file before either moves it in place
    both_written = threading.Barrier(2, timeout=10)
    for name in ("rename", "replace"):
        real = getattr(os, name)

        def after_both(src: object, dst: object, real=real) -> None:
            both_written.wait()
            real(src, dst)

        monkeypatch.setattr(os, name, after_both)
    errors: list[BaseException] = []

    def build() -> None:
        try:
            harness.initramfs(kit, kver)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    out = tmp_path / "vm" / f"initramfs-{kver}.cpio.gz"
    assert gzip.decompress(out.read_bytes()).startswith(b"070701")  # newc cpio
    assert sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no temporary left
