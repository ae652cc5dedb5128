"""`multicast-proxy trace` without a kernel: the events' decoding and words, the
compiled-in filters, and the one-line refusals when something is missing.

What the kernel and bcc really report is tests/vm/test_trace.py's.
"""

from __future__ import annotations

import socket
import struct

import pytest
from click.testing import CliRunner

from multicast_admin import cli_proxy, uapi
from multicast_admin.errors import ModuleNotLoaded, PermissionDenied
from multicast_admin.tracing import events as ev
from multicast_admin.tracing import probe


def raw(kind: int, **fields: object) -> bytes:
    """A struct event as the BPF program writes it."""
    f = {
        "ts": 1_000_000_000, "netns": 4026531840, "cpu": 0, "pid": 42, "group": "0.0.0.0",
        "addr": "0.0.0.0", "peer": "0.0.0.0", "sport": 0, "port": 0, "len": 0, "members": 0,
        "sent": 0, "reason": 0, "err": 0, "protocol": 17, "tos": 0, "marker": 0,
    }  # fmt: skip
    f.update(fields)
    aton = socket.inet_aton
    return ev.RAW_EVENT.pack(
        f["ts"], kind, f["netns"], f["cpu"], f["pid"], aton(f["group"]), aton(f["addr"]),
        aton(f["peer"]), f["sport"], f["port"], f["len"], f["members"], f["sent"], f["reason"],
        f["err"], f["protocol"], f["tos"], f["marker"],
    )  # fmt: skip


def feed(joiner: ev.Joiner, kind: int, **fields: object) -> ev.Event | None:
    return joiner.feed(ev.Raw.unpack(raw(kind, **fields)))


def test_the_event_struct_is_the_c_one():
    # u64 + 4 u32 + 3 x u8[4] + 2 u16 + 3 u32 + 2 s32 + 4 u8 (one of them padding)
    assert ev.RAW_EVENT.size == 8 + 16 + 12 + 4 + 12 + 8 + 4
    assert "} __attribute__((packed));" in probe.PROGRAM


def test_copies_not_sent_join_their_datagram_on_the_same_cpu_and_task():
    joiner = ev.Joiner(ev.Clock())
    common = {"group": "239.1.1.1", "addr": "10.0.0.1", "sport": 40000, "port": 5000}
    assert feed(joiner, ev.KIND_NOT_SENT, peer="10.0.0.13", reason=0, err=-101, **common) is None
    # another CPU's datagram in between is not mixed in
    other = feed(joiner, ev.KIND_FANOUT, cpu=1, members=2, sent=2, **common)
    assert isinstance(other, ev.Fanout)
    assert other.not_sent == []
    assert feed(joiner, ev.KIND_NOT_SENT, peer="10.0.0.12", reason=3, err=-1, **common) is None
    fanout = feed(joiner, ev.KIND_FANOUT, members=4, sent=2, len=128, **common)
    assert isinstance(fanout, ev.Fanout)
    assert fanout.words() == (
        "239.1.1.1:5000 from 10.0.0.1:40000 -> 2 copies, 2 not sent: no route to 10.0.0.13; "
        "refused by this host's output policy for 10.0.0.12"
    )
    assert ev.as_json(fanout)["not_sent"] == [
        {"member": "10.0.0.13", "reason": "no_route", "error": -101},
        {"member": "10.0.0.12", "reason": "policy", "error": -1},
    ]
    assert joiner.pending == {}


def test_a_group_without_members_says_so():
    fanout = feed(ev.Joiner(ev.Clock()), ev.KIND_FANOUT, group="239.1.1.1", port=5000)
    assert fanout is not None
    assert fanout.words().endswith("-> no copies: the group has no members")


@pytest.mark.parametrize(
    ("kind", "fields", "words"),
    [
        (ev.KIND_RESTORE, {"len": 128}, "restored to 239.1.1.1 (128 bytes)"),
        (
            ev.KIND_SKIP,
            {"reason": uapi.MULTIC_TRACE_NO_ENTRY, "group": "0.0.0.0"},
            "left alone: no entry for server 10.0.0.1 port 5000",
        ),
        (
            ev.KIND_SKIP,
            {"reason": uapi.MULTIC_TRACE_NOT_LOCAL},
            "left alone: 10.0.0.12 is not an address of this host",
        ),
        (ev.KIND_SKIP, {"reason": uapi.MULTIC_TRACE_NOMEM}, "dropped: out of memory"),
        (
            ev.KIND_UNMARKED,
            {"tos": 0, "marker": 0xE0},
            "not restored: TOS 0x00 arrived, the marker is 0xe0 (the network rewrote it)",
        ),
    ],
)
def test_each_receiver_event_in_words(kind, fields, words):
    common = {"group": "239.1.1.1", "addr": "10.0.0.1", "peer": "10.0.0.12", "sport": 40000}
    event = feed(ev.Joiner(ev.Clock()), kind, port=5000, **{**common, **fields})
    assert isinstance(event, ev.Received)
    assert event.words().startswith("10.0.0.1:40000 -> 10.0.0.12:5000 ")
    assert words in event.words()
    assert ev.line(event).split(" ", 2)[1] == "receiver"


def test_the_summary_counts_per_side_group_and_reason():
    joiner, summary = ev.Joiner(ev.Clock()), ev.Summary()
    common = {"group": "239.1.1.1", "addr": "10.0.0.1", "port": 5000}
    for _ in range(3):
        feed(joiner, ev.KIND_NOT_SENT, peer="10.0.0.13", reason=uapi.MULTIS_TRACE_TOO_BIG, **common)
        fanout = feed(joiner, ev.KIND_FANOUT, members=3, sent=2, **common)
        assert fanout is not None
        summary.add(fanout)
    skip = feed(joiner, ev.KIND_SKIP, addr="10.0.0.1", port=5000, reason=0)
    assert skip is not None
    summary.add(skip)
    rows = {(r["side"], r["group"], r["what"]): r["count"] for r in summary.take()}
    assert rows == {
        ("sender", "239.1.1.1", "datagrams"): 3,
        ("sender", "239.1.1.1", "copies"): 6,
        ("sender", "239.1.1.1", "too_big"): 3,
        ("receiver", "10.0.0.1:5000", "no_entry"): 1,
    }
    assert summary.take() == []


def test_filters_are_compiled_in():
    flags = probe.Filters(
        sides=("sender",), netns=7, group="239.1.1.1", server="10.0.0.1", port=5000
    ).cflags()
    group = struct.unpack("=I", socket.inet_aton("239.1.1.1"))[0]
    assert f"-DFILTER_GROUP={group}U" in flags
    assert "-DSENDER" in flags
    assert "-DRECEIVER" not in flags
    assert {"-DFILTER_NETNS=7U", "-DFILTER_PORT=5000"} <= set(flags)
    assert "-DDROPS_ONLY" not in flags
    every = probe.Filters(sides=("receiver", "sender"), netns=None, drops_only=True).cflags()
    assert not [f for f in every if f.startswith("-DFILTER_")]
    assert "-DDROPS_ONLY" in every


def test_without_bcc_one_line_names_the_package(monkeypatch, tmp_path):
    def no_module(name: str) -> None:
        raise ImportError(name)

    monkeypatch.setattr(probe.importlib, "import_module", no_module)
    monkeypatch.setattr(probe, "system_sites", lambda: [str(tmp_path)])
    with pytest.raises(probe.MissingDependency, match="apt-get install python3-bpfcc"):
        probe.import_bcc()


def test_preflight_refusals_in_order(monkeypatch, tmp_path):
    monkeypatch.setattr(probe.os, "geteuid", lambda: 1000)
    with pytest.raises(PermissionDenied, match="needs root"):
        probe.preflight(("sender",))
    monkeypatch.setattr(probe.os, "geteuid", lambda: 0)
    monkeypatch.setattr(probe, "TRACEFS", (tmp_path / "tracing",))
    with pytest.raises(probe.MissingDependency, match="mount -t tracefs"):
        probe.preflight(("sender",))
    (tmp_path / "tracing" / "events" / "multic").mkdir(parents=True)
    with pytest.raises(ModuleNotLoaded, match="multis"):
        probe.preflight(("sender",))
    assert probe.loaded_sides(("receiver", "sender")) == ("receiver",)


def test_bad_filters_are_refused_before_anything_else():
    result = CliRunner().invoke(cli_proxy.cli, ["trace", "-m", "239.1.1"])
    assert result.exit_code == 2
    assert "group '239.1.1' is not a valid IPv4 address" in result.output
    result = CliRunner().invoke(cli_proxy.cli, ["trace", "-p", "70000"])
    assert result.exit_code == 2


def test_an_unknown_namespace_is_refused():
    result = CliRunner().invoke(cli_proxy.cli, ["trace", "--netns", "no-such-ns"])
    assert result.exit_code == 2
    assert "--netns no-such-ns: no network namespace at /run/netns/no-such-ns" in result.output
    result = CliRunner().invoke(cli_proxy.cli, ["trace", "--netns", "x", "--all-netns"])
    assert result.exit_code == 2
