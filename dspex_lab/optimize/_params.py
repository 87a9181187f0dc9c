"""Variables as Optuna parameters, and back.

Optuna samples plain parameters; a :class:`~dspex_lab.variables.Space` has
conditional variables and demo sets. The mapping here walks the space in
dependency order and asks the trial only for the variables that are active
(define-by-run), so samplers see the space's real tree structure.

Demos: with ``select="first"`` a demos variable is one integer parameter (how
many). With ``select="subset"`` it is two: ``<name>:k`` (how many) and
``<name>:set`` (which of :data:`DEMO_SETS` fixed, seeded subsets of that size),
the way MIPRO-style optimizers tune "which demo set" as one categorical choice
instead of an intractable subset.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dspex_lab.variables import Categorical, Demos, Float, Int, Space, Variable

if TYPE_CHECKING:
    import optuna

__all__ = ["DEMO_SETS", "assignment_key", "demo_subset", "suggest", "to_params"]

DEMO_SETS = 8
"""Candidate subsets per demo count for ``select="subset"`` demos variables."""


def demo_subset(var: Demos, k: int, index: int) -> tuple[int, ...]:
    """The ``index``-th fixed subset of ``k`` pool indices (seeded by name, k and index)."""
    n = var.n_pool
    if k <= 0:
        return ()
    combos = math.comb(n, k)
    index %= min(DEMO_SETS, combos)
    if index == 0:
        return tuple(range(k))
    rng = random.Random(f"{var.name}:{k}:{index}")
    return tuple(sorted(rng.sample(range(n), k)))


def _suggest_one(trial: optuna.trial.Trial, var: Variable) -> Any:
    name = var.name
    if isinstance(var, Categorical):
        return trial.suggest_categorical(name, list(var.choices))
    if isinstance(var, Float):
        if var.step is not None:
            value = trial.suggest_float(name, var.low, var.high, step=var.step)
            return round(value, 12)
        return trial.suggest_float(name, var.low, var.high, log=var.log)
    if isinstance(var, Int):
        return trial.suggest_int(name, int(var.low), int(var.high), step=int(var.step or 1),
                                 log=var.log)
    if isinstance(var, Demos):
        if var.select == "first":
            return tuple(range(trial.suggest_int(name, var.k_low, var.k_high)))
        k = trial.suggest_int(f"{name}:k", var.k_low, var.k_high)
        index = trial.suggest_int(f"{name}:set", 0, DEMO_SETS - 1) if k else 0
        return demo_subset(var, k, index)
    raise TypeError(f"cannot sample variable {var!r}")  # pragma: no cover - closed set


def suggest(trial: optuna.trial.Trial, space: Space) -> dict[str, Any]:
    """An assignment drawn through ``trial``: active variables only, in dependency order."""
    assignment: dict[str, Any] = {}
    for name in space.order:
        cond = space.conditions.get(name)
        if cond is not None and not cond.evaluate(space.env(assignment)):
            continue
        assignment[name] = _suggest_one(trial, space.variables[name])
    return {n: assignment[n] for n in space.variables if n in assignment}


def to_params(space: Space, assignment: Mapping[str, Any]) -> dict[str, Any]:
    """The Optuna parameters that :func:`suggest` would turn into ``assignment`` (to
    enqueue a known configuration: a grid point, a warm start, a resumed trial)."""
    params: dict[str, Any] = {}
    for name, value in assignment.items():
        var = space.variables[name]
        if isinstance(var, Demos):
            k = len(value)
            if var.select == "first":
                params[name] = k
                continue
            params[f"{name}:k"] = k
            if k:
                wanted = tuple(sorted(value))
                params[f"{name}:set"] = next(
                    (i for i in range(DEMO_SETS) if demo_subset(var, k, i) == wanted), 0)
        else:
            params[name] = value
    return params


def assignment_key(assignment: Mapping[str, Any]) -> str:
    """A canonical text of an assignment: equal configurations, equal keys."""
    parts = []
    for name in sorted(assignment):
        value = assignment[name]
        if isinstance(value, list):
            value = tuple(value)
        if isinstance(value, float):
            value = round(value, 9)
        parts.append(f"{name}={value!r}")
    return "|".join(parts)
