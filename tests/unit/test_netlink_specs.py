"""docs/netlink/{multis,multic}.yaml, the YNL specs, must describe the uapi header and the kernel.

Each spec is checked for the shape a genetlink-legacy spec has (the keys
and attribute types of Documentation/netlink/genetlink-legacy.yaml, listed
here: upstream's schema is not copied into this tree), then rendered to the
C names and values YNL gives them and compared with the header both ways:
every constant of a family's prefix in the header is in its spec with the
same value and every one the spec makes is in the header, the enums hold
the same members, and the constants shared by both families (the marker
TOS) agree.  The attribute types, policies and
operations are compared with the policy and genl_ops tables of the family's
netlink.c.

Naming follows YNL (a prefix plus the upper-cased name, dashes to
underscores; attribute values from 1 unless given; ``__<PREFIX>MAX`` as the
enum's last member and ``<PREFIX>MAX`` one below it).  Two conventions of
this header that YNL has no words for: the command enum starts with
``<PREFIX>UNSPEC`` (0) and a flags set has the mask ``<PREFIX>ALL``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cheader import parse_constants

ROOT = Path(__file__).resolve().parents[2]
HEADER = ROOT / "kernel/include/uapi/linux/multicast_proxy.h"
SPECS = ROOT / "docs/netlink"
#: What genetlink-legacy allows (read in upstream's schema, 6.12)
TOP_KEYS = {"name", "protocol", "uapi-header", "doc", "definitions", "attribute-sets",
            "operations", "kernel-family", "mcast-groups", "version", "c-family-name",
            "c-version-name", "max-by-define", "kernel-policy"}  # fmt: skip
ATTR_TYPES = {"unused", "pad", "flag", "binary", "bitfield32", "uint", "sint", "u8", "u16",
              "u32", "u64", "s8", "s16", "s32", "s64", "string", "nest", "indexed-array",
              "nest-type-value", "array-nest"}  # fmt: skip
OP_KEYS = {"name", "doc", "value", "attribute-set", "flags", "dont-validate", "do", "dump",
           "notify", "event", "mcgrp", "config-cond", "fixed-header"}  # fmt: skip
FAMILIES = ("multis", "multic")


def c_name(*parts: str) -> str:
    return "".join(parts).upper().replace("-", "_")


def load(family: str) -> dict[str, Any]:
    return yaml.safe_load((SPECS / f"{family}.yaml").read_text())


# ------------------------------------------------------------ rendering


def set_prefix(spec: dict, aset: dict) -> str:
    return aset.get("name-prefix", f"{spec['name']}-{aset['name']}-a-")


def op_prefix(spec: dict) -> str:
    return spec["operations"].get("name-prefix", f"{spec['name']}-cmd-")


def render(spec: dict) -> tuple[dict[str, int | str], dict[str, list[str]]]:
    """The spec's C constants (name: value) and enums (tag: member names)."""
    consts: dict[str, int | str] = {}
    enums: dict[str, list[str]] = {}

    def add(name: str, value: int | str) -> None:
        assert name not in consts, f"{spec['name']}: {name} rendered twice"
        consts[name] = value

    add(c_name(spec["c-family-name"]), spec["name"])
    add(c_name(spec["c-version-name"]), spec.get("version", 1))
    for item in spec.get("definitions", []):
        if item["type"] == "const":
            add(c_name(item["name"]), item["value"])
            continue
        if item["type"] not in ("enum", "flags"):
            raise ValueError(f"definition type {item['type']} is not rendered here")
        prefix = item.get("name-prefix", f"{spec['name']}-{item['name']}-")
        value, mask, members = item.get("value-start", 0), 0, []
        for raw in item["entries"]:
            entry = {"name": raw} if isinstance(raw, str) else raw
            value = entry.get("value", value)
            rendered = 1 << value if item["type"] == "flags" else value
            members.append(c_name(prefix, entry["name"]))
            add(members[-1], rendered)
            mask |= rendered
            value += 1
        if item["type"] == "flags":
            add(c_name(prefix, "all"), mask)
        elif "enum-name" in item:
            enums[c_name(item["enum-name"]).lower()] = members
    for aset in spec["attribute-sets"]:
        prefix = set_prefix(spec, aset)
        value, members = 1, []
        for attr in aset["attributes"]:
            value = attr.get("value", value)
            members.append(c_name(prefix, attr["name"]))
            add(members[-1], value)
            value += 1
        count = c_name(aset.get("attr-cnt-name", f"__{prefix}max"))
        add(count, value)
        add(c_name(aset.get("attr-max-name", f"{prefix}max")), value - 1)
        enums[c_name(aset["enum-name"]).lower()] = [*members, count]
    prefix = op_prefix(spec)
    members = [c_name(prefix, "unspec")]
    add(members[0], 0)
    value = 1
    for op in spec["operations"]["list"]:
        value = op.get("value", value)
        members.append(c_name(prefix, op["name"]))
        add(members[-1], value)
        value += 1
    members.append(c_name("__", prefix, "max"))
    add(members[-1], value)
    add(c_name(prefix, "max"), value - 1)
    enums[c_name(spec["operations"]["enum-name"]).lower()] = members
    return consts, enums


# ------------------------------------------------------------ the C side

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_ENUM = re.compile(r"\benum\s+(\w+)\s*\{(.*?)\}\s*;", re.DOTALL)


def header_enums(text: str) -> dict[str, list[str]]:
    text = _COMMENT.sub(" ", text)
    return {
        m.group(1): [item.split("=")[0].strip() for item in m.group(2).split(",") if item.strip()]
        for m in _ENUM.finditer(text)
    }


_POLICY_TABLE = re.compile(
    r"static const struct nla_policy (\w+)\[(\w+) \+ 1\] = \{(.*?)\n\};", re.DOTALL
)
_POLICY_ENTRY = re.compile(
    r"\[(\w+)\]\s*=\s*(\{[^}]*\}|NLA_POLICY_EXACT_LEN\(sizeof\(struct in6_addr\)\)"
    r"|NLA_POLICY_\w+\(\w+\))\s*,"
)
#: the lengths the kernel's NLA_POLICY_EXACT_LEN() entries name
_SIZES = {"sizeof(struct in6_addr)": 16}
_SCALAR = {
    "NLA_U8": ("u8", None),
    "NLA_U16": ("u16", None),
    "NLA_U32": ("u32", None),
    "NLA_U64": ("u64", None),
    "NLA_BE16": ("u16", "big-endian"),
    "NLA_BE32": ("u32", "big-endian"),
    "NLA_FLAG": ("flag", None),
}


def policy_of(value: str) -> tuple[str, str | None, str | None]:
    """(spec type, byte order, nested policy table) of one nla_policy entry; raise if unknown.

    An exact-length binary is ("binary", None, "exact-len:N").
    """
    exact = re.fullmatch(r"NLA_POLICY_EXACT_LEN\((.*)\)", value)
    if exact and exact.group(1) in _SIZES:
        return ("binary", None, f"exact-len:{_SIZES[exact.group(1)]}")
    scalar = re.fullmatch(r"\{\s*\.type\s*=\s*(NLA_\w+)\s*\}", value)
    if scalar and scalar.group(1) in _SCALAR:
        return (*_SCALAR[scalar.group(1)], None)
    nested = re.fullmatch(r"NLA_POLICY_(NESTED|NESTED_ARRAY)\((\w+)\)", value)
    if nested:
        return ("nest" if nested.group(1) == "NESTED" else "array-nest", None, nested.group(2))
    raise ValueError(f"a policy this test does not know (teach it, and the spec): {value}")


def kernel_tables(family: str) -> tuple[dict, str, dict]:
    """The policy tables {name: (max define, {attr: policy})}, the family's policy, the ops."""
    text = _COMMENT.sub(" ", (ROOT / "kernel" / family / "netlink.c").read_text())
    tables = {}
    for m in _POLICY_TABLE.finditer(text):
        entries = dict(_POLICY_ENTRY.findall(m.group(3)))
        if len(entries) != m.group(3).count("["):
            raise ValueError(f"{m.group(1)}: an entry this test cannot read: {m.group(3)}")
        tables[m.group(1)] = (m.group(2), {k: policy_of(v) for k, v in entries.items()})
    family_policy = re.search(r"\.policy\s*=\s*(\w+)\s*,", text).group(1)
    ops_body = re.search(
        r"static const struct genl_(?:small_)?ops \w+\[\] = \{(.*?)\n\};", text, re.DOTALL
    ).group(1)
    ops = {}
    for block in ops_body.split(".cmd")[1:]:
        cmd = re.match(r"\s*=\s*(\w+)", block).group(1)
        fields = dict(re.findall(r"\.(\w+)\s*=\s*(\w+)", block))
        ops[cmd] = fields
    return tables, family_policy, ops


# ------------------------------------------------------------ tests


@pytest.fixture(scope="module")
def header() -> tuple[dict, dict]:
    text = HEADER.read_text()
    return parse_constants(text), header_enums(text)


def shape_problems(spec: dict) -> list[str]:
    """What in ``spec`` a genetlink-legacy spec may not have."""
    problems = [f"top-level key {k}" for k in sorted(set(spec) - TOP_KEYS)]
    if spec.get("protocol") != "genetlink-legacy":
        problems.append(f"protocol {spec.get('protocol')!r}")
    for aset in spec.get("attribute-sets", []):
        for attr in aset.get("attributes", []):
            if attr.get("type") not in ATTR_TYPES:
                problems.append(f"{aset['name']}.{attr.get('name')}: type {attr.get('type')!r}")
    for op in spec.get("operations", {}).get("list", []):
        problems += [f"operation {op['name']}: key {k}" for k in sorted(set(op) - OP_KEYS)]
    return problems


@pytest.mark.parametrize("family", FAMILIES)
def test_the_spec_has_the_shape_of_genetlink_legacy(family):
    spec = load(family)
    assert shape_problems(spec) == []
    assert spec["name"] == family
    assert spec["uapi-header"] == "linux/multicast_proxy.h"


def test_a_spec_of_the_wrong_shape_is_seen():
    spec = load("multis")
    spec["attribute-sets"][0]["attributes"][2]["type"] = "ipv4"
    spec["operations"]["list"][0]["replies"] = {}
    assert shape_problems(spec) == [
        "multis.group-addr: type 'ipv4'",
        "operation get-group: key replies",
    ]


def assert_family_matches(family: str, spec: dict, header: tuple[dict, dict]) -> None:
    constants, enums = header
    rendered, spec_enums = render(spec)
    prefix = f"{family.upper()}_"
    in_header = {k: v for k, v in constants.items() if k.startswith(prefix)}
    in_spec = {k: v for k, v in rendered.items() if k.startswith(prefix)}
    assert sorted(set(in_header) - set(in_spec)) == [], "in the header, not in the spec"
    assert sorted(set(in_spec) - set(in_header)) == [], "in the spec, not in the header"
    wrong = {k: (in_header[k], in_spec[k]) for k in in_header if in_header[k] != in_spec[k]}
    assert wrong == {}, "(header, spec) values differ"
    shared = {k: v for k, v in rendered.items() if not k.startswith(prefix)}
    assert shared == {k: constants.get(k) for k in shared}, "a shared constant differs"
    for tag, members in spec_enums.items():
        assert enums.get(tag) == members, f"enum {tag}"
    ours = {tag for tag in enums if tag.startswith(family)}
    assert ours == set(spec_enums), "the header's enums of this family"


@pytest.mark.parametrize("family", FAMILIES)
def test_the_spec_names_every_constant_of_the_header_with_its_value(family, header):
    assert_family_matches(family, load(family), header)


def test_every_header_constant_is_in_a_spec(header):
    constants, _ = header
    covered = set()
    for family in FAMILIES:
        covered |= set(render(load(family))[0])
    assert sorted(set(constants) - covered) == []


@pytest.mark.parametrize(
    "edit",
    [
        lambda s: s["attribute-sets"][0]["attributes"].pop(),  # an attribute missing
        lambda s: s["attribute-sets"][0]["attributes"].append({"name": "new", "type": "u32"}),
        lambda s: s["operations"]["list"].insert(2, {"name": "new", "doc": "x"}),
        lambda s: s["attribute-sets"][-1]["attributes"][2].update(name="renamed"),
        lambda s: s["definitions"][-1]["entries"].append("another"),
        lambda s: s.update(version=2),
    ],
)
def test_a_drift_is_seen(edit, header):
    spec = load("multic")
    edit(spec)
    with pytest.raises(AssertionError):
        assert_family_matches("multic", spec, header)


def attr_sets(spec: dict) -> dict[str, dict]:
    return {aset["name"]: aset for aset in spec["attribute-sets"]}


def request_attributes(spec: dict, set_name: str) -> set[str]:
    names = set()
    for op in spec["operations"]["list"]:
        if op.get("attribute-set") != set_name:
            continue
        for kind in ("do", "dump"):
            names |= set(op.get(kind, {}).get("request", {}).get("attributes", []))
    return names


def assert_policies_match(family: str, spec: dict) -> None:
    tables, family_policy, _ = kernel_tables(family)
    sets = attr_sets(spec)
    by_max = {c_name(set_prefix(spec, s), "max"): s for s in sets.values()}
    table_set = {name: by_max[max_name]["name"] for name, (max_name, _) in tables.items()}
    for max_name, entries in tables.values():
        aset = by_max[max_name]
        prefix = c_name(set_prefix(spec, aset))
        attrs = {c_name(prefix, a["name"]): a for a in aset["attributes"]}
        for attr_name, (kind, order, nested) in entries.items():
            attr = attrs[attr_name]
            assert (attr["type"], attr.get("byte-order")) == (kind, order), attr_name
            if nested and nested.startswith("exact-len:"):
                length = int(nested.split(":")[1])
                assert attr.get("checks") == {"exact-len": length}, attr_name
                continue
            assert "checks" not in attr, f"{attr_name}: the kernel policy has no checks"
            if nested:
                assert attr["nested-attributes"] == table_set[nested], attr_name
    # the family's policy validates exactly what its requests carry
    aset = sets[table_set[family_policy]]
    prefix = c_name(set_prefix(spec, aset))
    requested = {c_name(prefix, name) for name in request_attributes(spec, aset["name"])}
    assert set(tables[family_policy][1]) == requested


def assert_operations_match(family: str, spec: dict) -> None:
    _, _, ops = kernel_tables(family)
    prefix = op_prefix(spec)
    spec_ops = {c_name(prefix, op["name"]): op for op in spec["operations"]["list"]}
    assert set(ops) == set(spec_ops)
    for cmd, fields in ops.items():
        op = spec_ops[cmd]
        assert ("doit" in fields) == ("do" in op), cmd
        assert ("dumpit" in fields) == ("dump" in op), cmd
        flags = {"GENL_UNS_ADMIN_PERM": ["uns-admin-perm"], "GENL_ADMIN_PERM": ["admin-perm"]}
        assert flags.get(fields.get("flags"), []) == op.get("flags", []), cmd
        start = op.get("dump", {}).get("pre")
        assert fields.get("start") == (start and start.replace("-", "_")), cmd


@pytest.mark.parametrize("family", FAMILIES)
def test_the_spec_has_the_kernel_policies(family):
    assert_policies_match(family, load(family))


@pytest.mark.parametrize("family", FAMILIES)
def test_the_spec_has_the_kernel_operations(family):
    assert_operations_match(family, load(family))


def test_a_policy_or_operation_drift_is_seen():
    spec = load("multis")
    spec["attribute-sets"][0]["attributes"][3]["type"] = "u16"  # group-flags
    with pytest.raises(AssertionError):
        assert_policies_match("multis", spec)
    spec = load("multis")
    spec["operations"]["list"][0]["do"]["request"]["attributes"].append("marker-tos")
    with pytest.raises(AssertionError):
        assert_policies_match("multis", spec)
    spec = load("multic")
    del spec["operations"]["list"][1]["flags"]  # add without the permission check
    with pytest.raises(AssertionError):
        assert_operations_match("multic", spec)


def test_an_unknown_policy_form_is_refused():
    with pytest.raises(ValueError, match="does not know"):
        policy_of("NLA_POLICY_RANGE(NLA_U16, 1, 10)")
