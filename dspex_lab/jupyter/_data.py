"""A run as plain data, whether it is live in this kernel or only in the store.

Charts, the monitor and comparisons all read a :class:`RunData`: built from a
live :class:`~dspex_lab.optimize.Run` (:func:`from_run`) or from the store's
``runs``/``trials`` tables (:func:`from_store`), so a notebook reopened after a
kernel restart draws the same pictures as the kernel that ran the search.

The Pareto front and the hypervolume history are kept by a
:class:`FrontTracker`, which is *incremental*: completed trials never change,
so a monitor redrawing four times a second only does work for the trials that
completed since its last redraw. ``Run.hypervolume_history()`` recomputes the
hypervolume of every prefix on each call (minutes for a few hundred trials); the
tracker follows the same definition (reference point: accuracy at 0, every
other objective 10% beyond the worst completed value) and recomputes only
when that reference moves.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.optimize import TrialInfo
from dspex_lab.optimize._front_tracker import FrontTracker
from dspex_lab.optimize._objectives import minimization_vector

if TYPE_CHECKING:
    import pandas as pd

    from dspex_lab.optimize import Run

__all__ = ["DEFAULT_OBJECTIVES", "FrontTracker", "ObjectiveAxis", "RunData", "as_run_data",
           "from_run", "from_store", "sample_outputs", "trial_row"]


@dataclass(frozen=True)
class ObjectiveAxis:
    """An objective as the notebook sees it: a name and a direction (no function: a run
    read back from the store may have had a user objective we cannot rebuild)."""

    name: str
    maximize: bool


DEFAULT_OBJECTIVES = (ObjectiveAxis("accuracy", True), ObjectiveAxis("cost", False),
                      ObjectiveAxis("latency_s", False))
"""The objectives of a run that names none (the store's default too)."""

_FINAL_TRIAL_STATES = ("completed", "pruned", "failed")


def _vector(values: Mapping[str, float | None], objectives: Sequence[ObjectiveAxis]
            ) -> tuple[float, ...] | None:
    """Minimization vector of a trial's values (None when one is missing)."""
    return minimization_vector(values, objectives)


@dataclass
class RunData:
    """One run as plain data: enough to draw it, summarize it and compare it.

    ``live`` is True when it was read from a :class:`~dspex_lab.optimize.Run` of this
    process, False when it was rebuilt from the store.
    """

    run_id: str
    name: str | None
    state: str
    stop_reason: str | None
    strategy: str | None
    strategy_reason: str | None
    objectives: tuple[ObjectiveAxis, ...]
    trials: list[TrialInfo]
    tracker: FrontTracker
    spent: float
    lm_calls: int
    budget: dict[str, Any]
    max_trials: int | None
    started_at: float
    ended_at: float | None
    live: bool
    param_names: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    param_choices: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """The declared choices of categorical variables (fixed colours across live redraws)."""

    @property
    def front(self) -> set[int]:
        return self.tracker.front

    @property
    def done(self) -> bool:
        return self.state in ("finished", "stopped", "failed")

    def completed(self) -> list[TrialInfo]:
        return [t for t in self.trials if t.state == "completed"]

    def front_trials(self) -> list[TrialInfo]:
        front = self.front
        return [t for t in self.trials if t.number in front]

    def by_number(self, number: int) -> TrialInfo | None:
        for t in self.trials:
            if t.number == number:
                return t
        return None

    def elapsed_s(self, now: float | None = None) -> float:
        end = self.ended_at if self.ended_at is not None else (now or time.time())
        return max(0.0, end - self.started_at)

    def hypervolume_history(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(self.tracker.history(self.started_at),
                            columns=["completed", "trial", "elapsed_s", "hypervolume"])

    def trials_frame(self) -> pd.DataFrame:
        """The same columns as ``Run.trials`` (plus ``trial_id``)."""
        import pandas as pd

        return pd.DataFrame([trial_row(t, self.objectives) for t in self.trials])


def trial_row(t: TrialInfo, objectives: Sequence[ObjectiveAxis]) -> dict[str, Any]:
    """A trial as one row with ``Run.trials``'s columns (and ``trial_id``)."""
    row: dict[str, Any] = {"number": t.number, "state": t.state}
    row.update({f"param_{k}": (list(v) if isinstance(v, tuple) else v)
                for k, v in t.params.items()})
    row.update({o.name: t.values.get(o.name) for o in objectives})
    ci = t.metrics.get("accuracy_ci")
    row["accuracy_low"], row["accuracy_high"] = (ci or (None, None))
    row.update(fidelity=t.fidelity, n_examples=t.n_examples, lm_calls=t.lm_calls,
               spent=t.spent, reason=t.reason, source=t.source,
               duration_s=None if t.ended_at is None else t.ended_at - t.started_at,
               trial_id=t.trial_id)
    return row


def max_trials_of(budget: Mapping[str, Any]) -> int | None:
    """How many trials a budget allows: its ``trials``, else the optimizer's default when
    nothing else bounds the run (else None: money or time decides)."""
    from dspex_lab.optimize._setup import DEFAULT_TRIALS

    trials = budget.get("trials")
    if trials is not None:
        return int(trials)
    if budget.get("dollars") is None and budget.get("seconds") is None and \
            budget.get("minutes") is None:
        return DEFAULT_TRIALS
    return None


def _budget_dict(budget: Any) -> dict[str, Any]:
    if budget is None:
        return {}
    if isinstance(budget, Mapping):
        return {k: v for k, v in budget.items() if v is not None}
    to_spec = getattr(budget, "to_spec", None)
    spec: dict[str, Any] = to_spec() if callable(to_spec) else {}
    return spec


def from_run(run: Run, tracker: FrontTracker | None = None) -> RunData:
    """A snapshot of a live run (``tracker``: one kept from an earlier snapshot of the same
    run, so only new trials cost anything)."""
    objectives = tuple(ObjectiveAxis(o.name, o.maximize) for o in run.objectives)
    trials = run.trial_list()
    if tracker is None:
        tracker = FrontTracker(objectives)
    tracker.update(trials)
    budget = _budget_dict(run.budget)
    return RunData(
        run_id=run.run_id, name=run.name, state=run.state, stop_reason=run.stop_reason,
        strategy=run.strategy.name, strategy_reason=run.strategy.reason,
        objectives=objectives, trials=trials, tracker=tracker, spent=run.spent,
        lm_calls=run.lm_calls, budget=budget, max_trials=max_trials_of(budget),
        started_at=run.started_at, ended_at=run.ended_at, live=True,
        param_names=tuple(run.space.variables),
        param_choices={name: tuple(getattr(var, "choices", ()))
                       for name, var in run.space.variables.items()
                       if getattr(var, "choices", None)})


def _json(value: Any, default: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return value


def _epoch(value: Any) -> float | None:
    """A store timestamp (naive UTC) as seconds since the epoch."""
    import pandas as pd

    if value is None or value is pd.NaT:
        return None
    stamp = pd.Timestamp(value)
    if pd.isna(stamp):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return float(stamp.timestamp())


def _num(value: Any, kind: type = float) -> Any:
    if value is None:
        return None
    try:
        if isinstance(value, float) and math.isnan(value):
            return None
    except TypeError:
        return None
    return kind(value)


def from_store(run_id: str, store: Any = None) -> RunData:
    """A run rebuilt from the store's ``runs``, ``trials`` and ``executions`` tables
    (``store``: a path or Store; default the one being recorded into)."""
    from dspex_lab.errors import DspexError
    from dspex_lab.recording import sql

    runs = sql("select * from runs where run_id = ?", [run_id], store=store)
    if runs.empty:
        raise DspexError(f"no run {run_id!r} in the store (dx.sql('select run_id, name, "
                         f"state from runs') lists them)")
    r = runs.iloc[0]
    declared = _json(r["objectives"], None) or [
        {"name": o.name, "direction": "maximize" if o.maximize else "minimize"}
        for o in DEFAULT_OBJECTIVES]
    objectives = tuple(ObjectiveAxis(str(o["name"]), str(o.get("direction", "")).lower()
                                     in ("maximize", "max")) for o in declared)
    rows = sql("select * from trials where run_id = ? order by number", [run_id], store=store)
    trials: list[TrialInfo] = []
    params_seen: dict[str, None] = {}
    for _, s in rows.iterrows():
        params = _json(s["params"], {}) or {}
        metrics = _json(s["metrics"], {}) or {}
        values = _json(s["objective_values"], {}) or {}
        for k in params:
            params_seen.setdefault(k, None)
        started = _epoch(s["started_at"])
        trials.append(TrialInfo(
            number=int(s["number"]), trial_id=str(s["trial_id"]), params=dict(params),
            config={}, state=str(s["state"]), values=dict(values), metrics=dict(metrics),
            reason=None if s["reason"] is None or (isinstance(s["reason"], float))
            else str(s["reason"]),
            fidelity=_num(s["fidelity"]) or 0.0, n_examples=_num(s["n_examples"], int) or 0,
            lm_calls=_num(s["lm_calls"], int) or 0, spent=_num(s["spent"]) or 0.0,
            calls_saved=float(metrics.get("calls_saved") or 0.0),
            started_at=started if started is not None else 0.0,
            ended_at=_epoch(s["ended_at"]), source=str(metrics.get("source") or "sampler")))
    paid = sql("select coalesce(sum(cost), 0) as spent, count(*) filter (where error_kind "
               "is null) as calls from executions where run_id = ? and kind = 'lm'",
               [run_id], store=store).iloc[0]
    tracker = FrontTracker(objectives)
    tracker.update(trials)
    budget = _budget_dict(_json(r["budget"], {}))
    config = _json(r["config"], {}) or {}
    max_trials = config.get("max_trials") if "max_trials" in config else max_trials_of(budget)
    started_at = _epoch(r["started_at"]) or 0.0
    return RunData(
        run_id=run_id, name=None if r["name"] is None else str(r["name"]),
        state=str(r["state"]), stop_reason=None if r["stop_reason"] is None
        else str(r["stop_reason"]), strategy=None if r["strategy"] is None
        else str(r["strategy"]), strategy_reason=None if r["strategy_reason"] is None
        else str(r["strategy_reason"]), objectives=objectives, trials=trials,
        tracker=tracker, spent=float(paid["spent"] or 0.0), lm_calls=int(paid["calls"] or 0),
        budget=budget, max_trials=max_trials, started_at=started_at,
        ended_at=_epoch(r["ended_at"]), live=False, param_names=tuple(params_seen),
        config=config)


def as_run_data(source: Any, store: Any = None) -> RunData:
    """Whatever names a run, as :class:`RunData`: a ``Run``, ``RunData``, or a run id (the
    live run of this process if there is one, else the store's record)."""
    from dspex_lab.optimize import Run, get_run

    if isinstance(source, RunData):
        return source
    if isinstance(source, Run):
        return from_run(source)
    if isinstance(source, str):
        live = get_run(source)
        return from_run(live) if live is not None else from_store(source, store)
    raise TypeError(f"expected a Run, a run id or RunData, not {type(source).__name__}")


def sample_outputs(trial_id: str, limit: int = 3, store: Any = None) -> pd.DataFrame:
    """A few of a trial's top-level program calls (inputs, outputs, error) from the store.

    Top-level: a program call whose parent is not another program call of the trial
    (a composed program records its modules' calls too)."""
    from dspex_lab.recording import sql

    return sql(
        "select inputs, outputs, error_kind, error_message from executions "
        "where trial_id = ? and kind = 'program' and coalesce(parent_id, '') not in ("
        "  select call_id from executions where trial_id = ? and kind = 'program' "
        "  and call_id is not null) "
        "order by started_at limit ?", [trial_id, trial_id, int(limit)], store=store)
