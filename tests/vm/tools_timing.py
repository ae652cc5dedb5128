"""How long the Python tools take inside the test VM: start-up and restores.

    .venv/bin/python -m tests.vm.tools_timing 10x128 1000x16 old=/tmp/old:10x128

(``old=DIR:GxM``: the same restore with the multicast_admin found in DIR, e.g.
``git archive REV multicast_admin | tar -x -C DIR``, for a before/after.)

Boots the VM once, runs tests/vm/guest/tools_timing.py (start-up of
``multis_admin -S``, then each GROUPSxMEMBERS state restored with its netlink
round trips counted) and prints the facts it recorded as JSON.  The numbers
are for docs/performance.md; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json

from tests.vm import harness


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("states", nargs="*", default=["10x128"], help="GROUPSxMEMBERS")
    parser.add_argument("--memory-mb", type=int, default=2048)
    parser.add_argument("--timeout", type=float, default=1800.0)
    args = parser.parse_args()
    result = harness.run_script(
        harness.REPO / "tests" / "vm" / "guest" / "tools_timing.py",
        *args.states,
        timeout=args.timeout,
        memory_mb=args.memory_mb,
    )
    facts = json.loads((result.results_dir / "facts.json").read_text())
    print(json.dumps(facts, indent=1))
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
