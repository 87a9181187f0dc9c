"""The record a program call reports on the event bus (kinds ``program.*``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ProgramCallRecord"]


@dataclass(slots=True)
class ProgramCallRecord:
    """One call of a module or program; LM calls under it share ``trace_id``
    and name this ``call_id`` as their ``parent_id``."""

    call_id: str
    trace_id: str
    parent_id: str | None
    module: str
    kind: str
    inputs: dict[str, Any]
    config: dict[str, Any]
    started_at: float
    ended_at: float | None = None
    outputs: dict[str, Any] | None = None
    cost: float | None = None
    latency_s: float | None = None
    lm_calls: int = 0
    error_kind: str | None = None
    error_message: str | None = None
    raw_text: str | None = None
    adapter_used: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
