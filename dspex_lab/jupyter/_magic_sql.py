"""Notebook variables in ``%%dspex sql`` become bound parameters, never SQL text.

A cell may write ``{name}`` (or ``{obj.attr}``) and ``:name`` where a value
belongs. :func:`bind_references` replaces each with DuckDB's positional
placeholder ``?`` and reports what it replaced; :func:`resolve` then looks the
names up in the notebook. The value travels to DuckDB as a parameter, so
``evil = "x'; drop table runs; --"`` is compared as text and can never become
SQL (jupysql's ``{{var}}`` templating pastes values into the query: the habit
our style notes warn against).

The scanner knows enough SQL to leave alone what is not a reference: string
literals (``'...'``, ``E'...'``, ``$tag$...$tag$``), quoted identifiers,
comments, ``::`` casts, ``:=`` named arguments, slices such as ``list[1:n]``
and DuckDB struct literals (``{'a': 1}``). DuckDB's own placeholders (``?``,
``$1``, ``$name``) are detected so they are never silently mixed with ours.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["BoundQuery", "Reference", "SqlReferenceError", "bind_references", "resolve"]

_BRACED = re.compile(r"\{\s*([A-Za-z_]\w*(?:\s*\.\s*[A-Za-z_]\w*)*)\s*\}")
_COLON = re.compile(r":([A-Za-z_]\w*)")
_DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_]\w*)?\$")
_DOLLAR_PARAM = re.compile(r"\$(\d+|[A-Za-z_]\w*)")
# a ':' right after one of these ends an expression (slice, struct key, cast): no reference
_NOT_BEFORE_COLON = frozenset("'\"`)]}[:")


class SqlReferenceError(ValueError):
    """A reference that cannot be bound (unknown name, missing attribute, mixed placeholders)."""


@dataclass(frozen=True)
class Reference:
    """One ``{name}`` / ``:name`` in the query: the dotted name and where it was written."""

    name: str
    text: str
    line: int
    column: int

    def where(self) -> str:
        return f"line {self.line}, column {self.column}"


@dataclass(frozen=True)
class BoundQuery:
    """The query with ``?`` for each reference, the references in order, and whether the
    text also holds DuckDB's own placeholders (which the magic cannot fill)."""

    query: str
    references: tuple[Reference, ...]
    native_placeholder: str | None


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _skip_quoted(text: str, i: int, quote: str, backslash: bool) -> int:
    """Index just past the literal opened at ``i`` (a doubled quote stays inside)."""
    j = i + 1
    while j < len(text):
        ch = text[j]
        if backslash and ch == "\\":
            j += 2
            continue
        if ch == quote:
            if j + 1 < len(text) and text[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    return len(text)  # unterminated: DuckDB will say so


def _skip_block_comment(text: str, i: int) -> int:
    depth, j = 0, i
    while j < len(text):
        if text.startswith("/*", j):
            depth, j = depth + 1, j + 2
        elif text.startswith("*/", j):
            depth, j = depth - 1, j + 2
            if depth == 0:
                return j
        else:
            j += 1
    return len(text)


def _skip_line_comment(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _is_escape_prefix(text: str, i: int) -> bool:
    """``E'...'``: the quote at ``i`` follows a lone ``E`` (backslash escapes apply)."""
    return i >= 1 and text[i - 1] in "eE" and (i < 2 or not _is_word_char(text[i - 2]))


def _skip_literal(text: str, i: int) -> int | None:
    """If a literal or comment starts at ``i``, the index just past it; else None."""
    ch = text[i]
    if ch == "'":
        return _skip_quoted(text, i, "'", _is_escape_prefix(text, i))
    if ch in '"`':
        return _skip_quoted(text, i, ch, False)
    if text.startswith("--", i):
        return _skip_line_comment(text, i)
    if text.startswith("/*", i):
        return _skip_block_comment(text, i)
    if ch == "$" and not (i > 0 and _is_word_char(text[i - 1])):  # `a$b` is a name
        m = _DOLLAR_QUOTE.match(text, i)
        if m:
            end = text.find(m.group(0), m.end())
            return len(text) if end < 0 else end + len(m.group(0))
    return None


def _ends_expression(text: str, i: int) -> bool:
    """Whether the character before ``i`` ends an expression (``list[1:n]``, ``{'a':b}``),
    so a ``:`` at ``i`` is a slice or a key separator, not a reference."""
    return i > 0 and (_is_word_char(text[i - 1]) or text[i - 1] in _NOT_BEFORE_COLON)


def _reference_at(text: str, i: int) -> tuple[str, int] | None:
    """A ``{name}`` or ``:name`` reference starting at ``i``: (dotted name, end index)."""
    ch = text[i]
    if ch == "{":
        m = _BRACED.match(text, i)
        if m:
            return re.sub(r"\s+", "", m.group(1)), m.end()
    elif ch == ":" and not _ends_expression(text, i):
        m = _COLON.match(text, i)
        if m:
            return m.group(1), m.end()
    return None


def _native_at(text: str, i: int) -> str | None:
    """DuckDB's own placeholder at ``i`` (``?``, ``$1``, ``$name``), if any."""
    if text[i] == "?":
        return "?"
    if text[i] == "$" and not (i > 0 and _is_word_char(text[i - 1])):
        m = _DOLLAR_PARAM.match(text, i)
        if m:
            return m.group(0)
    return None


def bind_references(text: str) -> BoundQuery:
    """Replace every ``{name}`` / ``:name`` outside literals and comments by ``?``."""
    out: list[str] = []
    refs: list[Reference] = []
    native: str | None = None
    i = 0
    while i < len(text):
        skipped = _skip_literal(text, i)
        if skipped is not None:
            out.append(text[i:skipped])
            i = skipped
            continue
        if text.startswith("::", i):  # a cast: `x::int`
            out.append("::")
            i += 2
            continue
        found = _reference_at(text, i)
        if found is not None:
            name, end = found
            line, column = _position(text, i)
            refs.append(Reference(name, text[i:end], line, column))
            out.append("?")
            i = end
            continue
        native = native or _native_at(text, i)
        out.append(text[i])
        i += 1
    return BoundQuery("".join(out), tuple(refs), native)


def _lookup(name: str, namespaces: Sequence[Mapping[str, Any]]) -> tuple[bool, Any]:
    for ns in namespaces:
        if name in ns:
            return True, ns[name]
    return False, None


def _as_parameter(value: Any) -> Any:
    """A run stands for its id (``where run_id = {run}``); everything else binds as is."""
    run_module = sys.modules.get("dspex_lab.optimize._run")  # no run exists before it loads
    if run_module is not None and isinstance(value, run_module.Run):
        return value.run_id
    if hasattr(value, "__fspath__"):
        return str(value)
    return value


def _value(ref: Reference, namespaces: Sequence[Mapping[str, Any]]) -> Any:
    root, *attrs = ref.name.split(".")
    found, value = _lookup(root, namespaces)
    if not found:
        raise SqlReferenceError(
            f"{ref.text} ({ref.where()}) names no variable in the notebook: define "
            f"{root!r} first, or write it as a quoted string if you meant text.")
    for index, attr in enumerate(attrs):
        if not hasattr(value, attr):
            owner = ".".join([root, *attrs[:index]])
            raise SqlReferenceError(
                f"{ref.text} ({ref.where()}): {owner} ({type(value).__name__}) has no "
                f"attribute {attr!r}.")
        value = getattr(value, attr)
    return _as_parameter(value)


def resolve(bound: BoundQuery, namespaces: Sequence[Mapping[str, Any]]) -> list[Any] | None:
    """The parameter values in placeholder order (None when the query has no references).

    Raises :class:`SqlReferenceError` for an unknown name, a missing attribute, or a
    query that also uses DuckDB's own placeholders (their order could not be known).
    """
    if not bound.references:
        return None
    if bound.native_placeholder is not None:
        raise SqlReferenceError(
            f"the query mixes {bound.native_placeholder} (DuckDB's own placeholder) with "
            f"{bound.references[0].text}: use only {{name}} / :name references in the magic, "
            f"or call dx.sql(query, params) from Python.")
    return [_value(ref, namespaces) for ref in bound.references]
