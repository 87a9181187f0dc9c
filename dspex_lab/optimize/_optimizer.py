"""``dx.optimize`` and ``dx.resume``: start a run in the background, return its handle.

Checking happens in the caller's thread (mistakes raise in the cell that made
them); the run itself goes on the library's background event loop, so a
notebook stays responsive and a script calls ``run.wait()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dspex_lab.errors import ConfigurationError
from dspex_lab.events import new_id
from dspex_lab.optimize._driver import Driver
from dspex_lab.optimize._run import Run
from dspex_lab.optimize._setup import RunSetup, make_setup

if TYPE_CHECKING:
    from dspex_lab.programs.module import Module
    from dspex_lab.variables import Budget, Space

__all__ = ["optimize", "resume"]


def _preflight(setup: RunSetup, force: bool) -> list[str]:
    """Refuse a run whose estimated spend already exceeds its dollar budget (unless
    ``force``): with ``trials`` fixed the run could only stop early. Returns notes."""
    from dspex_lab.optimize._costs import CostEstimator
    from dspex_lab.variables import BudgetExceededError
    from dspex_lab.variables._analysis import config_sample

    budget = setup.budget
    if budget.dollars is None or setup.max_trials is None:
        return []
    estimator = CostEstimator(setup.program, setup.valset)
    if not estimator.available:
        return ["no pre-flight cost estimate for a multi-module program: the budget is "
                "enforced from measured costs"]
    configs, _ = config_sample(setup.space, setup.max_trials, setup.strategy.name, 30,
                               setup.seed)
    try:
        per = [estimator.per_example(setup.space.to_config(a)) for a in configs]
    except ConfigurationError:  # demos without a pool yet: bound when the run starts
        per = [estimator.per_example({k: v for k, v in setup.space.to_config(
            {n: x for n, x in a.items() if not isinstance(x, tuple)}).items()})
            for a in configs]
    known = [p for p in per if p is not None]
    if not known:
        return []
    mean_trial = sum(known) / len(known) * len(setup.valset)
    total = mean_trial * setup.max_trials
    if total > budget.dollars and not force:
        raise BudgetExceededError(
            f"The run would exceed its budget: {setup.max_trials} trials x "
            f"{len(setup.valset)} examples are estimated at ${total:.4f} (about "
            f"${mean_trial:.4f} per trial), more than budget.dollars ${budget.dollars:g}. "
            f"Raise the budget, lower trials or the validation set, or pass force=True "
            f"(the run then stops when the money is spent).")
    return [f"pre-flight estimate: ${total:.4f} for {setup.max_trials} trials"]


def _start(setup: RunSetup, run: Run, driver: Driver) -> Run:
    from dspex_lab import recording
    from dspex_lab.lm._runner import submit

    recording.active_store()  # open the store first: every row of the run has a home
    future = submit(driver.drive())
    run._future = future  # type: ignore[attr-defined]
    return run


def optimize(program_or_spec: Module | Any, space: Space | None = None, trainset: Any = None,
             valset: Any = None, metric: Any = None, *, objectives: Any = None,
             weights: Mapping[str, float] | None = None, strategy: str | None = None,
             budget: Budget | Mapping[str, Any] | None = None, concurrency: int = 4,
             example_concurrency: int = 16, pruning: bool | Sequence[float] = True,
             warm_start: bool = True, bootstrap: bool = False,
             teacher: Mapping[str, Any] | None = None, propose_instructions: int = 0,
             seed: int | None = None, name: str | None = None, force: bool = False,
             tags: Mapping[str, str] | None = None) -> Run:
    """Search the variable space for the Pareto front of the objectives; returns at once.

    ``program_or_spec``: a program with ``space`` (a :class:`dx.Space`), or a spec
    (:class:`dx.Spec` or its text) that brings program, space, dataset, metric,
    objectives, weights, budget and strategy. ``trainset``/``valset``: lists of dicts,
    DataFrames or built-in dataset names; trials are scored on ``valset``, demos come
    from ``trainset``. ``objectives``: default accuracy (max), cost and latency_s
    (min, per example, uncached); names, ``{name: direction}`` or :class:`dx.Objective`.
    ``weights`` pick ``run.best()``. ``strategy``: auto, grid, random, tpe, nsga2, gp.
    ``budget``: ``dx.Budget(dollars=, trials=, seconds=)``; a dollar budget is never
    exceeded. ``concurrency`` trials at a time, ``example_concurrency`` examples per
    trial. ``pruning``: multi-fidelity rungs (True: 20%, 50%, 100% of valset).
    ``warm_start``: try the best configurations of earlier runs of the same program and
    space first. ``bootstrap``: demos pools from teacher traces (``teacher``: a config
    dict, e.g. ``{"model": "gpt-4o", "module": "cot"}``). ``propose_instructions``:
    that many LM-proposed instruction candidates join the space. ``force``: start even
    when the pre-flight estimate exceeds the dollar budget.
    """
    setup = make_setup(program_or_spec, space, trainset, valset, metric, objectives=objectives,
                       weights=weights, strategy=strategy, budget=budget,
                       concurrency=concurrency, example_concurrency=example_concurrency,
                       pruning=pruning, warm_start=warm_start, bootstrap=bootstrap,
                       teacher=teacher, propose_instructions=propose_instructions, seed=seed,
                       name=name, tags=tags)
    notes = _preflight(setup, force)
    run = Run(f"run-{new_id()[:12]}", name=setup.name, program=setup.program,
              space=setup.space, objectives=setup.objectives, weights=setup.weights,
              strategy=setup.strategy, budget=setup.budget)
    run.notes.extend(notes)
    seeds: list[tuple[dict[str, Any], str]] = []
    if warm_start:
        seeds = [(a, "warm-start") for a in _warm_start(setup, run.run_id)]
        if seeds:
            run.notes.append(f"warm start: {len(seeds)} configurations from earlier runs")
    return _start(setup, run, Driver(setup, run, seeds=seeds))


def _warm_start(setup: RunSetup, run_id: str) -> list[dict[str, Any]]:
    from dspex_lab import recording
    from dspex_lab.optimize._history import warm_start_configs

    store = recording.active_store()
    if store is None:
        return []
    return warm_start_configs(store, setup.program_id, setup.space_id, setup.space,
                              setup.objectives, exclude_run=run_id)


def resume(run_id: str, program: Module | None = None, space: Space | None = None,
           trainset: Any = None, valset: Any = None, metric: Any = None,
           **overrides: Any) -> Run:
    """Continue a run from what the store holds (after a kernel restart or a crash).

    A run started from a spec resumes from ``run_id`` alone; a run started from a
    Python program needs the same ``program``, ``space`` and data again (checked
    against the stored fingerprints). Finished trials are not run again; trials that
    were running when the process ended are marked failed ("interrupted") and their
    configurations may be proposed again. The dollar budget continues from what the
    run already paid.
    """
    from dspex_lab import events, recording
    from dspex_lab.optimize._history import (
        interrupted_trials,
        max_trial_number,
        prior_trials,
        run_row,
        spent_by_run,
    )

    store = recording.active_store()
    if store is None:
        raise ConfigurationError("recording is off (dx.configure(store=None)): there is no "
                                 "store to resume from")
    row = run_row(store, run_id)
    if row is None:
        raise ConfigurationError(f"no run {run_id!r} in {store.path}: see dspex-lab runs")
    config = row["config"] or {}
    objectives = {o["name"]: o["direction"] for o in (row["objectives"] or [])}
    if program is None:
        if not config.get("spec"):
            raise ConfigurationError(
                f"run {run_id} was started from a Python program: pass the same program, "
                f"space and data to dx.resume(run_id, program, space, trainset, valset)")
        program_or_spec: Any = config["spec"]
    else:
        program_or_spec = program
    budget = overrides.pop("budget", None) or _stored_budget(row["budget"])
    setup = make_setup(
        program_or_spec, space, trainset, valset, metric,
        objectives=overrides.pop("objectives", objectives or None),
        weights=overrides.pop("weights", config.get("weights")),
        strategy=overrides.pop("strategy", row.get("strategy")), budget=budget,
        concurrency=overrides.pop("concurrency", config.get("concurrency", 4)),
        example_concurrency=overrides.pop("example_concurrency",
                                          config.get("example_concurrency", 16)),
        pruning=overrides.pop("pruning", _stored_pruning(config)), warm_start=False,
        bootstrap=bool(config.get("bootstrap")), teacher=config.get("teacher"),
        propose_instructions=int(config.get("propose_instructions") or 0),
        seed=config.get("seed"),
        name=row.get("name"), tags=overrides.pop("tags", None))
    if overrides:
        raise ConfigurationError(f"dx.resume got unknown arguments {sorted(overrides)}")
    if setup.space_id != row.get("space_id") or setup.program_id != row.get("program_id"):
        raise ConfigurationError(
            f"run {run_id} was made with another program or space (fingerprints differ): "
            f"resume with exactly the program and space it started with")
    history = prior_trials(store, run_id, setup.space)
    for lost in interrupted_trials(store, run_id):
        events.emit("trial.failed", lost)
    run = Run(run_id, name=setup.name, program=setup.program, space=setup.space,
              objectives=setup.objectives, weights=setup.weights, strategy=setup.strategy,
              budget=setup.budget)
    driver = Driver(setup, run, history=history)
    driver.first_number = max_trial_number(store, run_id) + 1
    driver.ledger.spent = spent_by_run(store, run_id)
    run.spent = driver.ledger.spent
    run.lm_calls = sum(t.lm_calls for t in history)
    run.notes.append(f"resumed with {len(history)} finished trials from the store")
    return _start(setup, run, driver)


def _stored_pruning(config: Mapping[str, Any]) -> bool | list[float]:
    """The pruning setting a run started with (runs from before it was stored: on)."""
    value = config.get("pruning", True)
    if isinstance(value, bool):
        return value
    if isinstance(value, list) and all(isinstance(v, int | float) for v in value):
        return [float(v) for v in value]
    return True


def _stored_budget(raw: Any) -> Budget | None:
    from dspex_lab.variables import Budget

    if not isinstance(raw, dict) or not raw:
        return None
    return Budget(**{k: v for k, v in raw.items()
                     if k in ("dollars", "trials", "minutes", "seconds")})
