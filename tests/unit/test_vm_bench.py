"""`make bench`'s verdicts (tests/vm/bench.py) and its guest clock (tests/vm/harness.py).

The verdicts are computed from the trials' JSON: given trials that meet a
goal and trials that miss it, each must say so.  The clock: an instruction-
counted guest needs one vCPU (QEMU 7.2 never brings up a second), which
the harness refuses before it boots anything.
"""

from __future__ import annotations

import subprocess
from typing import Any

import pytest

from tests.vm import bench, harness


def scale_runs(per_copy_ns: dict[int, float], base_ns: float = 24_000.0) -> list[dict[str, Any]]:
    """Five trials per group size whose time per message is base + members x per copy."""
    runs = [{"members": 0, "ns_per_datagram": base_ns} for _ in range(5)]
    for n, ns in per_copy_ns.items():
        runs += [{"members": n, "ns_per_datagram": base_ns + n * ns} for _ in range(5)]
    return runs


def unrelated_runs(without: float, loaded: float) -> list[dict[str, Any]]:
    return [
        {"loaded": flag, "messages_per_second": rate}
        for _ in range(5)
        for flag, rate in ((False, without), (True, loaded))
    ]


def throughput_runs(multis: float, vxlan: float) -> list[dict[str, Any]]:
    return [
        {"way": way, "size": size, "copies_per_second": rate}
        for size in (64, 1316)
        for way, rate in (("multis", multis), ("vxlan", vxlan))
    ]


def verdicts(**bench_fields: Any) -> list[str]:
    return [line.rsplit(": ", 1)[1] for line in bench.goals(bench_fields)]


def test_goals_met():
    got = verdicts(
        scale_runs=scale_runs({16: 20_700, 128: 21_400, 1024: 22_400}),
        unrelated_runs=unrelated_runs(36_000, 35_344),
        runs=throughput_runs(46_000, 26_000),
    )
    assert got == ["met"] * 4


def test_goals_missed():
    got = verdicts(
        # the fixed cost spread over the members would hide this: it is taken out
        scale_runs=scale_runs({16: 20_000, 1024: 22_500}),
        unrelated_runs=unrelated_runs(36_000, 35_000),
        runs=throughput_runs(30_000, 26_000),
    )
    assert got == ["NOT met"] * 4


def test_per_copy_cost_leaves_out_a_message_of_no_member():
    costs = bench._scale_costs({"scale_runs": scale_runs({16: 1_000, 1024: 1_000}, 50_000)})
    assert costs == {16: pytest.approx(1_000), 1024: pytest.approx(1_000)}


def test_partial_bench_has_only_its_goals():
    assert len(bench.goals({"unrelated_runs": unrelated_runs(100, 99)})) == 1


def test_icount_needs_one_vcpu(monkeypatch):
    booted = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: booted.append(a))
    with pytest.raises(harness.VMError, match="icount needs cpus=1"):
        harness.run("true", icount=1, cpus=2)
    assert not booted


def test_icount_reaches_qemu(monkeypatch, tmp_path):
    class Booted(Exception):
        pass

    def qemu(cmd: list[str], **kwargs: object) -> None:
        raise Booted(cmd)

    monkeypatch.setattr(harness, "kit_dir", lambda kver: tmp_path)
    monkeypatch.setattr(harness, "initramfs", lambda kit, kver: tmp_path / "initrd")
    monkeypatch.setattr(subprocess, "run", qemu)
    with pytest.raises(Booted) as booted:
        harness.run("true", kver="6.1.0-0-amd64", icount=1, cpus=1, results_dir=tmp_path)
    cmd = booted.value.args[0]
    assert cmd[cmd.index("-icount") + 1] == "shift=1,sleep=on"
    assert cmd[cmd.index("-smp") + 1] == "1"
    with pytest.raises(Booted) as booted:
        harness.run("true", kver="6.1.0-0-amd64", results_dir=tmp_path)
    assert "-icount" not in booted.value.args[0]


def test_widest_spread_names_its_way():
    runs = [
        *throughput_runs(46_000, 26_000),
        {"way": "vxlan", "size": 64, "copies_per_second": 24_000.0},
        {"way": "vxlan", "size": 64, "copies_per_second": 25_000.0},
    ]
    spread, where = bench._widest_spread({"runs": runs})
    assert where == "VXLAN head-end replication at 64 B"
    assert spread == pytest.approx((26_000 - 24_000) / 25_000)


def test_unrelated_rounds_pair_each_loaded_trial_with_its_own_round():
    runs = unrelated_runs(36_000, 35_000)
    runs[-1]["messages_per_second"] = 34_000  # the last round's loaded trial
    got = bench._round_ratios({"unrelated_runs": runs})
    assert got[:-1] == [pytest.approx(35 / 36)] * 4
    assert got[-1] == pytest.approx(34 / 36)
