"""Trace context: which program call (and trial, later) an LM call belongs to.

A ``contextvars`` variable survives ``await`` and is copied into every task
created from it, so an LM call made anywhere inside a program call links to
it without passing ids around by hand.
"""

from __future__ import annotations

import contextvars
import os
from dataclasses import dataclass

__all__ = ["Meter", "Span", "child_span", "current_span", "new_id", "span_scope"]


def new_id() -> str:
    """A random 16-hex-digit id: unique enough for a local log, cheap to make."""
    return os.urandom(8).hex()


class Meter:
    """Running totals of the LM calls made under a span (and its children).

    A program call opens a meter; every successful LM call inside it adds its
    usage, so a program knows what it cost without the LM layer knowing
    anything about programs.
    """

    __slots__ = ("calls", "completion_tokens", "cost", "cost_known", "latency_s",
                 "prompt_tokens", "uncached_cost", "uncached_latency_s")

    def __init__(self) -> None:
        self.calls = 0
        self.cost = 0.0
        self.cost_known = True
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.latency_s = 0.0
        self.uncached_cost = 0.0
        self.uncached_latency_s = 0.0

    def add(self, cost: float | None, latency_s: float, prompt_tokens: int,
            completion_tokens: int, *, uncached_cost: float | None = None,
            uncached_latency_s: float | None = None) -> None:
        """Count one call. For a cache hit pass what the original call cost as
        ``uncached_*``; otherwise those equal the call's own figures."""
        self.calls += 1
        original_cost = cost if uncached_cost is None else uncached_cost
        if cost is None or original_cost is None:
            self.cost_known = False
        else:
            self.cost += cost
            self.uncached_cost += original_cost
        self.latency_s += latency_s
        self.uncached_latency_s += latency_s if uncached_latency_s is None else uncached_latency_s
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens


@dataclass(frozen=True, slots=True)
class Span:
    trace_id: str
    span_id: str
    tags: tuple[tuple[str, str], ...] = ()
    meters: tuple[Meter, ...] = ()


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


def child_span(tags: tuple[tuple[str, str], ...] = (),
               meter: Meter | None = None) -> tuple[Span, str | None]:
    """A new span under the current one (or a new trace); returns (span, parent_id).

    The child inherits the parent's tags (unless given its own) and meters,
    plus ``meter`` if given.
    """
    parent = _current.get()
    extra = (meter,) if meter is not None else ()
    if parent is None:
        return Span(new_id(), new_id(), tags, extra), None
    return (Span(parent.trace_id, new_id(), tags or parent.tags, parent.meters + extra),
            parent.span_id)
