"""Multi-fidelity: evaluate on growing slices, stop the hopeless early.

A trial is evaluated on the first ``rungs[0]`` fraction of the validation
set, then the next, and so on. After each rung but the last it is *hopeless*
when a finished trial dominates even an optimistic view of it: its accuracy
raised by ``z`` (0.5) standard errors (accuracy is what a small slice measures
poorly), its cost and latency per example as measured (those are stable
after a few examples). A Pareto-aware rule matters here: pruning on accuracy
alone would throw away the cheap end of the front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dspex_lab.errors import ConfigurationError
from dspex_lab.optimize._objectives import Objective
from dspex_lab.optimize._pareto import dominates

__all__ = ["DEFAULT_RUNGS", "MIN_RUNG_EXAMPLES", "Pruner", "rung_sizes"]

DEFAULT_RUNGS: tuple[float, ...] = (0.2, 0.5, 1.0)
MIN_RUNG_EXAMPLES = 8
"""A rung smaller than this says too little to prune on; such rungs are merged."""


def rung_sizes(n: int, rungs: Sequence[float] | None) -> tuple[int, ...]:
    """Cumulative example counts per rung for ``n`` examples (always ends with ``n``)."""
    if not rungs:
        return (n,)
    fractions = sorted(float(r) for r in rungs)
    if fractions[0] <= 0 or fractions[-1] > 1:
        raise ConfigurationError(f"pruning rungs are fractions in (0, 1], not {list(rungs)}")
    sizes: list[int] = []
    for fraction in fractions:
        size = max(1, round(n * fraction))
        if size < MIN_RUNG_EXAMPLES or (sizes and size - sizes[-1] < MIN_RUNG_EXAMPLES // 2):
            continue
        sizes.append(min(size, n))
    if not sizes or sizes[-1] != n:
        sizes.append(n)
    return tuple(sorted(set(sizes)))


@dataclass
class Pruner:
    """Decides whether a partly evaluated trial is dominated beyond doubt."""

    objectives: Sequence[Objective]
    z: float = 0.5

    def optimistic(self, values: Mapping[str, float | None], stderr: float
                   ) -> tuple[float, ...] | None:
        """The partial values as a minimization vector, accuracy given the benefit of the
        doubt (None when a value is unknown: never prune on missing data)."""
        out: list[float] = []
        for obj in self.objectives:
            value = values.get(obj.name)
            if value is None:
                return None
            if obj.name == "accuracy":
                value = value + self.z * stderr if obj.maximize else value - self.z * stderr
            out.append(-value if obj.maximize else value)
        return tuple(out)

    def vector(self, values: Mapping[str, float | None]) -> tuple[float, ...] | None:
        out: list[float] = []
        for obj in self.objectives:
            value = values.get(obj.name)
            if value is None:
                return None
            out.append(-value if obj.maximize else value)
        return tuple(out)

    def hopeless(self, values: Mapping[str, float | None], stderr: float,
                 finished: Sequence[Mapping[str, float | None]]) -> bool:
        """True when some finished trial dominates the optimistic partial values."""
        mine = self.optimistic(values, stderr)
        if mine is None:
            return False
        for other in finished:
            theirs = self.vector(other)
            if theirs is not None and dominates(theirs, mine):
                return True
        return False
