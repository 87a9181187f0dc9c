"""Program-of-thought code the simulated model writes: real Python that prints or raises.

The first line is ``# attempt N``; a retry reads it back from ``previous_code``
to know which attempt it is (see :func:`dspex_lab.sim._reader._attempt`), so
every attempt has its own draws. Code that raises does so with a known
message (:data:`RAISES`), which is what a client's sandbox reports back.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import orjson

from dspex_lab.datasets import Item

__all__ = ["RAISES", "write_code"]

_OPS = {"+": "+", "-": "-", "*": "*", "/": "//"}

RAISES: tuple[str, ...] = ("name", "zero", "type")
"""Ways generated code fails: an undefined name, a division by zero, adding a str to an int."""


def _variable(meta: Mapping[str, Any]) -> str:
    return re.sub(r"\W+", "_", str(meta.get("object", "total"))).strip("_") or "total"


def _literal(value: Any) -> str:
    return orjson.dumps(value).decode() if not isinstance(value, str) else repr(value)


def _math_lines(item: Item) -> tuple[str, list[str]]:
    var = _variable(item.meta)
    lines = [f"{var} = {item.meta['start']}"]
    for op, n in item.meta["steps"]:
        lines.append(f"{var} = {var} {_OPS[op]} {n}")
    return var, lines


def _raise_lines(var: str, how: str) -> list[str]:
    if how == "name":
        return [f"print({var}_total)"]
    if how == "zero":
        return [f"{var} = {var} // ({var} - {var})", f"print({var})"]
    return [f"{var} = {var} + \"1\"", f"print({var})"]


def error_text(var: str, how: str) -> str:
    """The ``Type: message`` a Python sandbox reports for :func:`_raise_lines`."""
    if how == "name":
        return f"NameError: name '{var}_total' is not defined"
    if how == "zero":
        return "ZeroDivisionError: integer division or modulo by zero"
    return "TypeError: unsupported operand type(s) for +: 'int' and 'str'"


def write_code(item: Item | None, kind: str, value: Any, attempt: int, how: str) -> tuple[str, str]:
    """(code, error text or "") for an outcome ``kind`` printing ``value`` when it runs.

    ``how`` picks the failure for ``kind == "raise"`` (one of :data:`RAISES`).
    """
    header = f"# attempt {attempt}"
    if item is not None and item.task == "math":
        var, lines = _math_lines(item)
        if kind == "wrong":
            lines.append(f"{var} = {var} + ({int(value) - int(item.answer)})  # adjust")
        if kind == "raise":
            return "\n".join([header, *lines, *_raise_lines(var, how)]), error_text(var, how)
        return "\n".join([header, *lines, f"print({var})"]), ""
    if item is not None and item.task == "lookup":
        key = str(item.meta.get("capital") if item.meta.get("kind") == "country"
                  else item.meta.get("country"))
        lines = [f"answers = {{{key!r}: {value!r}}}"]
        if kind == "raise":
            wrong_key = key.lower()
            lines.append(f"print(answers[{wrong_key!r}])")
            return "\n".join([header, *lines]), f"KeyError: {wrong_key!r}"
        return "\n".join([header, *lines, f"print(answers[{key!r}])"]), ""
    var = "label" if item is not None else "result"
    lines = [f"{var} = {_literal(value)}"]
    if kind == "raise":
        return "\n".join([header, *lines, *_raise_lines(var, "name")]), error_text(var, "name")
    return "\n".join([header, *lines, f"print({var})"]), ""
