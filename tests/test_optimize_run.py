"""dx.optimize end to end: the real simulator over HTTP, a real DuckDB store per test.

Strategies, constraints, budgets, multi-fidelity pruning, failed trials, events,
store records and argument errors. Every run is small (a few trials on 10-40
validation rows) so the module stays fast.
"""

from __future__ import annotations

import itertools
import json
import math as pymath
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab import sim
from dspex_lab.optimize import FrontChanged, Run, TrialInfo, dominates
from dspex_lab.variables._strategy import STARTUP_TRIALS, STRATEGIES

V = dx.variables
OBJECTIVES = ("accuracy", "cost", "latency_s")


@pytest.fixture()
def math() -> Any:
    return dx.datasets.load("sim-math")


@pytest.fixture()
def store(tmp_path: Path, sim_url: str) -> Path:
    """A store of the test's own (warm starts must not see other tests' runs)."""
    path = tmp_path / "optimize.duckdb"
    dx.configure(store=path)
    return path


def _program(math: Any) -> dx.Predict:
    return dx.Predict(math.signature, model="sim/small")


def _small_space() -> dx.Space:
    """6 configurations: 3 models x 2 modules."""
    return dx.Space([V.model(["sim/tiny", "sim/small", "sim/medium"]),
                     V.module(["predict", "cot"])])


def _mixed_space() -> dx.Space:
    """Categorical and continuous variables (infinitely many configurations)."""
    return dx.Space([V.model(["sim/tiny", "sim/small", "sim/medium", "sim/large"]),
                     V.module(["predict", "cot"]), V.temperature(0.0, 1.2)])


def _val(trial: TrialInfo, name: str) -> float:
    """An objective value of a trial that has it."""
    value = trial.values.get(name)
    assert value is not None, (trial.number, name, trial.values)
    return value


def _key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(params.items()))


def _min_vector(values: dict[str, Any], names: tuple[str, ...] = OBJECTIVES
                ) -> tuple[float, ...]:
    return tuple(-float(values[n]) if n == "accuracy" else float(values[n]) for n in names)


def _finished(run: Run, timeout: float = 60) -> Run:
    run.wait(timeout)
    assert run.state == "finished", (run.state, run.stop_reason)
    return run


# -- strategies ---------------------------------------------------------------------------

def test_grid_tries_every_configuration_exactly_once(store: Path, math: Any) -> None:
    space = _small_space()
    run = _finished(dx.optimize(_program(math), space, valset=math.val[:12], strategy="grid",
                                budget=dx.Budget(trials=20), pruning=False, concurrency=3,
                                seed=5))
    assert run.strategy.name == "grid" and run.strategy.rule == "requested"
    assert "grid" in (run.stop_reason or ""), run.stop_reason
    trials = run.trial_list()
    tried = sorted(_key(t.params) for t in trials)
    assert tried == sorted(_key(a) for a in space.grid())
    assert len(tried) == len(set(tried)) == space.size == 6
    assert all(t.state == "completed" and t.source == "grid" for t in trials)
    assert all(t.n_examples == 12 and t.fidelity == 1.0 and t.lm_calls >= 12 for t in trials)
    assert sorted(t.number for t in trials) == list(range(6))
    stored = dx.sql("select count(*) as n from trials where run_id = ? and state = 'completed'",
                    [run.run_id])
    assert stored["n"][0] == 6


def test_auto_picks_grid_for_a_tiny_space_and_records_why(store: Path, math: Any) -> None:
    space = dx.Space([V.model(["sim/tiny", "sim/small"]), V.module(["predict", "cot"])])
    run = _finished(dx.optimize(_program(math), space, valset=math.val[:10],
                                budget=dx.Budget(trials=10), seed=1))
    assert run.strategy.name == "grid" and run.strategy.requested == "auto"
    assert run.strategy.rule == "small-discrete"
    assert "4 configurations" in run.strategy.reason
    assert len(run.trial_list()) == 4  # the whole grid, not the 10 trials the budget allows
    row = dx.sql("select strategy, strategy_reason, state, stop_reason from runs "
                 "where run_id = ?", [run.run_id]).iloc[0]
    assert row["strategy"] == "grid"
    assert row["strategy_reason"] == run.strategy.reason
    assert row["state"] == "finished" and row["stop_reason"] == run.stop_reason


@pytest.mark.parametrize("trials", [6, 12])
def test_auto_on_a_larger_space_picks_a_sampler(store: Path, math: Any, trials: int) -> None:
    run = _finished(dx.optimize(_program(math), _mixed_space(), valset=math.val[:10],
                                budget=dx.Budget(trials=trials), seed=2, pruning=False))
    assert run.strategy.name in STRATEGIES and run.strategy.name not in ("auto", "grid")
    assert run.strategy.requested == "auto" and run.strategy.rule != "small-discrete"
    assert run.strategy.reason
    if trials < STARTUP_TRIALS:
        assert run.strategy.name == "random"  # a model would still be in its start-up
    assert len(run.trial_list()) == trials
    row = dx.sql("select strategy, strategy_reason from runs where run_id = ?",
                 [run.run_id]).iloc[0]
    assert row["strategy"] == run.strategy.name
    assert row["strategy_reason"] == run.strategy.reason


@pytest.mark.parametrize("strategy", ["random", "tpe", "nsga2", "gp"])
def test_each_strategy_produces_completed_trials(store: Path, math: Any, strategy: str) -> None:
    space = _mixed_space()
    run = _finished(dx.optimize(_program(math), space, valset=math.val[:10], strategy=strategy,
                                budget=dx.Budget(trials=6), pruning=False, seed=11,
                                concurrency=2))
    assert run.strategy.name == strategy
    assert run.stop_reason == "trial budget reached (6 trials)"
    trials = run.trial_list()
    assert len(trials) == 6
    assert [t.state for t in trials] == ["completed"] * 6
    assert len({_key(t.params) for t in trials}) == 6   # no configuration evaluated twice
    for t in trials:
        assert space.is_valid(t.params), t.params
        assert 0.0 <= t.params["temperature"] <= 1.2
        assert 0.0 <= _val(t, "accuracy") <= 1.0 and _val(t, "cost") > 0
        assert _val(t, "latency_s") > 0
    front = run.front_trials()
    assert front
    done = run.completed()
    for f in front:  # the front really is non-dominated
        assert not any(dominates(_min_vector(o.values), _min_vector(f.values)) for o in done)


# -- constraints ------------------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["random", "tpe"])
def test_no_evaluated_trial_violates_a_constraint(store: Path, math: Any, strategy: str) -> None:
    space = dx.Space(
        [V.model(["sim/tiny", "sim/small", "sim/medium"]), V.module(["predict", "cot"]),
         V.temperature(choices=[0.0, 0.5, 1.0])],
        ["module == 'cot' -> model != 'sim/tiny'",
         "not (model == 'sim/medium' and temperature > 0.6)"])
    run = _finished(dx.optimize(_program(math), space, valset=math.val[:8], strategy=strategy,
                                budget=dx.Budget(trials=10), pruning=False, seed=4,
                                concurrency=2))
    trials = run.trial_list()
    assert len(trials) == 10
    for t in trials:
        p = t.params
        assert not (p["module"] == "cot" and p["model"] == "sim/tiny"), p
        assert not (p["model"] == "sim/medium" and p["temperature"] > 0.6), p
        assert space.validate(p) == []
    if strategy == "random":  # 5 of the 18 raw combinations are invalid: some get proposed
        assert run.rejected > 0
    # what really ran: no program call with a forbidden combination, and only the
    # evaluated trials made calls
    calls = dx.sql("select trial_id, module_kind, model, count(*) as n from executions "
                   "where run_id = ? and kind = 'program' group by all", [run.run_id])
    assert not calls.empty
    forbidden = calls[(calls["module_kind"] == "cot") & (calls["model"] == "sim/tiny")]
    assert forbidden.empty, forbidden
    assert set(calls["trial_id"]) == {t.trial_id for t in trials}
    for t in trials:
        rows = calls[calls["trial_id"] == t.trial_id]
        assert set(rows["model"]) == {t.params["model"]}
        assert set(rows["module_kind"]) == {t.params["module"]}


# -- budgets ----------------------------------------------------------------------------

def _budget_space() -> dx.Space:
    return dx.Space([V.model(["sim/tiny", "sim/small", "sim/medium", "sim/large"]),
                     V.module(["predict", "cot"]), V.adapter(["chat", "json", "markdown"])])


@pytest.mark.parametrize(("seed", "dollars"), [(0, 0.002), (1, 0.004), (2, 0.008), (3, 0.004)])
def test_a_dollar_budget_is_never_exceeded(store: Path, math: Any, seed: int,
                                           dollars: float) -> None:
    run = _finished(dx.optimize(_program(math), _budget_space(), valset=math.val[:30],
                                budget=dx.Budget(dollars=dollars, trials=40), force=True,
                                strategy="random", concurrency=4, seed=seed))
    paid = float(dx.sql("select coalesce(sum(cost), 0) as c from executions "
                        "where run_id = ? and kind = 'lm'", [run.run_id])["c"][0])
    assert run.spent <= dollars
    assert paid <= dollars
    assert run.spent == pytest.approx(paid, rel=1e-9, abs=1e-12)
    assert run.spent > 0.5 * dollars            # the budget, not something else, ended it
    assert len(run.trial_list()) < 40
    assert "$" in (run.stop_reason or ""), run.stop_reason
    trials = dx.sql("select coalesce(sum(spent), 0) as s from trials where run_id = ?",
                    [run.run_id])
    assert float(trials["s"][0]) == pytest.approx(paid, rel=1e-9, abs=1e-12)


def test_preflight_refuses_a_run_the_dollar_budget_cannot_cover(store: Path, math: Any,
                                                                 sim_server: Any) -> None:
    before = sim_server.stats()["total"]
    with pytest.raises(dx.BudgetExceededError, match=r"force=True") as info:
        dx.optimize(_program(math), _budget_space(), valset=math.val[:30],
                    budget=dx.Budget(dollars=0.002, trials=40), seed=0)
    assert "40 trials x 30 examples" in str(info.value)
    assert sim_server.stats()["total"] == before  # refused before any call
    assert dx.sql("select count(*) as n from runs")["n"][0] == 0
    # the same run fits a budget its estimate covers
    run = _finished(dx.optimize(_program(math), _budget_space(), valset=math.val[:5],
                                budget=dx.Budget(dollars=5.0, trials=3), seed=0))
    assert len(run.trial_list()) == 3 and run.spent <= 5.0
    assert any("pre-flight estimate" in n for n in run.notes)


def test_trial_budget(store: Path, math: Any) -> None:
    run = _finished(dx.optimize(_program(math), _mixed_space(), valset=math.val[:8],
                                budget=dx.Budget(trials=5), strategy="random", seed=3))
    assert len(run.trial_list()) == 5
    assert run.stop_reason == "trial budget reached (5 trials)"
    row = dx.sql("select stop_reason from runs where run_id = ?", [run.run_id])
    assert row["stop_reason"][0] == run.stop_reason


def test_time_budget(store: Path, math: Any) -> None:
    run = _finished(dx.optimize(_program(math), _mixed_space(), valset=math.val[:10],
                                budget=dx.Budget(seconds=1.5), strategy="random", seed=3,
                                concurrency=2), timeout=30)
    assert run.ended_at is not None
    elapsed = run.ended_at - run.started_at
    assert 1.5 <= elapsed < 1.5 + 3.0, elapsed
    assert "time budget reached" in (run.stop_reason or "")
    trials = run.trial_list()
    assert len(trials) >= 2
    assert all(t.state in ("completed", "pruned", "failed") for t in trials)
    assert all(t.ended_at is not None and t.ended_at <= run.ended_at for t in trials)


def test_stop_ends_a_run_early(store: Path, math: Any) -> None:
    run = dx.optimize(_program(math), _mixed_space(), valset=math.val[:10],
                      budget=dx.Budget(trials=500), strategy="random", seed=3, concurrency=2)
    deadline = time.monotonic() + 30
    while not run.completed() and time.monotonic() < deadline:
        time.sleep(0.02)
    run.stop()
    run.wait(30)
    assert run.state == "stopped" and run.stop_reason == "stopped by the user"
    trials = run.trial_list()
    assert 1 <= len(trials) < 500
    assert all(t.state != "running" for t in trials)
    row = dx.sql("select state, stop_reason from runs where run_id = ?", [run.run_id]).iloc[0]
    assert row["state"] == "stopped" and row["stop_reason"] == "stopped by the user"
    states = dx.sql("select state from trials where run_id = ?", [run.run_id])["state"]
    assert "running" not in set(states)


# -- pruning ----------------------------------------------------------------------------

def _pruning_space() -> dx.Space:
    return dx.Space([V.model(["sim/tiny", "sim/small", "sim/medium"]),
                     V.module(["predict", "cot"]), V.adapter(["chat", "json", "markdown"])])


@pytest.mark.parametrize(("pruning", "rungs"), [(True, {8, 20}), ([0.25, 1.0], {10})])
def test_pruning_stops_hopeless_trials_early(store: Path, math: Any, pruning: Any,
                                             rungs: set[int]) -> None:
    full = 40
    run = _finished(dx.optimize(_program(math), _pruning_space(), valset=math.val[:full],
                                strategy="grid", pruning=pruning, concurrency=1, seed=0))
    trials = run.trial_list()
    assert len(trials) == 18
    pruned = [t for t in trials if t.state == "pruned"]
    completed = [t for t in trials if t.state == "completed"]
    assert pruned and completed
    front = {t.number for t in run.front_trials()}
    assert front and front <= {t.number for t in completed}
    assert not front & {t.number for t in pruned}
    assert set(run.pareto_front()["number"]) == front
    for t in completed:
        assert t.fidelity == 1.0 and t.n_examples == full and t.calls_saved == 0
    saved = 0.0
    for t in pruned:
        assert t.fidelity < 1.0 and t.n_examples in rungs, (t.n_examples, rungs)
        assert t.fidelity == pytest.approx(t.n_examples / full)
        assert t.reason and t.reason.startswith(f"pruned after {t.n_examples} of {full}")
        assert t.calls_saved == pytest.approx(t.lm_calls / t.n_examples * (full - t.n_examples))
        saved += t.calls_saved
        if "dominated" in t.reason:  # some completed trial beats even its partial values
            mine = _min_vector(t.values)
            assert any(dominates(_min_vector(c.values), mine) for c in completed), t
    assert run.calls_saved > 0
    assert run.calls_saved == pytest.approx(saved)
    # the LM calls really not made: pruned trials made fewer calls than a full evaluation
    calls = dx.sql("select trial_id, count(*) as n from executions where run_id = ? and "
                   "kind = 'program' group by trial_id", [run.run_id])
    per_trial = dict(zip(calls["trial_id"], calls["n"], strict=True))
    for t in pruned:
        assert per_trial[t.trial_id] == t.n_examples
    table = run.trials
    assert set(table.loc[table["state"] == "pruned", "number"]) == {t.number for t in pruned}


def test_without_pruning_every_trial_sees_the_whole_valset(store: Path, math: Any) -> None:
    run = _finished(dx.optimize(_program(math), _pruning_space(), valset=math.val[:40],
                                strategy="grid", pruning=False, concurrency=4, seed=0))
    trials = run.trial_list()
    assert len(trials) == 18
    assert all(t.state == "completed" and t.n_examples == 40 for t in trials)
    assert run.calls_saved == 0


# -- failures ---------------------------------------------------------------------------

def test_a_configuration_whose_calls_all_fail_is_a_failed_trial(store: Path, math: Any) -> None:
    # a model the simulator does not serve (HTTP 404 on every call); priced, so the
    # only thing wrong with it is that it fails
    dx.set_price("sim/nonexistent", per_million_in=1.0, per_million_out=1.0)
    space = dx.Space([V.model(["sim/small", "sim/nonexistent"]), V.module(["predict", "cot"])])
    run = _finished(dx.optimize(_program(math), space, valset=math.val[:10], strategy="grid",
                                pruning=False, seed=2))
    trials = run.trial_list()
    assert len(trials) == 4
    broken = [t for t in trials if t.params["model"] == "sim/nonexistent"]
    good = [t for t in trials if t.params["model"] == "sim/small"]
    assert [t.state for t in broken] == ["failed", "failed"]
    assert [t.state for t in good] == ["completed", "completed"]
    for t in broken:
        assert t.reason and "all 10 examples failed" in t.reason and "404" in t.reason
        assert t.lm_calls == 0 and t.values.get("accuracy") is None
    assert {t.number for t in run.front_trials()} <= {t.number for t in good}
    assert run.best_trial().params["model"] == "sim/small"
    rows = dx.sql("select trial_id, state, reason, accuracy from trials where run_id = ?",
                  [run.run_id])
    failed = rows[rows["state"] == "failed"]
    assert set(failed["trial_id"]) == {t.trial_id for t in broken}
    assert failed["reason"].str.contains("404").all()
    assert failed["accuracy"].isna().all()
    errors = dx.sql("select error_kind, count(*) as n from executions where run_id = ? and "
                    "kind = 'lm' and trial_id in (?, ?) group by all",
                    [run.run_id, *[t.trial_id for t in broken]])
    assert set(errors["error_kind"]) == {"request_error"} and errors["n"].sum() == 20


def test_a_run_where_every_call_fails_still_finishes(store: Path, math: Any,
                                                     sim_server: Any) -> None:
    space = dx.Space([V.model(["sim/tiny", "sim/small"])])
    sim_server.set_faults(rate_500=1.0)
    try:
        run = _finished(dx.optimize(_program(math), space, valset=math.val[:4],
                                    strategy="grid", pruning=False, seed=2,
                                    example_concurrency=4))
    finally:
        sim_server.set_faults()
    trials = run.trial_list()
    assert [t.state for t in trials] == ["failed", "failed"]
    assert all("server_error" in (t.reason or "") for t in trials)
    assert run.front_trials() == [] and run.pareto_front().empty
    with pytest.raises(dx.DspexError, match="no completed trial"):
        run.best()
    # every attempt is recorded (retries included), none of them is a successful call
    attempts = dx.sql("select count(*) as n, count(error_kind) as failed from executions "
                      "where run_id = ? and kind = 'lm'", [run.run_id]).iloc[0]
    assert attempts["n"] == attempts["failed"] > 8   # 2 trials x 4 examples, retried
    assert run.lm_calls == 0 and run.spent == 0


# -- events -----------------------------------------------------------------------------

def test_subscribers_get_this_runs_events_and_a_slow_one_does_not_slow_it(
        store: Path, math: Any) -> None:
    space = _small_space()
    kwargs: dict[str, Any] = dict(valset=math.val[:20], strategy="grid", pruning=False,
                                  concurrency=3, warm_start=False)
    baseline = _finished(dx.optimize(_program(math), space, seed=1, **kwargs))
    base_s = (baseline.ended_at or 0) - baseline.started_at

    got: list[Any] = []
    lock = threading.Lock()
    release = threading.Event()

    def slow(event: Any) -> None:
        # held up until both runs are over: a run that waited for its subscribers
        # would never finish (no timing involved)
        release.wait(120)
        with lock:
            got.append(event)

    run = dx.optimize(_program(math), space, seed=1, **kwargs)
    sub = run.subscribe(slow)
    other = dx.optimize(_program(math), space, seed=2, **kwargs)  # same time, not ours
    _finished(run)
    _finished(other)
    run_s = (run.ended_at or 0) - run.started_at
    with lock:
        seen_when_done = len(got)
    release.set()
    assert sub.flush(60)
    sub.close()
    events = list(got)
    # the subscriber was stuck for the whole run, and the run did not wait for it
    assert seen_when_done == 0 and events
    assert run_s < 3 * base_s + 1.0, (run_s, base_s)
    # only this run's events, each trial concluded, the run finished last
    assert all(getattr(e.record, "run_id", None) == run.run_id for e in events)
    kinds = Counter(e.kind for e in events)
    assert kinds["run.finished"] == 1 and events[-1].kind == "run.finished"
    assert events[-1].record.state == "finished"
    concluded = [e.record.number for e in events if e.kind == "trial.completed"]
    assert sorted(concluded) == sorted(t.number for t in run.trial_list())
    fronts = [e.record for e in events if e.kind == "front.changed"]
    assert fronts and all(isinstance(f, FrontChanged) for f in fronts)
    assert fronts[-1].trials == tuple(sorted(t.number for t in run.front_trials()))
    assert fronts[-1].n_completed == 6
    assert fronts[-1].hypervolume == pytest.approx(run.hypervolume())


def test_subscribing_right_after_optimize_sees_every_trial_start(store: Path,
                                                                 math: Any) -> None:
    """``run.subscribe`` is the documented way to follow a run; it can only be called
    once ``dx.optimize`` has returned, and it must still see the run's start and every
    trial's start (else a progress display misses trials)."""
    for seed in range(3):
        got: list[str] = []
        run = dx.optimize(_program(math), _small_space(), valset=math.val[:10],
                          strategy="grid", pruning=False, seed=seed, warm_start=False)
        sub = run.subscribe(lambda e, got=got: got.append(e.kind))  # type: ignore[misc]
        _finished(run)
        assert sub.flush(30)
        sub.close()
        kinds = Counter(got)
        assert kinds["run.started"] == 1, (seed, got[:4])
        assert kinds["trial.started"] == len(run.trial_list()) == 6, (seed, kinds)


# -- the store ---------------------------------------------------------------------------

def test_runs_trials_and_executions_in_the_store(store: Path, math: Any) -> None:
    space = dx.Space([V.model(["sim/tiny", "sim/small"]), V.module(["predict", "cot"])])
    run = _finished(dx.optimize(_program(math), space, valset=math.val[:20], strategy="grid",
                                pruning=False, seed=8, name="store-check",
                                tags={"team": "qa"}))
    trials = run.trial_list()
    table = run.trials
    assert {"number", "state", "param_model", "param_module", *OBJECTIVES, "accuracy_low",
            "accuracy_high", "fidelity", "n_examples", "lm_calls", "spent", "reason",
            "source"} <= set(table.columns)
    assert (table["accuracy_low"] <= table["accuracy"]).all()
    assert (table["accuracy"] <= table["accuracy_high"]).all()
    row = dx.sql("select * from runs where run_id = ?", [run.run_id]).iloc[0]
    assert row["name"] == "store-check" and row["state"] == "finished"
    assert row["program_id"] and row["space_id"]
    assert [o["name"] for o in json.loads(row["objectives"])] == list(OBJECTIVES)
    config = json.loads(row["config"])
    assert config["n_val"] == 20 and config["seed"] == 8 and config["rungs"] == [20]
    assert json.loads(row["tags"]) == {"team": "qa"}

    stored = dx.sql("select * from trials where run_id = ? order by number", [run.run_id])
    assert list(stored["number"]) == [t.number for t in sorted(trials, key=lambda t: t.number)]
    for t, (_, s) in zip(sorted(trials, key=lambda t: t.number), stored.iterrows(),
                         strict=True):
        assert s["trial_id"] == t.trial_id and s["state"] == "completed"
        assert json.loads(s["params"]) == t.params
        values = json.loads(s["objective_values"])
        for name in OBJECTIVES:
            assert values[name] == pytest.approx(t.values[name])
            assert s[name] == pytest.approx(t.values[name])
        assert s["lm_calls"] == t.lm_calls and s["n_examples"] == 20
        assert s["spent"] == pytest.approx(t.spent)
        assert s["fidelity"] == 1.0

    # each trial's executions: one program call per example, and exactly its LM calls
    # among the LM attempts (a failed attempt or a parse fallback adds rows, not calls)
    calls = dx.sql(
        "select trial_id, count(*) filter (where kind = 'program') as programs, "
        "count(*) filter (where kind = 'lm' and error_kind is null) as ok_calls, "
        "count(*) filter (where kind = 'lm') as attempts, "
        "sum(cost) filter (where kind = 'lm') as paid "
        "from executions where run_id = ? group by trial_id", [run.run_id])
    by_trial = {r["trial_id"]: r for _, r in calls.iterrows()}
    assert set(by_trial) == {t.trial_id for t in trials}
    for t in trials:
        r = by_trial[t.trial_id]
        assert r["programs"] == t.n_examples == 20
        assert r["ok_calls"] == t.lm_calls
        assert r["attempts"] >= t.lm_calls
        assert r["paid"] == pytest.approx(t.spent)
    assert sum(t.lm_calls for t in trials) == run.lm_calls
    assert run.spent == pytest.approx(sum(t.spent for t in trials))
    assert calls["ok_calls"].sum() == run.lm_calls


def test_objective_values_match_the_simulators_expectation(store: Path, math: Any) -> None:
    """The objectives are per-example figures: over the whole validation split they
    agree with the simulator's exact expectations."""
    space = dx.Space([V.model(["sim/small", "sim/medium"]), V.module(["cot"])])
    run = _finished(dx.optimize(_program(math), space, valset="sim-math", strategy="grid",
                                pruning=False, seed=0, example_concurrency=32), timeout=120)
    trials = run.trial_list()
    assert len(trials) == 2 and all(t.n_examples == 200 for t in trials)
    for t in trials:
        expected = sim.expected_metrics({"model": t.params["model"], "module": "cot",
                                         "adapter": "chat", "temperature": None,
                                         "demos": 0}, "sim-math", "val")
        sd = pymath.sqrt(expected.accuracy * (1 - expected.accuracy) / 200)
        assert abs(_val(t, "accuracy") - expected.accuracy) < 4 * sd, (t.params, expected)
        assert t.values["cost"] == pytest.approx(expected.cost_per_example, rel=0.08)
        assert t.lm_calls / 200 == pytest.approx(expected.calls_per_example, rel=0.08)
        assert t.values["cost"] == pytest.approx(t.spent / 200)


# -- best, the front, hypervolume -----------------------------------------------------------

def test_best_follows_the_weights(store: Path, math: Any) -> None:
    program = _program(math)
    run = _finished(dx.optimize(program, _small_space(), valset=math.val[:20], strategy="grid",
                                pruning=False, seed=6))
    front = run.front_trials()
    done = run.completed()
    assert len(done) == 6 and front
    for t in done:  # the front is exactly the non-dominated completed trials
        beaten = any(dominates(_min_vector(o.values), _min_vector(t.values)) for o in done)
        assert beaten == (t not in front), t
    most_accurate = max(_val(t, "accuracy") for t in front)
    cheapest = min(_val(t, "cost") for t in front)
    assert run.best_trial({"accuracy": 1}).values["accuracy"] == most_accurate
    assert run.best_trial({"cost": 1}).values["cost"] == cheapest
    assert most_accurate == max(_val(t, "accuracy") for t in done)
    assert cheapest == min(_val(t, "cost") for t in done)
    for weights in ({"accuracy": 1}, {"cost": 1}):
        trial = run.best_trial(weights)
        best = run.best(weights)
        assert best is not program
        (config,) = best.config().values()   # one module, keyed by its kind
        assert config["model"] == trial.params["model"]
        assert config["module"] == trial.params["module"]
    assert program.config()["predict"]["model"] == "sim/small"   # the original is untouched
    with pytest.raises(dx.ConfigurationError, match="tokens"):
        run.best({"tokens": 1})
    table = run.pareto_front()
    assert set(table["number"]) == {t.number for t in front}
    assert list(table["weighted_score"]) == sorted(table["weighted_score"], reverse=True)

    history = run.hypervolume_history()
    assert len(history) == 6
    hv = list(history["hypervolume"])
    assert all(b >= a - 1e-12 for a, b in itertools.pairwise(hv))
    assert hv[-1] == pytest.approx(run.hypervolume()) and hv[-1] > 0


def test_run_weights_pick_the_default_best(store: Path, math: Any) -> None:
    run = _finished(dx.optimize(_program(math), _small_space(), valset=math.val[:10],
                                strategy="grid", pruning=False, seed=6, weights={"cost": 1}))
    cheapest = min(_val(t, "cost") for t in run.completed())
    assert run.best_trial().values["cost"] == cheapest
    assert run.pareto_front()["cost"].iloc[0] == cheapest
    assert run.best_trial({"accuracy": 1}).values["accuracy"] == max(
        _val(t, "accuracy") for t in run.completed())


def test_objectives_of_your_own(store: Path, math: Any) -> None:
    calls = dx.Objective("calls", "minimize", fn=lambda result: result.lm_calls / result.n)
    run = _finished(dx.optimize(_program(math), _small_space(), valset=math.val[:10],
                                objectives=["accuracy", calls], strategy="grid",
                                pruning=False, seed=6))
    assert [o.name for o in run.objectives] == ["accuracy", "calls"]
    for t in run.completed():
        assert set(t.values) == {"accuracy", "calls"}
        assert t.values["calls"] == pytest.approx(t.lm_calls / t.n_examples)
    assert "calls" in run.trials.columns and "cost" not in run.trials.columns
    stored = dx.sql("select objective_values, cost from trials where run_id = ?",
                    [run.run_id])
    assert all(set(json.loads(v)) == {"accuracy", "calls"} for v in stored["objective_values"])
    assert stored["cost"].isna().all()
    objectives = json.loads(dx.sql("select objectives from runs where run_id = ?",
                                   [run.run_id])["objectives"][0])
    assert objectives == [{"name": "accuracy", "direction": "maximize"},
                          {"name": "calls", "direction": "minimize"}]


# -- specs --------------------------------------------------------------------------------

SPEC_WITH_OBJECTIVES = """
name: spec-run
signature: question -> answer
model: sim/small
dataset: {name: sim-math, size: 10}
variables:
  model: [sim/tiny, sim/small, sim/medium]
  module: [predict, cot]
  temperature: {range: [0.0, 1.0]}
objectives: [accuracy, cost]
budget: {trials: 3}
strategy: random
"""


def test_a_spec_brings_program_space_data_budget_and_strategy(store: Path) -> None:
    run = _finished(dx.optimize(SPEC_WITH_OBJECTIVES, pruning=False, seed=1))
    assert run.name == "spec-run"
    assert run.strategy.name == "random"
    assert [o.name for o in run.objectives] == ["accuracy", "cost"]
    trials = run.trial_list()
    assert len(trials) == 3 and all(t.n_examples == 10 for t in trials)
    assert set(run.trials.columns) >= {"param_model", "param_module", "param_temperature",
                                       "accuracy", "cost"}
    config = json.loads(dx.sql("select config from runs where run_id = ?",
                               [run.run_id])["config"][0])
    assert config["spec"] and config["dataset"] == "sim-math" and config["n_val"] == 10


SPEC_DEFAULT_OBJECTIVES = """
name: spec-defaults
signature: question -> answer
model: sim/small
dataset: {name: sim-math, size: 10}
variables:
  model: [sim/tiny, sim/small]
budget: {trials: 2}
"""

SPEC_DOCUMENTED_OBJECTIVES = """
name: spec-latency
signature: question -> answer
model: sim/small
dataset: {name: sim-math, size: 10}
variables:
  model: [sim/tiny, sim/small]
objectives: {accuracy: max, cost: min, latency: min}
weights: {accuracy: 0.5, cost: 0.3, latency: 0.2}
budget: {trials: 2}
"""


@pytest.mark.parametrize("text", [SPEC_DEFAULT_OBJECTIVES, SPEC_DOCUMENTED_OBJECTIVES],
                         ids=["default-objectives", "latency-objective"])
def test_a_spec_with_the_latency_objective_runs(store: Path, text: str) -> None:
    """docs/spec.md: a spec's objectives default to accuracy, cost and latency, and
    ``latency`` is a known objective name; dx.optimize must accept such a spec."""
    run = _finished(dx.optimize(text, pruning=False, seed=1))
    assert len(run.objectives) == 3
    assert len(run.completed()) == 2
    assert all(len([v for v in t.values.values() if v is not None]) == 3
               for t in run.completed())


# -- argument errors -----------------------------------------------------------------------

def _error_cases(math: Any) -> list[tuple[str, Any, str]]:
    program, space, rows = _program(math), _small_space(), math.val[:5]
    return [
        ("missing valset", lambda: dx.optimize(program, space, trainset=list(rows)),
         r"needs a validation set \(valset=\.\.\.\)"),
        ("empty valset", lambda: dx.optimize(program, space, valset=[]),
         r"validation set is empty"),
        ("rows without the input field",
         lambda: dx.optimize(program, space, valset=[{"q": "1 + 1", "answer": "2"}]),
         r"valset\[0\] lacks the program's input field\(s\) \['question'\]"),
        ("unknown objective",
         lambda: dx.optimize(program, space, valset=rows, objectives=["accuracy", "speed"]),
         r"unknown objective 'speed'"),
        ("weights name an unknown objective",
         lambda: dx.optimize(program, space, valset=rows, weights={"accuracy": 1, "tokens": 1}),
         r"weights name 'tokens', which is not an objective of this run"),
        ("weights for an objective the run does not have",
         lambda: dx.optimize(program, space, valset=rows, objectives=["accuracy", "cost"],
                             weights={"latency_s": 1}),
         r"weights name 'latency_s'"),
        ("spec and space", lambda: dx.optimize(SPEC_WITH_OBJECTIVES, space),
         r"a spec brings its own variable space"),
        ("program without space", lambda: dx.optimize(program, valset=rows),
         r"needs a variable space"),
        ("unknown strategy", lambda: dx.optimize(program, space, valset=rows, strategy="bayes"),
         r"strategy 'bayes' is not one of"),
        ("space targeting a missing module",
         lambda: dx.optimize(program, dx.Space([V.model(["sim/tiny"], name="gen.model")]),
                             valset=rows),
         r"gen"),
    ]


def test_argument_errors_are_clear_and_cost_nothing(store: Path, math: Any,
                                                    sim_server: Any) -> None:
    before = sim_server.stats()["total"]
    for what, call, message in _error_cases(math):
        with pytest.raises(dx.ConfigurationError, match=message):
            call()
        assert sim_server.stats()["total"] == before, what
    assert dx.sql("select count(*) as n from runs")["n"][0] == 0
