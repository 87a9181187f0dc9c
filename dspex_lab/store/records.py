"""Records that later layers put on the event bus for the store to keep.

The optimizer (issue 5) reports runs and trials, and whoever defines a
program or a variable space reports it once; the store's writer turns each
event into a row. Each event carries the *whole* current state of the thing
(a trial that went from ``running`` to ``completed`` is emitted again in
full), and the row with the same id is replaced.

=================  ==================  ===================
event kind          record              table (key)
=================  ==================  ===================
``run.*``           :class:`RunRecord`      ``runs`` (run_id)
``trial.*``         :class:`TrialRecord`    ``trials`` (trial_id)
``store.program``   :class:`ProgramRecord`  ``programs`` (program_id)
``store.space``     :class:`SpaceRecord`    ``variable_spaces`` (space_id)
=================  ==================  ===================

A plain ``dict`` with the same field names is accepted too. Values must be
JSON-friendly (anything else is stored as its ``str``); keys that name
secrets (``api_key``, ``authorization``, ``headers``, ...) are dropped from
every mapping before it is written.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "STANDARD_OBJECTIVES",
    "ProgramRecord",
    "RunRecord",
    "SpaceRecord",
    "TrialRecord",
]

STANDARD_OBJECTIVES: tuple[dict[str, str], ...] = (
    {"name": "accuracy", "direction": "maximize"},
    {"name": "cost", "direction": "minimize"},
    {"name": "latency_s", "direction": "minimize"},
)
"""The objectives a run has when it names none: the metric's mean, dollars per
example and seconds per example (both computed from *uncached* cost and latency)."""


@dataclass(slots=True)
class RunRecord:
    """One optimization run (kinds ``run.started``, ``run.finished``, ...).

    ``objectives`` lists ``{"name": ..., "direction": "maximize"|"minimize"}``;
    the named queries read each trial's value of each objective from
    :attr:`TrialRecord.values`. ``state``: ``running``, ``finished``,
    ``stopped`` or ``failed``; ``stop_reason`` says why it ended.
    """

    run_id: str
    name: str | None = None
    program_id: str | None = None
    space_id: str | None = None
    strategy: str | None = None
    strategy_reason: str | None = None
    objectives: list[dict[str, str]] = field(
        default_factory=lambda: [dict(o) for o in STANDARD_OBJECTIVES])
    budget: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    state: str = "running"
    stop_reason: str | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class TrialRecord:
    """One trial of a run (kinds ``trial.started``, ``trial.completed``,
    ``trial.pruned``, ``trial.failed``).

    ``params`` is the configuration the sampler chose (variable name ->
    value). ``values`` maps objective names to the trial's values; the
    standard ones also land in the typed columns ``accuracy``, ``cost`` and
    ``latency_s``. ``metrics`` holds anything else worth keeping (confidence
    interval, failed examples, ...). ``fidelity`` is the fraction of the
    validation set evaluated (multi-fidelity); ``spent`` the dollars actually
    paid (cache hits cost nothing, unlike ``values["cost"]``).
    """

    trial_id: str
    run_id: str
    number: int
    state: str = "running"
    params: dict[str, Any] = field(default_factory=dict)
    values: dict[str, float | None] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    fidelity: float | None = None
    n_examples: int | None = None
    lm_calls: int | None = None
    spent: float | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ProgramRecord:
    """A program definition (kind ``store.program``): its signature and spec."""

    program_id: str
    name: str
    kind: str | None = None
    signature: str | None = None
    definition: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class SpaceRecord:
    """A variable space (kind ``store.space``): variables and constraints as data."""

    space_id: str
    program_id: str | None = None
    name: str | None = None
    variables: list[dict[str, Any]] | dict[str, Any] = field(default_factory=list)
    constraints: list[Any] = field(default_factory=list)
    created_at: float = field(default_factory=time.time)
    tags: dict[str, str] = field(default_factory=dict)
