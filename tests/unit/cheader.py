"""A small parser for the constants of a C uapi header: enums and object-like #defines.

It understands what uapi headers use: comments, enums with implicit and explicit
values (counted the way C counts), and #define values that are integer
expressions (hex, U/UL suffixes, shifts, |, &, +, -, parentheses, names defined
earlier) or string literals.  Anything else raises, so a construct the parser
does not know cannot silently pass the parity test.
"""

from __future__ import annotations

import ast
import operator
import re
from typing import Callable, Union

Value = Union[int, str]

_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
_ENUM = re.compile(r"\benum\s+(\w+)?\s*\{(.*?)\}\s*;", re.DOTALL)
_DEFINE = re.compile(r"^[ \t]*#[ \t]*define[ \t]+(\w+)(\(?)([^\n]*)$", re.MULTILINE)
_INT_SUFFIX = re.compile(r"\b(0[xX][0-9a-fA-F]+|\d+)[uUlL]+\b")
_STRING = re.compile(r'^"((?:[^"\\]|\\.)*)"$')

_BINOPS: dict[type, Callable[[int, int], int]] = {
    ast.BitOr: operator.or_,
    ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor,
    ast.LShift: operator.lshift,
    ast.RShift: operator.rshift,
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
}


def _evaluate(expr: str, known: dict[str, Value]) -> Value:
    expr = expr.strip()
    string = _STRING.match(expr)
    if string:
        return string.group(1)
    python = _INT_SUFFIX.sub(r"\1", expr)
    tree = ast.parse(python, mode="eval")

    def walk(node: ast.AST) -> int:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            value = known[node.id]  # KeyError: used before it is defined
            if not isinstance(value, int):
                raise ValueError(f"{node.id} is not an integer")
            return value
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Invert):
            return ~walk(node.operand)
        raise ValueError(f"unsupported expression: {expr!r}")

    return walk(tree)


def parse_constants(text: str) -> dict[str, Value]:
    """Every enum member and object-like #define of a header, in source order."""
    text = _COMMENT.sub(" ", text)
    text = re.sub(r"\\\n", " ", text)  # line continuations
    items: list[tuple[int, str, str]] = []
    items.extend((m.start(), "enum", m.group(2)) for m in _ENUM.finditer(text))
    items.extend((m.start(), "define", m.group(0)) for m in _DEFINE.finditer(text))
    constants: dict[str, Value] = {}
    for _, kind, body in sorted(items):
        if kind == "enum":
            _parse_enum(body, constants)
        else:
            _parse_define(body, constants)
    return constants


def _parse_enum(body: str, constants: dict[str, Value]) -> None:
    next_value = 0
    for raw in body.split(","):
        item = raw.strip()
        if not item:
            continue
        name, _, expr = item.partition("=")
        name = name.strip()
        if not re.fullmatch(r"\w+", name):
            raise ValueError(f"cannot parse enum member {item!r}")
        value = _evaluate(expr, constants) if expr.strip() else next_value
        if not isinstance(value, int):
            raise ValueError(f"enum member {name} is not an integer")
        _add(constants, name, value)
        next_value = value + 1


def _parse_define(line: str, constants: dict[str, Value]) -> None:
    match = _DEFINE.match(line)
    assert match is not None
    name, paren, rest = match.group(1), match.group(2), match.group(3).strip()
    if paren:
        raise ValueError(f"function-like macro {name} is not supported")
    if not rest:
        return  # include guard or a feature macro without a value
    _add(constants, name, _evaluate(rest, constants))


def _add(constants: dict[str, Value], name: str, value: Value) -> None:
    if name in constants and constants[name] != value:
        raise ValueError(f"{name} defined twice with different values")
    constants[name] = value
