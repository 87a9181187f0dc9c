"""Demos and instructions joining the search, the initial design, and the parameter mapping."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import optuna
import pytest

import dspex_lab as dx
from dspex_lab.optimize._costs import CostEstimator
from dspex_lab.optimize._design import anchor_configs
from dspex_lab.optimize._params import DEMO_SETS, demo_subset, suggest, to_params


@pytest.fixture()
def math() -> Any:
    return dx.datasets.load("sim-math")


@pytest.fixture()
def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "prep.duckdb"
    dx.configure(store=str(path))
    return path


def test_bootstrap_and_proposed_instructions_join_the_search(
        sim_url: str, math: Any, store_path: Path) -> None:
    program = dx.Predict("question -> answer", model="sim/small")
    space = dx.Space([dx.variables.module(["predict", "cot"]), dx.variables.demos((0, 3))])
    run = dx.optimize(program, space, trainset=math.train[:40], valset=math.val[:20],
                      bootstrap=True, teacher={"model": "sim/large", "module": "cot"},
                      propose_instructions=3, budget=dx.Budget(trials=6), seed=3,
                      pruning=False).wait(120)
    assert run.state == "finished", run.stop_reason
    instructions = run.space.variables["instructions"]
    assert isinstance(instructions, dx.Categorical) and len(instructions.choices) >= 3
    pool = run.space.variables["demos"].pool
    assert pool is not None and all("reasoning" in d for d in pool[:3])  # teacher traces
    assert any("bootstrapped" in n for n in run.notes)
    assert {"param_instructions", "param_demos"} <= set(run.trials.columns)
    # what preparation paid counts toward the run and is recorded under its id
    paid = dx.sql("select sum(cost) as c from executions where run_id = ? and kind = 'lm' "
                  "and trial_id is null", [run.run_id])["c"].iloc[0]
    assert paid > 0
    assert run.spent == pytest.approx(float(dx.sql(
        "select sum(cost) as c from executions where run_id = ? and kind = 'lm'",
        [run.run_id])["c"].iloc[0]), rel=1e-6)


def test_demos_without_pool_and_without_trainset_is_a_clear_error(
        sim_url: str, math: Any, store_path: Path) -> None:
    program = dx.Predict("question -> answer", model="sim/small")
    space = dx.Space([dx.variables.demos((0, 2))])
    run = dx.optimize(program, space, valset=math.val[:5], budget=dx.Budget(trials=2))
    with pytest.raises(dx.ConfigurationError, match="trainset"):
        run.wait(60)
    assert run.state == "failed" and "trainset" in (run.stop_reason or "")


def test_anchor_design_starts_from_each_models_cheapest_configuration(
        sim_url: str, math: Any) -> None:
    program = dx.Predict("question -> answer", model="sim/small")
    space = dx.Space([dx.variables.model(["sim/tiny", "sim/large"]),
                      dx.variables.module(["predict", "cot"]),
                      dx.variables.demos((0, 2), pool=math.demos(2))])
    estimator = CostEstimator(program, math.val[:8])

    def cost(a: dict[str, Any]) -> float | None:
        return estimator.per_example(space.to_config(a))

    anchors = anchor_configs(space, cost, limit=4, seed=0)
    assert [a["model"] for a in anchors[:2]] == ["sim/tiny", "sim/large"]
    assert anchors[0] == {"model": "sim/tiny", "module": "predict", "demos": ()}
    dearest = max(space.grid(), key=lambda a: cost(a) or 0.0)
    assert dearest in anchors
    assert cost(anchors[0]) == min(cost(a) or 0.0 for a in space.grid())


def test_auto_runs_begin_with_anchors(sim_url: str, math: Any, store_path: Path) -> None:
    program = dx.Predict("question -> answer", model="sim/small")
    space = dx.Space([dx.variables.model(["sim/tiny", "sim/small", "sim/medium"]),
                      dx.variables.module(["predict", "cot"]),
                      dx.variables.adapter(["chat", "json", "markdown"]),
                      dx.variables.demos((0, 4)),
                      dx.variables.temperature(choices=[0.0, 0.5, 1.0])])
    run = dx.optimize(program, space, trainset=math.train[:10], valset=math.val[:10],
                      budget=dx.Budget(trials=12), seed=1, concurrency=2).wait(120)
    sources = list(run.trials.sort_values("number")["source"])
    assert sources[:3] == ["anchor"] * 3
    assert run.strategy.requested == "auto"


def test_subset_demos_round_trip_through_optuna_parameters() -> None:
    var = dx.Demos((0, 3), pool=[{"question": str(i), "answer": str(i)} for i in range(8)],
                   select="subset")
    space = dx.Space([var, dx.variables.module(["predict", "cot"])])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        assignment = suggest(trial, space)
        assert space.is_valid(assignment)
        seen.add(assignment["demos"])
        study.tell(trial, 0.0)
        # the parameters of an assignment bring back the same assignment
        study.enqueue_trial(to_params(space, assignment))
        again = study.ask()
        assert suggest(again, space) == assignment
        study.tell(again, 0.0)
    assert len(seen) > 5
    for k in range(4):
        subsets = {demo_subset(var, k, i) for i in range(DEMO_SETS)}
        assert all(len(s) == k and len(set(s)) == k for s in subsets)
    rng = random.Random(0)
    for _ in range(10):
        wanted = space.sample(rng)
        study.enqueue_trial(to_params(space, wanted))
        trial = study.ask()
        got = suggest(trial, space)
        study.tell(trial, 0.0)
        if wanted["demos"] in {demo_subset(var, len(wanted["demos"]), i)
                               for i in range(DEMO_SETS)}:
            assert got == wanted


def test_conditional_variables_are_only_suggested_when_active() -> None:
    space = dx.Space([dx.variables.module(["predict", "pot"]),
                      dx.Int("max_code_retries", 0, 3, when="module == 'pot'")])
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    kinds = set()
    for _ in range(20):
        trial = study.ask()
        a = suggest(trial, space)
        assert ("max_code_retries" in a) == (a["module"] == "pot")
        assert ("max_code_retries" in trial.params) == (a["module"] == "pot")
        kinds.add(a["module"])
        study.tell(trial, 0.0)
    assert kinds == {"predict", "pot"}
