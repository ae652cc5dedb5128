"""multicast_admin/uapi.py must equal the C header, name for name and value for value."""

import re
from pathlib import Path

import pytest
from cheader import parse_constants

from multicast_admin import uapi

HEADER = Path(__file__).resolve().parents[2] / "kernel/include/uapi/linux/multicast_proxy.h"
INCLUDE_GUARD = "_UAPI_LINUX_MULTICAST_PROXY_H"
CONSTANT = re.compile(r"^_*[A-Z][A-Z0-9_]*$")


def header_constants() -> dict:
    return parse_constants(HEADER.read_text())


def python_constants() -> dict:
    return {
        name: value
        for name, value in vars(uapi).items()
        if CONSTANT.match(name) and isinstance(value, (int, str))
    }


def test_header_exists_and_parses():
    constants = header_constants()
    assert constants["MULTIS_GENL_NAME"] == "multis"
    assert INCLUDE_GUARD not in constants
    assert len(constants) > 50


def test_every_header_constant_is_mirrored_with_its_value():
    python = python_constants()
    missing = sorted(set(header_constants()) - set(python))
    assert not missing, f"in the header but not in uapi.py: {missing}"
    wrong = {
        name: (value, python[name])
        for name, value in header_constants().items()
        if python[name] != value
    }
    assert not wrong, f"(header, python) values differ: {wrong}"


def test_python_has_no_constant_the_header_lacks():
    extra = sorted(set(python_constants()) - set(header_constants()))
    assert not extra, f"in uapi.py but not in the header: {extra}"


def test_value_types_match():
    python = python_constants()
    for name, value in header_constants().items():
        assert type(python[name]) is type(value), name


# The parser itself: the parity test is only as good as it.


def test_parser_counts_enums_like_c():
    text = """
    /* a comment with enum x { NOT_ME }; inside */
    enum e {
        A,          // 0
        B = 5,
        C,          /* 6 */
        D = C + 2,
        E,
    };
    #define F (1U << 3)
    #define G (F | 0x1UL)
    #define H "name"
    #define GUARD
    """
    assert parse_constants(text) == {
        "A": 0,
        "B": 5,
        "C": 6,
        "D": 8,
        "E": 9,
        "F": 8,
        "G": 9,
        "H": "name",
    }


def test_parser_refuses_what_it_does_not_understand():
    with pytest.raises(ValueError, match="function-like"):
        parse_constants("#define F(x) ((x) + 1)\n")
    with pytest.raises(ValueError, match="unsupported"):
        parse_constants("#define F sizeof(int)\n")


def test_parser_sees_a_drift(tmp_path):
    drifted = HEADER.read_text().replace("MULTIS_A_PAD,", "MULTIS_A_PAD,\n\tMULTIS_A_NEW,", 1)
    constants = parse_constants(drifted)
    assert constants["MULTIS_A_NEW"] == 2
    assert constants["MULTIS_A_GROUP_ADDR"] == uapi.MULTIS_A_GROUP_ADDR + 1
