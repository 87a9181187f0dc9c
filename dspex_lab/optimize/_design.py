"""An LM-aware initial design: start from the ends of the cost range of each model.

A sampler's random start-up wastes the first trials of a small budget. For
LM programs a good prior is known before any call: cost is predictable from
the prompts (the pre-flight estimate), and a front runs from the cheapest
setup of each model to the richest (most reasoning, most demos). So a run
with ``strategy="auto"`` first tries, for each model, its cheapest and its
dearest configuration by estimate; the model-based sampler takes it from
there.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from dspex_lab.errors import DspexError
from dspex_lab.variables import Space

__all__ = ["anchor_configs"]

CANDIDATES = 2000


def _candidates(space: Space, seed: int) -> list[dict[str, Any]]:
    size = space.size
    if space.is_discrete and size is not None and size <= CANDIDATES:
        return list(space.grid())
    rng = random.Random(seed)
    out = []
    for _ in range(CANDIDATES // 4):
        try:
            out.append(space.sample(rng))
        except DspexError:
            break
    return out


def _model_of(assignment: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(assignment.items())
                    if k.rsplit(".", 1)[-1] == "model")


def anchor_configs(space: Space, cost_of: Callable[[dict[str, Any]], float | None], *,
                   limit: int, seed: int) -> list[dict[str, Any]]:
    """Up to ``limit`` assignments: per model its cheapest and its dearest configuration
    by estimated cost, alternating from the overall cheapest and the overall dearest
    inwards. Empty when nothing can be estimated."""
    if limit < 1:
        return []
    groups: dict[str, list[tuple[float, int, dict[str, Any]]]] = {}
    for i, assignment in enumerate(_candidates(space, seed)):
        cost = cost_of(assignment)
        if cost is None:
            continue
        groups.setdefault(_model_of(assignment), []).append((cost, i, assignment))
    if not groups:
        return []
    cheapest = sorted((min(g, key=lambda c: (c[0], c[1])) for g in groups.values()),
                      key=lambda c: (c[0], c[1]))
    dearest = sorted((max(g, key=lambda c: (c[0], -c[1])) for g in groups.values()),
                     key=lambda c: (-c[0], c[1]))
    out: list[dict[str, Any]] = []
    for pair in zip(cheapest, dearest, strict=True):  # both ends of the front, inwards
        for _, _, assignment in pair:
            if assignment not in out:
                out.append(assignment)
    return out[:limit]
