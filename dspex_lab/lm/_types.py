"""Plain records the LM layer returns and reports.

Slotted dataclasses: one is built per call on the hot path, so they must be
cheap, and they must hold no secret (no API key, no auth header) because they
travel to the event bus, the store and the notebook.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["LMCallRecord", "LMResponse", "Usage"]


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class LMResponse:
    """What one successful completion returned, with what it cost.

    ``latency_s`` is the latency we account for: the provider-reported figure
    when the endpoint reports one (the simulator runs faster than the latency
    it simulates), else the measured wall time; ``wall_s`` is always measured.
    ``cost`` is ``None`` when the model's price is unknown.
    """

    text: str
    model: str
    provider: str
    usage: Usage
    cost: float | None
    latency_s: float
    wall_s: float
    attempts: int = 1
    finish_reason: str | None = None
    cache_hit: bool = False
    call_id: str = ""
    uncached_cost: float | None = None
    uncached_latency_s: float | None = None

    @property
    def objective_cost(self) -> float | None:
        """What the call costs when not cached: optimizers use this, never ``cost``."""
        return self.uncached_cost if self.cache_hit else self.cost

    @property
    def objective_latency_s(self) -> float:
        return (self.uncached_latency_s if self.cache_hit and self.uncached_latency_s
                is not None else self.latency_s)


@dataclass(slots=True)
class LMCallRecord:
    """One attempt at one LM call, as reported on the event bus (kind ``lm.*``)."""

    call_id: str
    trace_id: str
    parent_id: str | None
    model: str
    provider: str
    messages: list[Any]
    params: dict[str, Any]
    attempt: int
    started_at: float
    ended_at: float | None = None
    text: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None
    latency_s: float | None = None
    wall_s: float | None = None
    cache_hit: bool = False
    uncached_cost: float | None = None       # on a cache hit: what the original call cost
    uncached_latency_s: float | None = None  # on a cache hit: the original latency
    finish_reason: str | None = None
    error_kind: str | None = None
    error_message: str | None = None
    will_retry: bool = False
    tags: dict[str, str] = field(default_factory=dict)
