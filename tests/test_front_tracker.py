"""The incremental front tracker against a brute-force recomputation of every prefix.

``Run.hypervolume_history()``, the notebook monitor and the charts all read the tracker,
so it is checked here against the definition itself: sort completed trials by completion,
and for each prefix compute the exact hypervolume of all its points against the reference
point of *all* completed trials (accuracy at 0, every other objective 10% beyond its
worst value).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from dspex_lab.optimize import hypervolume, non_dominated
from dspex_lab.optimize._front_tracker import FrontTracker, reference_from_worst


@dataclass(frozen=True)
class Axis:
    name: str
    maximize: bool


@dataclass
class FakeTrial:  # plain data with TrialInfo's shape: no behaviour is faked
    number: int
    state: str
    ended_at: float | None
    values: dict[str, Any] = field(default_factory=dict)


AXES = (Axis("accuracy", True), Axis("cost", False), Axis("latency_s", False))


def _vector(t: FakeTrial) -> tuple[float, ...] | None:
    out = []
    for a in AXES:
        v = t.values.get(a.name)
        if v is None or not math.isfinite(v):
            return None
        out.append(-v if a.maximize else v)
    return tuple(out)


def _brute_history(trials: list[FakeTrial]) -> list[float]:
    done = sorted((t for t in trials if t.state == "completed"),
                  key=lambda t: (t.ended_at or 0.0, t.number))
    vectors = [v for t in done if (v := _vector(t)) is not None]
    if not vectors:
        return [0.0] * len(done)
    worst = [max(v[i] for v in vectors) for i in range(len(AXES))]
    ref = reference_from_worst(worst, AXES)
    out, points = [], []
    for t in done:
        v = _vector(t)
        if v is not None:
            points.append(v)
        out.append(hypervolume(points, ref) if points else 0.0)
    return out


def _random_trials(rng: random.Random, n: int) -> list[FakeTrial]:
    trials = []
    for i in range(n):
        state = rng.choice(["completed"] * 6 + ["pruned", "failed", "running"])
        values: dict[str, Any] = {"accuracy": rng.random(), "cost": rng.uniform(1e-5, 1e-2),
                                  "latency_s": rng.uniform(0.05, 3.0)}
        if rng.random() < 0.08:
            values["cost"] = None if rng.random() < 0.5 else float("nan")
        if rng.random() < 0.1 and trials:  # exact duplicates of earlier points happen
            values = dict(trials[-1].values)
        trials.append(FakeTrial(i, state, rng.uniform(0, 100), values))
    return trials


@pytest.mark.parametrize("seed", range(8))
def test_history_matches_brute_force_in_any_arrival_order(seed: int) -> None:
    rng = random.Random(seed)
    trials = _random_trials(rng, 40)
    expected = _brute_history(trials)
    order = list(trials)
    rng.shuffle(order)
    tracker = FrontTracker(AXES)
    while order:
        k = rng.randint(1, 5)
        batch, order = order[:k], order[k:]
        tracker.update(batch)
        tracker.history(0.0)  # partial histories are computed, then invalidated
    tracker.update(trials)
    got = [row["hypervolume"] for row in tracker.history(0.0)]
    assert got == pytest.approx(expected, rel=1e-12, abs=1e-15)
    vectors = [v for t in trials if t.state == "completed" and (v := _vector(t)) is not None]
    front = {n for n, t in enumerate(trials) if t.state == "completed" and _vector(t) is not None
             and _vector(t) in [vectors[i] for i in non_dominated(vectors)]}
    assert tracker.front == front


def test_dominated_points_do_not_recompute_but_a_moving_reference_does() -> None:
    tracker = FrontTracker(AXES)
    tracker.update([FakeTrial(0, "completed", 1.0, {"accuracy": 0.9, "cost": 1.0,
                                                    "latency_s": 1.0})])
    assert tracker.recomputed == 1
    tracker.update([FakeTrial(1, "completed", 2.0, {"accuracy": 0.5, "cost": 0.5,
                                                    "latency_s": 0.5})])
    assert tracker.recomputed == 1  # inside the worst box: the reference stays
    tracker.update([FakeTrial(2, "completed", 3.0, {"accuracy": 0.8, "cost": 4.0,
                                                    "latency_s": 1.0})])
    assert tracker.recomputed == 2  # a new worst cost moves the reference
    assert tracker.reference_point == pytest.approx((0.0, 4.4, 1.1), rel=1e-9)


def test_nothing_completed_means_no_reference_and_zero_volume() -> None:
    tracker = FrontTracker(AXES)
    tracker.update([FakeTrial(0, "running", None), FakeTrial(1, "failed", 2.0)])
    assert tracker.reference_point is None and tracker.hypervolume() == 0.0
    assert tracker.history(0.0) == []
