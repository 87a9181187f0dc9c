"""Multi-fidelity: evaluate on growing slices, stop the hopeless early.

A trial is evaluated on the first ``rungs[0]`` fraction of the validation
set, then the next, and so on. After each rung but the last it is *hopeless*
when a finished trial dominates even an optimistic view of it: its accuracy
raised by ``z`` (0.5) standard errors (accuracy is what a small slice measures
poorly), its cost and latency per example as measured (those are stable
after a few examples). A trial is hopeless too when even that optimistic view would add
less than ``min_gain`` (0.5%) of the front's hypervolume: it could only sit on
the front by a hair. A Pareto-aware rule matters here: pruning on accuracy
alone would throw away the cheap end of the front.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dspex_lab.errors import ConfigurationError
from dspex_lab.optimize._objectives import Objective, minimization_vector
from dspex_lab.optimize._pareto import dominates, hypervolume_gains

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
    min_gain: float = 0.005
    finished_z: float = 0.25
    gain_from: float = 0.0

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
        return minimization_vector(values, self.objectives)

    def verdict(self, values: Mapping[str, float | None], stderr: float,
                finished: Sequence[Mapping[str, float | None]], fraction: float = 1.0
                ) -> str | None:
        """Why the trial is hopeless (None when it is not): some finished trial dominates
        the optimistic partial values, or, from ``gain_from`` of the validation set on,
        even those would add less than ``min_gain`` of the front's hypervolume (never
        for a trial that would be the best yet in some objective: users pick the ends
        of a front too)."""
        mine = self.optimistic(values, stderr)
        if mine is None:
            return None
        theirs = [v for v in (self.vector(f) for f in finished) if v is not None]
        if any(dominates(t, mine) for t in theirs):
            return "dominated by a finished trial even with the benefit of the doubt"
        extreme = any(mine[i] < min(t[i] for t in theirs) for i in range(len(mine))) \
            if theirs else True  # the best yet in some objective: an end of the front
        if self.min_gain > 0 and fraction >= self.gain_from and len(theirs) >= 2 \
                and not extreme:
            gain = hypervolume_gain(theirs, mine)
            if gain < self.min_gain:
                return (f"would add at most {gain:.2%} to the front's hypervolume "
                        f"(< {self.min_gain:.2%})")
        return None

    def hopeless(self, values: Mapping[str, float | None], stderr: float,
                 finished: Sequence[Mapping[str, float | None]], fraction: float = 1.0
                 ) -> bool:
        return self.verdict(values, stderr, finished, fraction) is not None


def hypervolume_gain(front: Sequence[tuple[float, ...]], point: tuple[float, ...]) -> float:
    """The share of the hypervolume of ``front + [point]`` that ``point`` alone adds, with
    every objective scaled to [0, 1] over those points and the reference at 1.1."""
    base, (gain,) = hypervolume_gains(front, [point])
    total = base + gain
    return 0.0 if total <= 0 else gain / total
