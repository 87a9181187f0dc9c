"""The LM-aware model behind ``strategy="auto"``: predict, then pick the biggest expected gain.

Of the three standard objectives, two are known before a configuration runs:
dollars and latency per example follow from the prompts it renders, the
tokens it is expected to produce and the catalogue's prices (the pre-flight
estimate), calibrated here against what completed trials really measured.
Only accuracy must be learned. It is modelled by Bayesian linear regression
on one-hot features of the variables (model, module, adapter, demo count,
temperature, ...), which captures the mostly additive effects these
variables have, and gives a predictive spread.

Each proposal scores every untried candidate (the whole valid grid when it is
small, a sample otherwise) by the hypervolume its *optimistic* point (accuracy
raised by ``beta`` predictive standard deviations, cost and latency as
predicted) would add to the current front, with trials still running counted
at their predicted means so concurrent proposals spread out. The winner is
handed to the Optuna study (enqueued), so Optuna still records every trial.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from dspex_lab.errors import DspexError
from dspex_lab.optimize._params import assignment_key
from dspex_lab.optimize._pareto import hypervolume_gains
from dspex_lab.variables import Categorical, Demos, Float, Int, Space

__all__ = ["MIN_OBSERVATIONS", "Surrogate", "supported"]

MIN_OBSERVATIONS = 4
"""Trials with an accuracy before the model proposes (the design's anchors come first)."""
MAX_CANDIDATES = 400
STANDARD = ("accuracy", "cost", "latency_s")

Estimate = Callable[[dict[str, Any]], tuple[float, float] | None]
"""assignment -> (dollars, seconds) per example, or None when unknown."""


def supported(objectives: Sequence[Any]) -> bool:
    """The model predicts the standard objectives only."""
    return sorted(o.name for o in objectives) == sorted(STANDARD) and all(
        o.maximize == (o.name == "accuracy") for o in objectives)


def _numeric_range(var: Any) -> tuple[float, float] | None:
    """(low, high) of a variable that is an ordered quantity, else None."""
    if isinstance(var, Float | Int):
        return float(var.low), float(var.high)
    if isinstance(var, Demos):
        return float(var.k_low), float(var.k_high)
    if isinstance(var, Categorical) and all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in var.choices):
        return float(min(var.choices)), float(max(var.choices))
    return None


class _Features:
    """One-hot for unordered choices; a scaled value and its square for quantities
    (numbers, numeric choices such as temperatures, demo counts): few parameters, so
    a handful of trials already says something."""

    def __init__(self, space: Space) -> None:
        self.space = space
        self.columns: list[tuple[str, str, Any]] = []
        self.ranges: dict[str, tuple[float, float]] = {}
        for name, var in space.variables.items():
            span = _numeric_range(var)
            if span is not None:
                self.ranges[name] = span
                self.columns += [(name, "x", 1), (name, "x", 2)]
            elif isinstance(var, Categorical):
                self.columns += [(name, "is", c) for c in var.choices]

    def row(self, assignment: Mapping[str, Any]) -> list[float]:
        out = [1.0]
        for name, kind, what in self.columns:
            value = assignment.get(name)
            if value is None:
                out.append(0.0)
            elif kind == "is":
                out.append(1.0 if value == what else 0.0)
            else:
                if isinstance(value, tuple | list):
                    value = len(value)
                low, high = self.ranges[name]
                unit = 0.0 if high == low else (float(value) - low) / (high - low)
                out.append(unit ** what)
        return out


class _Ridge:
    """Bayesian linear regression with a fixed prior precision and estimated noise."""

    def __init__(self, x: np.ndarray, y: np.ndarray, prior: float = 1.0) -> None:
        d = x.shape[1]
        a = x.T @ x + prior * np.eye(d)
        self.a_inv = np.linalg.inv(a)
        self.w = self.a_inv @ x.T @ y
        resid = y - x @ self.w
        dof = max(1, len(y) - 1)
        self.noise = max(float(resid @ resid) / dof, 0.03 ** 2)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = x @ self.w
        var = self.noise * np.einsum("ij,jk,ik->i", x, self.a_inv, x)
        return mean, np.sqrt(np.maximum(var, 0.0))


class Surrogate:
    """Proposes the untried assignment with the largest optimistic hypervolume gain."""

    def __init__(self, space: Space, estimate: Estimate, *, seed: int,
                 beta: float = 1.0) -> None:
        self.space = space
        self.estimate = estimate
        self.beta = beta
        self.rng = random.Random(seed)
        self.features = _Features(space)
        size = space.size
        self._grid = (list(space.grid()) if space.is_discrete and size is not None
                      and size <= 5000 else None)

    def _candidates(self, seen: set[str]) -> list[dict[str, Any]]:
        if self._grid is not None:
            pool = [a for a in self._grid if assignment_key(a) not in seen]
            if len(pool) > MAX_CANDIDATES:
                pool = self.rng.sample(pool, MAX_CANDIDATES)
            return pool
        out: list[dict[str, Any]] = []
        for _ in range(MAX_CANDIDATES):
            try:
                a = self.space.sample(self.rng)
            except DspexError:
                break
            if assignment_key(a) not in seen:
                out.append(a)
        return out

    def _calibration(self, observed: Sequence[tuple[dict[str, Any], Mapping[str, Any]]]
                     ) -> tuple[float, float]:
        """Median measured / estimated ratios of cost and latency (1.0 when unknown)."""
        cost_r, lat_r = [], []
        for params, values in observed:
            est = self.estimate(params)
            if est is None:
                continue
            if values.get("cost") and est[0] > 0:
                cost_r.append(float(values["cost"]) / est[0])
            if values.get("latency_s") and est[1] > 0:
                lat_r.append(float(values["latency_s"]) / est[1])
        return (float(np.median(cost_r)) if cost_r else 1.0,
                float(np.median(lat_r)) if lat_r else 1.0)

    def propose(self, observed: Sequence[tuple[dict[str, Any], Mapping[str, Any]]],
                completed: Sequence[Mapping[str, Any]], running: Sequence[dict[str, Any]],
                seen: set[str]) -> dict[str, Any] | None:
        """The next assignment, or None (too few observations, nothing to estimate).

        ``observed``: (params, values) of every trial with an accuracy (pruned ones at
        their partial fidelity too); ``completed``: values of completed trials (the
        front is theirs); ``running``: params of trials in flight."""
        labelled = [(p, v) for p, v in observed if v.get("accuracy") is not None]
        if len(labelled) < MIN_OBSERVATIONS:
            return None
        candidates = self._candidates(seen)
        if not candidates:
            return None
        x = np.array([self.features.row(p) for p, _ in labelled])
        y = np.array([float(v["accuracy"]) for _, v in labelled])
        model = _Ridge(x, y)
        cost_k, lat_k = self._calibration(labelled)
        scored: list[tuple[dict[str, Any], float, float, float, float]] = []
        for a in candidates:
            est = self.estimate(a)
            if est is None:
                return None
            scored.append((a, 0.0, 0.0, est[0] * cost_k, est[1] * lat_k))
        means, stds = model.predict(np.array([self.features.row(a) for a, *_ in scored]))
        front = [(-float(v["accuracy"]), float(v["cost"]), float(v["latency_s"]))
                 for v in completed if all(v.get(k) is not None for k in STANDARD)]
        for params in running:  # kriging believer: in-flight trials at their means
            est = self.estimate(params)
            if est is None:
                continue
            mean, _ = model.predict(np.array([self.features.row(params)]))
            front.append((-float(mean[0]), est[0] * cost_k, est[1] * lat_k))
        optimistic = [(-min(1.0, float(m) + self.beta * float(s)), c, lat)
                      for m, s, (_, _, _, c, lat) in zip(means, stds, scored, strict=True)]
        gains = hypervolume_gains(front, optimistic)[1]
        best = max(range(len(scored)), key=lambda i: (gains[i], float(stds[i]),
                                                      -scored[i][3]))
        return scored[best][0]
