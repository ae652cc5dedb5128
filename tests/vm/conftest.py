"""Host side of the VM tests: boot once per test module, assert on what came back.

A test module names its guest script (``GUEST = "tests/vm/guest/x.py"``); the
``facts`` fixture boots the VM once for the whole module, runs the script with
the project's venv, and hands back the facts it recorded.  A VM that hangs,
panics or oopses fails every test of the module with the console tail.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.vm import harness

# The longest files first, so that with `make test`'s two workers (pytest-xdist,
# --dist loadfile) the longest does not start last: minutes under TCG.  The
# Makefile passes --no-loadscope-reorder, without which xdist would order the
# files by their number of tests instead.
LONGEST_FIRST = (
    "test_dkms.py",
    "test_service.py",
    "test_trace.py",
    "test_fleet.py",
    "test_fuzz.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's tests stay in their order


class GuestFacts:
    def __init__(self, result: harness.VMResult, data: dict[str, Any]) -> None:
        self.result = result
        self.data = data

    def __getitem__(self, step: str) -> dict[str, Any]:
        if step not in self.data:
            pytest.fail(
                f"the guest recorded no step {step!r}; guest output:\n{self.result.output[-6000:]}"
            )
        record = self.data[step]
        if "error" in record:
            pytest.fail(f"guest step {step!r} failed:\n{record['error']}")
        return record

    def kernel_trouble(self) -> list[str]:
        """The console, the kernel log and the taint flags: see VMResult.trouble()."""
        return self.result.trouble()

    def assert_clean_end(self) -> None:
        """The guest script reached its end, and the kernel stayed clean to the VM's end."""
        assert "guest: done" in self.result.output, self.result.output[-4000:]
        assert self.kernel_trouble() == [], self.result.console_tail()


def boot_and_run(
    script: str,
    *args: str,
    timeout: float = 900.0,
    kver: str | None = None,
    tcg_thread: str = "single",
) -> GuestFacts:
    try:
        result = harness.run_script(
            harness.REPO / script, *args, timeout=timeout, kver=kver, tcg_thread=tcg_thread
        )
    except harness.VMError as err:
        pytest.fail(str(err), pytrace=False)
    path = result.results_dir / "facts.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if result.returncode != 0 and not data:
        pytest.fail(
            f"guest script {script} exited {result.returncode}:\n{result.output[-6000:]}",
            pytrace=False,
        )
    return GuestFacts(result, data)


@pytest.fixture(scope="module")
def facts(request: pytest.FixtureRequest) -> GuestFacts:
    script = request.module.GUEST
    args = getattr(request.module, "GUEST_ARGS", ())
    return boot_and_run(script, *args, timeout=getattr(request.module, "GUEST_TIMEOUT", 900.0))
