"""The LM-aware surrogate: learns accuracy, knows costs, proposes the biggest expected gain."""

from __future__ import annotations

import random
import statistics
from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab.optimize import hypervolume, non_dominated
from dspex_lab.optimize._params import assignment_key
from dspex_lab.optimize._surrogate import Surrogate, supported

MODELS = {"x/m0": (0.2, 1.0), "x/m1": (0.45, 3.0), "x/m2": (0.6, 9.0), "x/m3": (0.7, 27.0)}
MODULES = {"fast": (0.0, 1.0), "think": (0.15, 2.5)}
STYLE = {"a": 0.05, "b": 0.0, "c": -0.1}


def _space() -> dx.Space:
    return dx.Space([dx.Categorical("engine", list(MODELS)),
                     dx.Categorical("mode", list(MODULES)),
                     dx.Categorical("style", list(STYLE)),
                     dx.Int("shots", 0, 4)])


def _truth(a: dict[str, Any]) -> tuple[float, float, float]:
    """An additive accuracy, and costs that grow with model size, reasoning and shots."""
    base, price = MODELS[a["engine"]]
    bonus, factor = MODULES[a["mode"]]
    acc = min(1.0, base + bonus + STYLE[a["style"]] + 0.03 * a["shots"])
    cost = price * factor * (1 + 0.2 * a["shots"])
    return acc, cost, cost ** 0.5


def _estimate(a: dict[str, Any]) -> tuple[float, float]:
    _, cost, latency = _truth(a)
    return cost * 0.8, latency * 1.25  # a biased estimate: calibration must fix it


def _hv(found: list[dict[str, Any]], space: dx.Space) -> float:
    everything = [_truth(a) for a in space.grid()]
    top_cost = max(c for _, c, _ in everything)
    top_lat = max(t for _, _, t in everything)
    points = [(1 - acc, c / top_cost, t / top_lat) for acc, c, t in map(_truth, found)]
    front = [points[i] for i in non_dominated(points)]
    return hypervolume(front, (1.0, 1.1, 1.1))


def _search(seed: int, n: int, use_model: bool) -> float:
    space = _space()
    rng = random.Random(seed)
    model = Surrogate(space, _estimate, seed=seed)
    noise = random.Random(seed + 1000)
    found: list[dict[str, Any]] = []
    observed: list[tuple[dict[str, Any], dict[str, float]]] = []
    seen: set[str] = set()
    while len(found) < n:
        proposal = None
        if use_model:
            proposal = model.propose(observed, [v for _, v in observed], [], seen)
        if proposal is None:
            proposal = space.sample(rng)
            if assignment_key(proposal) in seen:
                continue
        acc, cost, lat = _truth(proposal)
        values = {"accuracy": acc + noise.gauss(0, 0.05), "cost": cost, "latency_s": lat}
        observed.append((proposal, values))
        found.append(proposal)
        seen.add(assignment_key(proposal))
    return _hv(found, space)


def test_surrogate_finds_better_fronts_than_random_sampling() -> None:
    model = [_search(seed, 14, True) for seed in range(8)]
    rand = [_search(seed, 14, False) for seed in range(8)]
    assert statistics.mean(model) > statistics.mean(rand) * 1.03, (model, rand)


def test_surrogate_never_proposes_what_was_seen_and_abstains_when_blind() -> None:
    space = _space()
    model = Surrogate(space, _estimate, seed=0)
    assert model.propose([], [], [], set()) is None  # nothing observed yet
    rng = random.Random(3)
    observed = []
    seen = set()
    for _ in range(6):
        a = space.sample(rng)
        acc, cost, lat = _truth(a)
        observed.append((a, {"accuracy": acc, "cost": cost, "latency_s": lat}))
        seen.add(assignment_key(a))
    for _ in range(10):
        proposal = model.propose(observed, [v for _, v in observed], [], seen)
        assert proposal is not None and assignment_key(proposal) not in seen
        seen.add(assignment_key(proposal))
    blind = Surrogate(space, lambda a: None, seed=0)
    assert blind.propose(observed, [v for _, v in observed], [], set()) is None


def test_running_trials_spread_concurrent_proposals() -> None:
    space = _space()
    model = Surrogate(space, _estimate, seed=1)
    rng = random.Random(5)
    observed = []
    for _ in range(6):
        a = space.sample(rng)
        acc, cost, lat = _truth(a)
        observed.append((a, {"accuracy": acc, "cost": cost, "latency_s": lat}))
    seen = {assignment_key(a) for a, _ in observed}
    first = model.propose(observed, [v for _, v in observed], [], seen)
    assert first is not None
    second = model.propose(observed, [v for _, v in observed], [first],
                           seen | {assignment_key(first)})
    assert second is not None and second != first


def test_auto_prefers_the_surrogate_only_for_the_standard_objectives(
        sim_url: str, tmp_path: Any) -> None:
    dx.configure(store=str(tmp_path / "s.duckdb"))
    math = dx.datasets.load("sim-math")
    program = dx.Predict("question -> answer", model="sim/small")
    space = dx.Space([dx.variables.model(["sim/tiny", "sim/small", "sim/medium"]),
                      dx.variables.module(["predict", "cot"]),
                      dx.variables.adapter(["chat", "json", "markdown"]),
                      dx.variables.demos((0, 4)),
                      dx.variables.temperature(choices=[0.0, 0.5, 1.0])])
    run = dx.optimize(program, space, trainset=math.train[:10], valset=math.val[:12],
                      budget=dx.Budget(trials=14), seed=2, concurrency=2, pruning=False)
    run.wait(180)
    assert run.strategy.name == "surrogate" and "hypervolume" in run.strategy.reason
    sources = set(run.trials["source"])
    assert {"anchor", "surrogate"} <= sources
    custom = dx.Objective("failures", "minimize", fn=lambda r: float(r.n_failed))
    other = dx.optimize(program, space, trainset=math.train[:10], valset=math.val[:4],
                        objectives=["accuracy", custom], budget=dx.Budget(trials=12),
                        seed=2)
    assert other.strategy.name == "tpe"
    other.wait(180)
    assert supported(run.objectives) and not supported(other.objectives)


@pytest.mark.parametrize("requested", ["surrogate"])
def test_surrogate_can_be_requested_in_a_spec(requested: str) -> None:
    spec = dx.parse_spec(f"signature: question -> answer\nstrategy: {requested}\n")
    assert spec.ok, spec.render_diagnostics()
