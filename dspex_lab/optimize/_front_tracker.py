"""The Pareto front and hypervolume history of a run, kept up to date incrementally.

Completed trials never change, so whoever redraws a run several times a second (the
notebook monitor, the Panel dashboard) or asks for its history after hundreds of trials
only needs work for the trials that completed since last time: :class:`FrontTracker`
keeps the front, and recomputes hypervolumes only where the front changed, or everything
when the reference point moves. ``Run.hypervolume_history()`` uses it too, so every
picture of a run follows one definition of the reference point
(:func:`reference_from_worst`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

from dspex_lab.optimize._objectives import Directed, minimization_vector
from dspex_lab.optimize._pareto import dominates, hypervolume

__all__ = ["Directed", "FrontTracker", "TrackedTrial", "reference_from_worst"]


class TrackedTrial(Protocol):
    """What the tracker reads of a trial (``TrialInfo`` has it)."""

    @property
    def number(self) -> int: ...

    @property
    def state(self) -> str: ...

    @property
    def ended_at(self) -> float | None: ...

    @property
    def values(self) -> Any: ...


def reference_from_worst(worst: Sequence[float], objectives: Sequence[Directed]
                         ) -> tuple[float, ...]:
    """The hypervolume reference point (minimization) from the worst completed vector:
    accuracy at 0 (the worst it can be, so the reference does not move with it), every
    other objective 10% beyond its worst value (so the worst points still add volume)."""
    return tuple(0.0 if o.maximize and o.name == "accuracy" else w + 0.1 * abs(w) + 1e-12
                 for o, w in zip(objectives, worst, strict=True))


class FrontTracker:
    """The Pareto front and the hypervolume history of completed trials, kept up to date
    incrementally (a trial, once completed, never changes).

    ``update(trials)`` takes any snapshot of a run's trials (running ones are ignored);
    ``front`` is the set of trial numbers no completed trial dominates (equal points are
    all kept, like ``Run.front_trials()``); ``history()`` the hypervolume after each
    completed trial in completion order, against the current reference point.
    """

    def __init__(self, objectives: Sequence[Directed]) -> None:
        self.objectives = tuple(objectives)
        self._keys: list[tuple[float, int]] = []          # (ended_at, number), sorted
        self._vectors: list[tuple[float, ...] | None] = []
        self._ended: list[float] = []
        self._seen: set[int] = set()
        self._worst: list[float] | None = None
        self._ref: tuple[float, ...] | None = None
        self._hv: list[float] = []                        # valid for a prefix of _keys
        self._hv_front: list[tuple[float, ...]] | None = []  # the front of that prefix
        self._front: list[tuple[tuple[float, ...], int]] = []
        self.recomputed = 0                               # full recomputations (tests)

    # -- input -----------------------------------------------------------------------
    def update(self, trials: Iterable[TrackedTrial]) -> bool:
        """Take in newly completed trials; True when anything changed."""
        changed = False
        for t in trials:
            if t.state != "completed" or t.number in self._seen:
                continue
            self._seen.add(t.number)
            key = (t.ended_at or 0.0, t.number)
            at = bisect.bisect(self._keys, key)
            vector = minimization_vector(t.values, self.objectives)
            self._keys.insert(at, key)
            self._vectors.insert(at, vector)
            self._ended.insert(at, t.ended_at or 0.0)
            if at < len(self._hv):            # entries from here on must be recomputed
                del self._hv[at:]
                self._hv_front = None
            if vector is not None:
                self._add_to_front(vector, t.number)
                self._extend_worst(vector)
            changed = True
        return changed

    def _add_to_front(self, vector: tuple[float, ...], number: int) -> None:
        if any(dominates(q, vector) for q, _ in self._front):
            return
        self._front = [(q, n) for q, n in self._front if not dominates(vector, q)]
        self._front.append((vector, number))

    def _extend_worst(self, vector: tuple[float, ...]) -> None:
        if self._worst is None:
            self._worst = list(vector)
        else:
            self._worst = [max(a, b) for a, b in zip(self._worst, vector, strict=True)]
        ref = self._reference()
        if ref != self._ref:
            self._ref = ref
            self._hv = []                      # every entry depends on the reference
            self._hv_front = []
            self.recomputed += 1

    def _reference(self) -> tuple[float, ...] | None:
        return None if self._worst is None else reference_from_worst(self._worst,
                                                                       self.objectives)

    # -- output ----------------------------------------------------------------------
    @property
    def front(self) -> set[int]:
        return {n for _, n in self._front}

    @property
    def n_completed(self) -> int:
        return len(self._keys)

    @property
    def reference_point(self) -> tuple[float, ...] | None:
        return self._ref

    def hypervolume(self) -> float:
        """The hypervolume of the current front against the current reference point."""
        if self._ref is None or not self._front:
            return 0.0
        return hypervolume([q for q, _ in self._front], self._ref)

    def history(self, started_at: float) -> list[dict[str, Any]]:
        """One row per completed trial: ``completed``, ``trial``, ``elapsed_s``,
        ``hypervolume`` (the same columns as ``Run.hypervolume_history()``)."""
        self._fill()
        return [{"completed": i + 1, "trial": key[1], "elapsed_s": ended - started_at
                 if ended else 0.0, "hypervolume": hv}
                for i, (key, ended, hv) in enumerate(zip(self._keys, self._ended, self._hv,
                                                         strict=True))]

    def _fill(self) -> None:
        """Compute the hypervolume entries not yet valid: a point dominated by (or equal to)
        the running front adds nothing, so only front changes pay for a hypervolume."""
        start = len(self._hv)
        if start == len(self._keys):
            return
        ref = self._ref
        front = self._hv_front
        if front is None:
            prefix = [v for v in self._vectors[:start] if v is not None]
            front = [p for p in prefix if not any(dominates(q, p) for q in prefix)]
        current = self._hv[-1] if self._hv else 0.0
        for vector in self._vectors[start:]:
            if vector is not None and ref is not None and not any(
                    dominates(q, vector) or q == vector for q in front):
                front = [q for q in front if not dominates(vector, q)] + [vector]
                current = hypervolume(front, ref)
            self._hv.append(current)
        self._hv_front = front
