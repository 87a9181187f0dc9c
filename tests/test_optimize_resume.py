"""Runs that build on the store: warm starts, resuming (also after a real process was
killed mid-run), and many runs at once in one process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import dspex_lab as dx
from dspex_lab import recording, sim
from dspex_lab.optimize import Run

V = dx.variables


@pytest.fixture()
def math() -> Any:
    return dx.datasets.load("sim-math")


@pytest.fixture()
def store(tmp_path: Path, sim_url: str) -> Path:
    path = tmp_path / "resume.duckdb"
    dx.configure(store=path)
    return path


def _space(models: tuple[str, ...] = ("sim/tiny", "sim/small", "sim/medium")) -> dx.Space:
    return dx.Space([V.model(list(models)), V.module(["predict", "cot"])])


def _finished(run: Run, timeout: float = 60) -> Run:
    run.wait(timeout)
    assert run.state == "finished", (run.state, run.stop_reason)
    return run


def _key(params: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(sorted(params.items()))


# -- warm start ----------------------------------------------------------------------------

def test_a_second_run_starts_from_the_first_runs_front(store: Path, math: Any) -> None:
    program = dx.Predict(math.signature, model="sim/small")
    rows = math.val[:12]
    first = _finished(dx.optimize(program, _space(), valset=rows, strategy="grid",
                                  pruning=False, seed=1))
    front = {_key(t.params) for t in first.front_trials()}
    assert 1 <= len(front) < 6
    assert all(t.source == "grid" for t in first.trial_list())  # nothing to start from

    # same program and space (new, equal objects): the front is tried first
    budget = len(front) + 2
    second = _finished(dx.optimize(dx.Predict(math.signature, model="sim/small"), _space(),
                                   valset=math.val[12:24], strategy="random",
                                   budget=dx.Budget(trials=budget), pruning=False, seed=2))
    trials = sorted(second.trial_list(), key=lambda t: t.number)
    assert len(trials) == budget
    warm = trials[: len(front)]
    assert all(t.source == "warm-start" for t in warm)
    assert {_key(t.params) for t in warm} == front
    assert all(t.source != "warm-start" for t in trials[len(front):])
    assert all(t.state == "completed" and t.n_examples == 12 for t in warm)  # re-evaluated
    assert any(f"warm start: {len(front)} configurations" in n for n in second.notes)
    stored = dx.sql("select number, metrics from trials where run_id = ? order by number",
                    [second.run_id])
    sources = [json.loads(m)["source"] for m in stored["metrics"]]
    assert sources == [t.source for t in trials]

    # turned off, or another space: no warm start
    off = _finished(dx.optimize(program, _space(), valset=rows, strategy="random",
                                budget=dx.Budget(trials=2), warm_start=False, seed=3))
    assert all(t.source != "warm-start" for t in off.trial_list())
    other = _finished(dx.optimize(program, _space(("sim/tiny", "sim/small", "sim/large")),
                                  valset=rows, strategy="random", budget=dx.Budget(trials=2),
                                  seed=3))
    assert all(t.source != "warm-start" for t in other.trial_list())
    assert not any("warm start" in n for n in other.notes)


def test_a_warm_started_grid_still_tries_each_configuration_once(store: Path,
                                                                 math: Any) -> None:
    program = dx.Predict(math.signature, model="sim/small")
    _finished(dx.optimize(program, _space(), valset=math.val[:10], strategy="grid",
                          pruning=False, seed=1))
    again = _finished(dx.optimize(program, _space(), valset=math.val[:10], strategy="grid",
                                  pruning=False, seed=2))
    trials = sorted(again.trial_list(), key=lambda t: t.number)
    keys = [_key(t.params) for t in trials]
    assert sorted(keys) == sorted(_key(a) for a in _space().grid())  # each once
    n_warm = sum(t.source == "warm-start" for t in trials)
    assert n_warm >= 1
    assert [t.source for t in trials] == ["warm-start"] * n_warm + ["grid"] * (6 - n_warm)


# -- resume in process ---------------------------------------------------------------------

def test_resume_a_python_run_with_a_larger_budget(store: Path, math: Any) -> None:
    program = dx.Predict(math.signature, model="sim/small")
    rows = math.val[:12]
    first = _finished(dx.optimize(program, _space(), valset=rows, strategy="random",
                                  budget=dx.Budget(trials=3), pruning=False, seed=3))
    before = {t.trial_id: t for t in first.trial_list()}
    calls_before = dx.sql("select trial_id, count(*) as n from executions where run_id = ? "
                          "group by trial_id", [first.run_id])
    spent_before = first.spent

    resumed = _finished(dx.resume(first.run_id, program, _space(), valset=rows,
                                  budget=dx.Budget(trials=6)))
    assert resumed.run_id == first.run_id
    trials = sorted(resumed.trial_list(), key=lambda t: t.number)
    assert len(trials) == 6 and len({_key(t.params) for t in trials}) == 6
    old = [t for t in trials if t.source == "resumed"]
    assert {t.trial_id for t in old} == set(before)
    for t in old:
        assert t.params == before[t.trial_id].params
        assert t.values == pytest.approx(before[t.trial_id].values)
        assert t.state == "completed"
    new = [t for t in trials if t.source != "resumed"]
    assert len(new) == 3 and all(t.state == "completed" for t in new)
    assert {t.number for t in new} == {3, 4, 5}
    # the finished trials made no new call; the run's dollars carry over
    calls_after = dx.sql("select trial_id, count(*) as n from executions where run_id = ? "
                         "group by trial_id", [first.run_id])
    after = dict(zip(calls_after["trial_id"], calls_after["n"], strict=True))
    for trial_id, n in zip(calls_before["trial_id"], calls_before["n"], strict=True):
        assert after[trial_id] == n
    paid = float(dx.sql("select sum(cost) as c from executions where run_id = ? and "
                        "kind = 'lm'", [first.run_id])["c"][0])
    assert resumed.spent == pytest.approx(paid) and resumed.spent > spent_before
    assert resumed.lm_calls == sum(t.lm_calls for t in trials)
    stored = dx.sql("select count(*) as n, count(distinct trial_id) as ids from trials "
                    "where run_id = ?", [first.run_id]).iloc[0]
    assert stored["n"] == stored["ids"] == 6
    assert dx.sql("select state from runs where run_id = ?",
                  [first.run_id])["state"][0] == "finished"


def test_resume_keeps_to_the_dollar_budget_already_partly_spent(store: Path,
                                                                math: Any) -> None:
    program = dx.Predict(math.signature, model="sim/small")
    space = dx.Space([V.model(["sim/tiny", "sim/small", "sim/medium", "sim/large"]),
                      V.module(["predict", "cot"]), V.adapter(["chat", "markdown"])])
    rows = math.val[:10]
    dollars = 0.004
    first = _finished(dx.optimize(program, space, valset=rows, strategy="random",
                                  budget=dx.Budget(dollars=dollars, trials=2), force=True,
                                  pruning=False, seed=5))
    assert 0 < first.spent < dollars
    resumed = _finished(dx.resume(first.run_id, program, space, valset=rows,
                                  budget=dx.Budget(dollars=dollars, trials=60)))
    paid = float(dx.sql("select sum(cost) as c from executions where run_id = ? and "
                        "kind = 'lm'", [first.run_id])["c"][0])
    assert paid <= dollars and resumed.spent <= dollars
    assert resumed.spent == pytest.approx(paid)
    assert resumed.spent > 0.5 * dollars and len(resumed.trial_list()) < 60
    assert "$" in (resumed.stop_reason or "")


def test_resume_errors(store: Path, math: Any, sim_server: Any) -> None:
    program = dx.Predict(math.signature, model="sim/small")
    rows = math.val[:6]
    run = _finished(dx.optimize(program, _space(), valset=rows, strategy="random",
                                budget=dx.Budget(trials=1), seed=3))
    before = sim_server.stats()["total"]
    with pytest.raises(dx.ConfigurationError, match="started from a Python program"):
        dx.resume(run.run_id)
    with pytest.raises(dx.ConfigurationError, match="fingerprints differ"):
        dx.resume(run.run_id, program, _space(("sim/tiny", "sim/large")), valset=rows)
    with pytest.raises(dx.ConfigurationError, match="fingerprints differ"):
        dx.resume(run.run_id, dx.Predict(math.signature, model="sim/large"), _space(),
                  valset=rows)
    with pytest.raises(dx.ConfigurationError, match="no run 'run-nope'"):
        dx.resume("run-nope")
    with pytest.raises(dx.ConfigurationError, match=r"unknown arguments \['colour'\]"):
        dx.resume(run.run_id, program, _space(), valset=rows, colour="red")
    assert sim_server.stats()["total"] == before
    assert len(dx.sql("select * from trials where run_id = ?", [run.run_id])) == 1


# -- resume after the process was killed ----------------------------------------------------

BUDGET = 10
RESUME_SPEC = f"""
name: resume-me
signature: question -> answer
model: sim/small
dataset: {{name: sim-math, size: 16}}
variables:
  model: [sim/tiny, sim/small, sim/medium]
  module: [predict, cot]
  temperature: {{choices: [0.0, 0.3, 0.6, 1.0]}}
objectives: {{accuracy: max, cost: min}}
budget: {{trials: {BUDGET}}}
strategy: random
"""

CHILD = """
import sys
import dspex_lab as dx
dx.configure(cache=False)
run = dx.optimize(sys.argv[1], concurrency=2, example_concurrency=4, seed=7, pruning=False)
print(run.run_id, flush=True)
run.wait()
print("the run ended before it was killed", flush=True)
"""


@dataclass
class Killed:
    """A spec run killed mid-run in a child process, then resumed in this one."""

    path: Path
    run_id: str
    at_kill: pd.DataFrame         # the store's trials right after the kill
    calls_at_kill: pd.DataFrame   # executions per trial right after the kill
    config_at_kill: dict[str, Any]
    run: Run                      # the resumed run, finished
    after: pd.DataFrame           # the store's trials after the resumed run
    calls_after: pd.DataFrame
    config_after: dict[str, Any]
    paid_after: float


def _trials(path: Path, run_id: str) -> pd.DataFrame:
    return dx.sql("select trial_id, number, state, reason, params, accuracy, cost, lm_calls "
                  "from trials where run_id = ? order by number, trial_id", [run_id],
                  store=path)


def _calls(path: Path, run_id: str) -> pd.DataFrame:
    return dx.sql("select trial_id, count(*) as n, "
                  "count(*) filter (where kind = 'lm' and error_kind is null) as ok, "
                  "count(*) filter (where kind = 'program') as programs "
                  "from executions where run_id = ? and trial_id is not null "
                  "group by trial_id", [run_id], store=path)


def _config(path: Path, run_id: str) -> dict[str, Any]:
    raw = dx.sql("select config from runs where run_id = ?", [run_id], store=path)["config"][0]
    return dict(json.loads(raw))


@pytest.fixture(scope="module")
def killed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Killed]:
    # a simulator of its own that takes real time (speed 0.5), so a trial lasts long
    # enough to be caught in the middle
    server = sim.start(speed=0.5, seed=0)
    folder = tmp_path_factory.mktemp("killed")
    path, errors = folder / "killed.duckdb", folder / "child.stderr"
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}
    env.update(DSPEX_STORE=str(path), DSPEX_SIM_URL=server.base_url)
    with errors.open("w") as stderr:
        child = subprocess.Popen([sys.executable, "-c", CHILD, RESUME_SPEC], env=env,
                                 stdout=subprocess.PIPE, stderr=stderr, text=True)
    saved = recording._store, recording._explicit
    try:
        assert child.stdout is not None
        run_id = child.stdout.readline().strip()
        assert run_id.startswith("run-"), (run_id, errors.read_text())
        deadline = time.monotonic() + 60
        while True:  # >= 3 trials finished and some running: kill it mid-run
            assert child.poll() is None, "the child ended before it could be killed"
            assert time.monotonic() < deadline, "no progress in the child's store"
            try:
                states = _trials(path, run_id)["state"]
            except dx.DspexError:  # the child has not written the file yet
                states = pd.Series([], dtype=str)
            if (states != "running").sum() >= 3 and (states == "running").any():
                break
            time.sleep(0.05)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        at_kill, calls_at_kill = _trials(path, run_id), _calls(path, run_id)
        config_at_kill = _config(path, run_id)

        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DSPEX_SIM_URL", server.base_url)
            recording.set_cache_enabled(False)
            dx.configure(store=path)
            run = dx.resume(run_id)
            run.wait(120)
            active = recording.active_store()
            assert active is not None
            active.flush()  # reads by path below see what this process recorded
            after, calls_after = _trials(path, run_id), _calls(path, run_id)
            config_after = _config(path, run_id)
            paid = float(dx.sql("select coalesce(sum(cost), 0) as c from executions where "
                                "run_id = ? and kind = 'lm'", [run_id])["c"][0])
        yield Killed(path, run_id, at_kill, calls_at_kill, config_at_kill, run, after,
                     calls_after, config_after, paid)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
        if recording._store is not saved[0]:
            if recording._store is not None:
                recording._store.close()
            recording._store, recording._explicit = saved
        server.stop()


def _finished_at_kill(k: Killed) -> pd.DataFrame:
    return k.at_kill[k.at_kill["state"] != "running"]


def _running_at_kill(k: Killed) -> pd.DataFrame:
    return k.at_kill[k.at_kill["state"] == "running"]


@pytest.mark.slow
def test_resume_after_a_kill_keeps_the_finished_trials(killed: Killed) -> None:
    run = killed.run
    assert run.run_id == killed.run_id and run.state == "finished"
    assert run.stop_reason == f"trial budget reached ({BUDGET} trials)"
    done = _finished_at_kill(killed)
    assert len(done) >= 3 and len(_running_at_kill(killed)) >= 1
    resumed = {t.trial_id: t for t in run.trial_list() if t.source == "resumed"}
    assert set(resumed) == set(done["trial_id"])
    for _, row in done.iterrows():
        t = resumed[row["trial_id"]]
        assert t.params == json.loads(row["params"]) and t.state == row["state"]
        assert t.values["accuracy"] == pytest.approx(row["accuracy"])
        assert t.lm_calls == row["lm_calls"]
    # not run again: their executions are exactly what the killed process recorded
    before = dict(zip(killed.calls_at_kill["trial_id"], killed.calls_at_kill["n"],
                      strict=True))
    after = dict(zip(killed.calls_after["trial_id"], killed.calls_after["n"], strict=True))
    for trial_id in done["trial_id"]:
        assert after[trial_id] == before[trial_id]
    # the whole trial budget, no more: finished before the kill plus run now
    trials = run.trial_list()
    assert len(trials) == BUDGET
    assert all(t.state != "running" for t in trials)
    assert len({t.number for t in trials}) == BUDGET
    # dollars: what both processes paid
    assert run.spent == pytest.approx(killed.paid_after)
    assert any("resumed with" in n for n in run.notes)


@pytest.mark.slow
def test_resume_after_a_kill_marks_interrupted_trials_failed(killed: Killed) -> None:
    """Trials running when the process died stay in the store as failed
    ("interrupted"); the resumed run's new trials get trial ids of their own."""
    interrupted = _running_at_kill(killed)
    assert len(interrupted) >= 1
    after = killed.after.set_index("trial_id")
    for trial_id in interrupted["trial_id"]:
        row = after.loc[trial_id]
        assert row["state"] == "failed", (trial_id, row.to_dict())
        assert "interrupted" in str(row["reason"])
        # still says which configuration was interrupted
        started = interrupted.set_index("trial_id").loc[trial_id, "params"]
        assert json.loads(row["params"]) == json.loads(started), trial_id
    new_ids = {t.trial_id for t in killed.run.trial_list() if t.source != "resumed"}
    assert not new_ids & set(interrupted["trial_id"])
    assert killed.after["trial_id"].is_unique
    assert len(killed.after) == len(killed.at_kill) + len(new_ids)
    # every new trial's executions are its own: exactly its LM calls and examples
    calls = killed.calls_after.set_index("trial_id")
    for t in killed.run.trial_list():
        if t.source != "resumed":
            assert calls.loc[t.trial_id, "ok"] == t.lm_calls, t.trial_id
            assert calls.loc[t.trial_id, "programs"] == t.n_examples, t.trial_id


@pytest.mark.slow
def test_resume_after_a_kill_runs_with_the_original_settings(killed: Killed) -> None:
    """The run was started with pruning off: resumed, it still evaluates every trial on
    the whole validation set, so the budget ends with as many completed trials."""
    assert killed.config_at_kill["rungs"] == [16]
    assert killed.config_after["rungs"] == killed.config_at_kill["rungs"]
    trials = killed.run.trial_list()
    assert all(t.fidelity == 1.0 for t in trials if t.state != "failed")
    assert sum(t.state == "completed" for t in trials) == BUDGET


# -- many runs at once ------------------------------------------------------------------------

def test_a_hundred_runs_at_once(store: Path, math: Any, sim_server: Any) -> None:
    program = dx.Predict(math.signature, model="sim/small")
    space = dx.Space([V.model(["sim/tiny", "sim/small"]), V.module(["predict", "cot"])])
    served = sim_server.stats()["total"]
    started = time.monotonic()
    runs = [dx.optimize(program, space, valset=math.val[i: i + 5], concurrency=1,
                        warm_start=False, pruning=False, seed=i) for i in range(100)]
    for run in runs:
        run.wait(120)
    elapsed = time.monotonic() - started
    assert elapsed < 60, elapsed
    assert len({r.run_id for r in runs}) == 100
    for run in runs:
        assert run.state == "finished", (run.run_id, run.stop_reason)
        assert run.strategy.name == "grid"
        trials = run.trial_list()
        assert len(trials) == 4 and all(t.state == "completed" for t in trials)
        assert sorted(_key(t.params) for t in trials) == sorted(_key(a) for a in space.grid())
        assert all(t.n_examples == 5 for t in trials)
    lm_calls = sum(r.lm_calls for r in runs)
    assert lm_calls == sum(t.lm_calls for r in runs for t in r.trial_list())
    assert lm_calls >= 100 * 4 * 5
    # every request the simulator served belongs to one of these runs
    assert sim_server.stats()["total"] - served == lm_calls
    counts = dx.sql("select (select count(*) from runs where state = 'finished') as runs, "
                    "(select count(*) from trials where state = 'completed') as trials, "
                    "(select count(distinct run_id) from trials) as trial_runs, "
                    "(select count(*) from executions where kind = 'lm' and error_kind is null"
                    ") as calls, (select count(*) from executions where kind = 'program') "
                    "as programs").iloc[0]
    assert counts["runs"] == 100 and counts["trial_runs"] == 100
    assert counts["trials"] == 400
    assert counts["calls"] == lm_calls
    assert counts["programs"] == 100 * 4 * 5
    per_run = dx.sql("select run_id, count(*) as n from trials group by run_id")
    assert set(per_run["n"]) == {4} and set(per_run["run_id"]) == {r.run_id for r in runs}
