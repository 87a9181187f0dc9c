"""Reading spec YAML nodes: typed values, diagnostics at their marks, positions in scalars.

:class:`NodeReader` is the base of the spec parser: it turns composed YAML
nodes (``yaml.compose``) into Python values, reports a :class:`Diagnostic`
at a node's line and column when a value is wrong, and maps a character
offset inside a scalar (a constraint's column, a signature's column) back to
the line and column of the spec text.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from dspex_lab.variables._diagnostics import Diagnostic, Severity

__all__ = ["BAD", "TAG", "NodeReader", "describe", "is_num", "objective_direction", "same",
           "suggest"]

LINE_BREAK = re.compile(r"\r\n|[\r\n\x85\u2028\u2029]")
TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_STR = TAG + "str"
BAD: Any = object()  # a value already reported as wrong
_MAX_DEPTH = 40


def objective_direction(name: str) -> str:
    """The usual direction of an objective: ``max`` for accuracy, ``min`` otherwise."""
    return "max" if name == "accuracy" else "min"


def suggest(word: str, candidates: Sequence[str], cutoff: float = 0.6) -> str | None:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=cutoff)
    return close[0] if close else None


def describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        return f"text ({value!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)



def same(a: Any, b: Any) -> bool:
    """Equality of choices: null only equals null, booleans never equal numbers."""
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    return bool(a == b)


class NodeReader:
    """Shared state and node helpers of the spec parser (see ``_spec_parse``)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lines = LINE_BREAK.split(text)
        self.diags: list[Diagnostic] = []
        self.constructor = yaml.constructor.SafeConstructor()
        self.fields: dict[str, Any] = {}
        self.var_nodes: dict[str, tuple[Node, Node]] = {}
        self.choice_nodes: dict[tuple[str, int], Node] = {}
        self.when_nodes: dict[str, Node] = {}
        self.constraint_nodes: list[Node] = []
        self.key_nodes: dict[str, tuple[Node, Node]] = {}
        self.sub_nodes: dict[tuple[str, str], tuple[Node, Node]] = {}
        self.expr_errors = False
        self.cache: dict[str, Any] = {}  # shared with the Spec: its space and analysis

    # -- reporting ----------------------------------------------------------------
    def diag(self, where: Node | tuple[int, int] | Any, severity: Severity, kind: str,
             message: str, fix: str | None = None) -> None:
        if isinstance(where, tuple):
            line, col = where
        elif isinstance(where, Node):
            line, col = where.start_mark.line, where.start_mark.column
        elif where is not None and hasattr(where, "line"):
            line, col = where.line, where.column
        else:
            line, col = 0, 0
        source = self.lines[line] if 0 <= line < len(self.lines) else ""
        d = Diagnostic(line + 1, col + 1, severity, kind, message, fix, source)
        if d not in self.diags:
            self.diags.append(d)

    def error(self, where: Any, kind: str, message: str, fix: str | None = None) -> None:
        self.diag(where, "error", kind, message, fix)

    def warn(self, where: Any, kind: str, message: str, fix: str | None = None) -> None:
        self.diag(where, "warning", kind, message, fix)

    def has_errors(self) -> bool:
        return any(d.is_error for d in self.diags)

    # -- values ---------------------------------------------------------------------
    def py(self, node: Node, depth: int = 0) -> Any:
        """The Python value of a node, or ``BAD`` after reporting why it has none."""
        if depth > _MAX_DEPTH:
            self.error(node, "wrong-type", "the value is nested too deeply (or refers to itself)")
            return BAD
        if isinstance(node, ScalarNode):
            if node.tag not in _SCALAR_TAGS:
                self.error(node, "bad-value", f"unsupported YAML tag {node.tag!r}",
                           "remove the tag")
                return BAD
            if node.tag == _STR:
                return node.value
            try:
                value = self.constructor.construct_object(node)
            except Exception as exc:
                self.error(node, "wrong-type", f"cannot read {node.value!r}: {exc}")
                return BAD
            if node.tag == TAG + "timestamp":
                return node.value  # a date is text here
            return value
        if isinstance(node, SequenceNode):
            if node.tag != TAG + "seq":
                self.error(node, "bad-value", f"unsupported YAML tag {node.tag!r}",
                           "remove the tag")
                return BAD
            items = [self.py(item, depth + 1) for item in node.value]
            return BAD if any(i is BAD for i in items) else items
        if isinstance(node, MappingNode):
            if node.tag != TAG + "map":
                self.error(node, "bad-value", f"unsupported YAML tag {node.tag!r}",
                           "remove the tag")
                return BAD
            out: dict[Any, Any] = {}
            for k, v in node.value:
                key = self.py(k, depth + 1)
                value = self.py(v, depth + 1)
                if key is BAD or value is BAD:
                    return BAD
                try:
                    out[key] = value
                except TypeError:
                    self.error(k, "wrong-type", "a mapping key must be a simple value")
                    return BAD
            return out
        return BAD  # pragma: no cover - composer only makes these three

    def text_of(self, node: Node, what: str, *, lenient: bool = False) -> str | None:
        """A text value; ``lenient`` also accepts a plain number or boolean as its text."""
        value = self.py(node)
        if value is BAD:
            return None
        if isinstance(value, str):
            return value
        if lenient and isinstance(node, ScalarNode) and value is not None:
            return str(node.value)
        fix = f"quote it: '{node.value}'" if isinstance(node, ScalarNode) and node.value else None
        self.error(node, "wrong-type", f"{what} must be text, not {describe(value)}", fix)
        return None

    def number_of(self, node: Node, what: str, *, integer: bool = False) -> float | int | None:
        value = self.py(node)
        if value is BAD:
            return None
        if integer and (not isinstance(value, int) or isinstance(value, bool)):
            self.error(node, "wrong-type", f"{what} must be an integer, not {describe(value)}")
            return None
        if not is_num(value):
            self.error(node, "wrong-type", f"{what} must be a number, not {describe(value)}")
            return None
        if isinstance(value, float) and not math.isfinite(value):
            self.error(node, "bad-value", f"{what} must be finite, not {value!r}")
            return None
        result: float | int = value
        return result

    def key_name(self, key: Node) -> str | None:
        if isinstance(key, ScalarNode) and key.tag != TAG + "merge":
            return str(key.value)
        if isinstance(key, ScalarNode):
            self.error(key, "bad-value", "YAML merge keys (<<) are not supported in a spec",
                       "write the keys out")
        else:
            self.error(key, "wrong-type", "a key must be a plain name, not a list or mapping")
        return None

    def mapping(self, node: Node, what: str, allowed: Sequence[str], fix: str | None = None,
                hint: Callable[[str], str | None] | None = None) -> dict[str, tuple[Node, Node]]:
        """The (key node, value node) of each allowed key of a mapping (the last of
        duplicates); unknown keys are reported with a did-you-mean."""
        if not isinstance(node, MappingNode):
            value = self.py(node)
            if value is not BAD:
                self.error(node, "wrong-type", f"{what} must be a mapping, not "
                           f"{describe(value)}", fix)
            return {}
        entries: dict[str, tuple[Node, Node]] = {}
        for k, v in node.value:
            key = self.key_name(k)
            if key is None:
                continue
            if key not in allowed:
                special = hint(key) if hint else None
                close = suggest(key, allowed)
                if special:
                    self.error(k, "unknown-key", special)
                else:
                    self.error(k, "unknown-key", f"unknown key {key!r} in {what}."
                               + (f" Did you mean {close!r}?" if close else "")
                               + f" Valid keys: {', '.join(allowed)}.", close)
                continue
            entries[key] = (k, v)
        return entries

    # -- positions inside a scalar ------------------------------------------------------
    def expr_pos(self, node: Node, offset: int) -> tuple[int, int]:
        """The (line, column), 0-based, of character ``offset`` of a scalar's value."""
        sm, em = node.start_mark, node.end_mark
        style = getattr(node, "style", None)
        value = str(getattr(node, "value", ""))
        if style in ("|", ">"):
            first = sm.line + 1
            content = self.lines[first:em.line + 1]
            indent = next((len(line) - len(line.lstrip(" ")) for line in content
                           if line.strip()), 0)
            if style == "|":
                before = value[:offset]
                line = first + before.count("\n")
                col = indent + len(before) - (before.rfind("\n") + 1)
                return line, col
            return sm.line, sm.column
        if sm.line == em.line:
            if style in ("'", '"'):
                raw = self.lines[sm.line][sm.column + 1:em.column - 1] \
                    if sm.line < len(self.lines) else ""
                if raw == value:
                    return sm.line, sm.column + 1 + offset
                return sm.line, sm.column + 1 + min(offset, len(raw))
            return sm.line, sm.column + offset
        # a plain or quoted scalar folded over several lines: find the line by its words
        pos, line, col = 0, sm.line, sm.column + (1 if style in ("'", '"') else 0)
        for i in range(sm.line, em.line + 1):
            text = self.lines[i] if i < len(self.lines) else ""
            start = col if i == sm.line else len(text) - len(text.lstrip())
            segment = text[start:].rstrip()
            if pos + len(segment) >= offset:
                return i, start + (offset - pos)
            pos += len(segment) + 1
            line = i
        return line, col

    def check_model(self, node: Node, text: str) -> bool:
        if "/" not in text or text.startswith("/") or text.endswith("/"):
            self.error(node, "bad-value", f"{text!r} is not a model name like 'sim/small' or "
                       f"'openai/gpt-4o-mini' (provider/name)")
            return False
        from dspex_lab.variables._estimate import model_info, suggest_model

        if not model_info(text).known:
            close = suggest_model(text)
            self.warn(node, "unknown-model", f"model {text!r} is in neither the price map nor "
                      f"the built-in catalogue: its cost is unknown."
                      + (f" Did you mean {close!r}?" if close else ""),
                      close or "dx.set_price(model, per_million_in=..., per_million_out=...)")
        return True
