"""`make bench`: measure multis against the application sending to each member itself.

Boots the VM once, runs tests/vm/guest/bench.py and writes the results to
docs/performance.md.  Absolute numbers inside a TCG-emulated VM mean little;
the ratios between the two ways, measured in the same run, are the result.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time

from tests.vm import harness

DOC = harness.REPO / "docs" / "performance.md"


def main() -> int:
    blast = harness.BUILD / "mcblast"
    subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(blast), str(harness.REPO / "tests/vm/bench/mcblast.c")],
        check=True,
    )
    result = harness.run_script(
        harness.REPO / "tests/vm/guest/bench.py", str(blast), "3", timeout=1200
    )
    facts = json.loads((result.results_dir / "facts.json").read_text())
    bench = facts.get("bench", {})
    if result.returncode != 0 or "error" in bench or not bench.get("runs"):
        print(result.output, file=sys.stderr)
        return 1
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render(bench))
    print(DOC.read_text())
    return 0


def _median(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def render(bench: dict) -> str:
    lines = [
        "# Performance",
        "",
        "Measured by `make bench` (tests/vm/bench.py and tests/vm/guest/bench.py),"
        f" {time.strftime('%Y-%m-%d')}, kernel {bench['kernel']} in the QEMU test VM"
        f" (TCG software emulation, {bench['cpus']} vCPUs) on a 2-core build machine.",
        "",
        f"One group with {bench['members']} members (128 addresses of one receiving"
        " host, behind the simulated VPC switch). Two ways of getting each application"
        " message to every member, alternated, three trials of"
        f" {bench['seconds_per_trial']:.0f} s each per payload size; medians shown:",
        "",
        "- **multis**: the application sends each message once to the group;"
        " the module fans it out in the kernel.",
        "- **app unicast**: the application itself sends each message to every"
        " member (one `sendto()` per member) — what users do without the proxy.",
        "",
        "*Delivered copies/s* counts the packets that arrived at the receiving host's"
        " interface. *Sender time per message* is how long the sending application"
        " spent (blocked in `sendto()`) per message, for all its members.",
        "Absolute numbers inside an emulated VM mean little; the ratios are the result."
        " The receiving host is a namespace of the same kernel and veth delivers"
        " inline, so the sender's time also includes the receiving side's work, for"
        " both ways alike; other work sharing the machine during a run slows both"
        " alike too.",
        "",
        "| payload | way | delivered copies/s | sender time per message"
        " | copies dropped by multis |",
        "|---|---|---|---|---|",
    ]
    ratios = []
    for size in sorted({r["size"] for r in bench["runs"]}):
        group = [r for r in bench["runs"] if r["size"] == size and r["mode"] == "group"]
        uni = [r for r in bench["runs"] if r["size"] == size and r["mode"] == "unicast"]
        g_rate, u_rate = _median(group, "copies_per_second"), _median(uni, "copies_per_second")
        g_ns, u_ns = _median(group, "ns_per_datagram"), _median(uni, "ns_per_datagram")
        drops = sum(
            r["multis"][k] for r in group for k in ("drop_nomem", "drop_no_route", "drop_xmit")
        )
        lines.append(f"| {size} B | multis | {g_rate:,.0f} | {g_ns / 1000:,.1f} µs | {drops} |")
        lines.append(f"| {size} B | app unicast | {u_rate:,.0f} | {u_ns / 1000:,.1f} µs | n/a |")
        ratios.append((size, g_rate / u_rate, u_ns / g_ns))
    lines += ["", "Ratios (multis / app unicast, same run):", ""]
    for size, rate, time_ratio in ratios:
        lines.append(
            f"- {size} B: **{rate:.2f}x** the delivered copies per second;"
            f" the sender is blocked **{time_ratio:.2f}x** less per message."
        )
    lines += [
        "",
        "Every trial (JSON, as the guest recorded it):",
        "",
        "```",
        *(json.dumps(r, sort_keys=True) for r in bench["runs"]),
        "```",
        "",
        "Reproduce: `make bench` (rewrites this file).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
