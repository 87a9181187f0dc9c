"""What a run optimizes: named objectives with a direction, and weights to pick one point.

The standard objectives come from an evaluation: ``accuracy`` (the metric's
mean), ``cost`` (dollars per example), ``latency_s`` (seconds of LM time per
example; the spec's ``latency``) and ``tokens`` (per example). Cost and
latency use the *uncached* figures, so a configuration whose calls happened to
be cached never looks cheaper or faster than it is. A user objective is a
function of the evaluation result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dspex_lab.errors import ConfigurationError

if TYPE_CHECKING:
    from dspex_lab.programs.evaluate import EvaluationResult

__all__ = ["ALIASES", "STANDARD", "Directed", "Objective", "canonical", "minimization_vector",
           "normalize_directions", "resolve_objectives", "resolve_weights", "scalarize"]

_DIRECTIONS = {"max": "maximize", "maximize": "maximize", "min": "minimize",
               "minimize": "minimize"}


@dataclass(frozen=True)
class Objective:
    """One objective: ``name``, ``direction`` ("maximize" or "minimize") and, for a user
    objective, ``fn(result) -> float`` computed from the trial's
    :class:`~dspex_lab.programs.evaluate.EvaluationResult`."""

    name: str
    direction: str = "maximize"
    fn: Callable[[EvaluationResult], float] | None = None

    def __post_init__(self) -> None:
        direction = _DIRECTIONS.get(str(self.direction).lower())
        if direction is None:
            raise ConfigurationError(f"objective {self.name!r}: direction is 'maximize' or "
                                     f"'minimize', not {self.direction!r}")
        object.__setattr__(self, "direction", direction)
        if not self.name or not isinstance(self.name, str):
            raise ConfigurationError(f"an objective needs a name, not {self.name!r}")
        if self.fn is None and self.name not in _STANDARD_FNS:
            raise ConfigurationError(
                f"objective {self.name!r} is not a standard one ({', '.join(_STANDARD_FNS)}): "
                f"give it a function, e.g. dx.Objective({self.name!r}, 'minimize', "
                f"fn=lambda result: ...)")

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def value(self, result: EvaluationResult) -> float | None:
        """This objective's value for an evaluation (None when unknown, e.g. no price)."""
        fn = self.fn or _STANDARD_FNS[self.name]
        value = fn(result)
        if value is None:
            return None
        value = float(value)
        return value if math.isfinite(value) else None

    def worst(self) -> float:
        """A value worse than any real one (for configurations that were never run)."""
        return -1e9 if self.maximize else 1e9


def _accuracy(result: EvaluationResult) -> float:
    return result.score


def _cost(result: EvaluationResult) -> float | None:
    if result.uncached_cost is None or not result.n:
        return None
    return result.uncached_cost / result.n


def _latency(result: EvaluationResult) -> float:
    return result.uncached_latency_mean_s


def _tokens(result: EvaluationResult) -> float | None:
    counts = [r.get("tokens") for r in result.rows]
    known = [float(c) for c in counts if c is not None]
    return sum(known) / len(known) if known else None


_STANDARD_FNS: dict[str, Callable[[EvaluationResult], float | None]] = {
    "accuracy": _accuracy, "cost": _cost, "latency_s": _latency, "tokens": _tokens}

ALIASES = {"latency": "latency_s"}
"""The spec language says ``latency``; runs, trials and the store say ``latency_s``."""


def canonical(name: str) -> str:
    return ALIASES.get(name, name)

STANDARD: tuple[Objective, ...] = (Objective("accuracy", "maximize"),
                                   Objective("cost", "minimize"),
                                   Objective("latency_s", "minimize"))


def normalize_directions(objectives: Mapping[str, str]) -> dict[str, str]:
    """``{"accuracy": "max"}`` -> ``{"accuracy": "maximize"}`` (the spec's short form)."""
    return {canonical(name): _DIRECTIONS.get(str(direction).lower(), str(direction))
            for name, direction in objectives.items()}


def resolve_objectives(objectives: Any) -> tuple[Objective, ...]:
    """Accept None (the standard three), names, ``{name: direction}`` or Objective objects."""
    if objectives is None:
        return STANDARD
    items: Iterable[Any]
    if isinstance(objectives, Mapping):
        items = [Objective(canonical(str(n)), str(d)) for n, d in objectives.items()]
    elif isinstance(objectives, str | Objective):
        items = [objectives]
    else:
        items = list(objectives)
    out: list[Objective] = []
    for item in items:
        if isinstance(item, Objective):
            out.append(item)
        elif isinstance(item, str):
            item = canonical(item)
            standard = {o.name: o for o in STANDARD}
            standard["tokens"] = Objective("tokens", "minimize")
            if item not in standard:
                raise ConfigurationError(
                    f"unknown objective {item!r}: the standard ones are "
                    f"{', '.join(standard)}; pass dx.Objective(name, direction, fn=...) for "
                    f"your own")
            out.append(standard[item])
        else:
            raise ConfigurationError(f"an objective is a name or dx.Objective, not {item!r}")
    names = [o.name for o in out]
    if not out:
        raise ConfigurationError("objectives is empty: name at least one (e.g. 'accuracy')")
    if len(set(names)) != len(names):
        raise ConfigurationError(f"objectives are listed twice: {names}")
    return tuple(out)


def resolve_weights(weights: Mapping[str, float] | None,
                    objectives: Sequence[Objective]) -> dict[str, float]:
    """Check ``weights`` name known objectives and are non-negative; default: all equal."""
    names = [o.name for o in objectives]
    if not weights:
        return dict.fromkeys(names, 1.0)
    out: dict[str, float] = {}
    for raw_name, weight in weights.items():
        name = canonical(raw_name)
        if name not in names:
            raise ConfigurationError(f"weights name {name!r}, which is not an objective of "
                                     f"this run ({', '.join(names)})")
        if not isinstance(weight, int | float) or weight < 0 or not math.isfinite(weight):
            raise ConfigurationError(f"weight of {name!r} must be a number >= 0, not "
                                     f"{weight!r}")
        out[name] = float(weight)
    if not any(out.values()):
        raise ConfigurationError("every weight is 0: give at least one objective a weight > 0")
    return out


class Directed(Protocol):
    """An objective as far as fronts are concerned: a name and a direction (a run read
    back from the store has no objective functions, only these)."""

    @property
    def name(self) -> str: ...

    @property
    def maximize(self) -> bool: ...


def minimization_vector(values: Mapping[str, Any], objectives: Sequence[Directed]
                        ) -> tuple[float, ...] | None:
    """Objective values as one minimization vector (maximized ones negated), in
    ``objectives`` order; None when any value is unknown or not a finite number (such a
    point cannot be ranked)."""
    out: list[float] = []
    for obj in objectives:
        value = values.get(obj.name)
        if value is None or not isinstance(value, int | float) or not math.isfinite(value):
            return None
        out.append(-float(value) if obj.maximize else float(value))
    return tuple(out)


def scalarize(points: Sequence[Mapping[str, float | None]], objectives: Sequence[Objective],
              weights: Mapping[str, float]) -> list[float]:
    """A weighted score per point (higher is better): each objective is scaled to [0, 1]
    over ``points`` (1 = best), so weights compare like with like whatever the units."""
    scores = [0.0] * len(points)
    for obj in objectives:
        w = weights.get(obj.name, 0.0)
        if not w:
            continue
        values = [p.get(obj.name) for p in points]
        known = [v for v in values if v is not None]
        if not known:
            continue
        lo, hi = min(known), max(known)
        for i, v in enumerate(values):
            if v is None:
                continue
            unit = 1.0 if hi == lo else (v - lo) / (hi - lo)
            scores[i] += w * (unit if obj.maximize else 1.0 - unit)
    return scores
