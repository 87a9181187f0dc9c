"""Trace context: which program call (and trial, later) an LM call belongs to.

A ``contextvars`` variable survives ``await`` and is copied into every task
created from it, so an LM call made anywhere inside a program call links to
it without passing ids around by hand.
"""

from __future__ import annotations

import contextvars
import os
from dataclasses import dataclass

__all__ = ["Span", "current_span", "new_id", "span_scope"]


def new_id() -> str:
    """A random 16-hex-digit id: unique enough for a local log, cheap to make."""
    return os.urandom(8).hex()


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: str
    span_id: str
    tags: tuple[tuple[str, str], ...] = ()


_current: contextvars.ContextVar[Span | None] = contextvars.ContextVar(
    "dspex_span", default=None)


def current_span() -> Span | None:
    return _current.get()


class span_scope:
    """Make ``span`` the current span inside a ``with`` block."""

    def __init__(self, span: Span) -> None:
        self._span = span
        self._token: contextvars.Token[Span | None] | None = None

    def __enter__(self) -> Span:
        self._token = _current.set(self._span)
        return self._span

    def __exit__(self, *exc: object) -> None:
        assert self._token is not None
        _current.reset(self._token)


def child_span(tags: tuple[tuple[str, str], ...] = ()) -> tuple[Span, str | None]:
    """A new span under the current one (or a new trace); returns (span, parent_id)."""
    parent = _current.get()
    if parent is None:
        return Span(new_id(), new_id(), tags), None
    return Span(parent.trace_id, new_id(), tags or parent.tags), parent.span_id
