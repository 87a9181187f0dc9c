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

import bisect
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.optimize import TrialInfo, dominates, hypervolume

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
    out: list[float] = []
    for o in objectives:
        v = values.get(o.name)
        if v is None or not isinstance(v, int | float) or not math.isfinite(v):
            return None
        out.append(-float(v) if o.maximize else float(v))
    return tuple(out)


class FrontTracker:
    """The Pareto front and the hypervolume history of completed trials, kept up to date
    incrementally (a trial, once completed, never changes).

    ``update(trials)`` takes any snapshot of a run's trials (running ones are ignored);
    ``front`` is the set of trial numbers no completed trial dominates (equal points are
    all kept, like ``Run.front_trials()``); ``history()`` the hypervolume after each
    completed trial in completion order, against the current reference point.
    """

    def __init__(self, objectives: Sequence[ObjectiveAxis]) -> None:
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
    def update(self, trials: Iterable[TrialInfo]) -> bool:
        """Take in newly completed trials; True when anything changed."""
        changed = False
        for t in trials:
            if t.state != "completed" or t.number in self._seen:
                continue
            self._seen.add(t.number)
            key = (t.ended_at or 0.0, t.number)
            at = bisect.bisect(self._keys, key)
            vector = _vector(t.values, self.objectives)
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
        if self._worst is None:
            return None
        return tuple(0.0 if o.maximize and o.name == "accuracy"
                     else w + 0.1 * abs(w) + 1e-12
                     for o, w in zip(self.objectives, self._worst, strict=True))

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
