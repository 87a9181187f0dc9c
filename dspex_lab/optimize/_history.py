"""What earlier runs left in the store: warm starts and resumes.

- Warm start: the Pareto-optimal configurations of earlier runs of the *same*
  program and space (same fingerprints) are tried first by a new run. They
  are re-evaluated (the validation set may differ; with the cache on, calls
  already made cost nothing).
- Resume: a run whose process died is continued from its trials in the store;
  finished trials are told to the new study without any call, trials that
  were running are run again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from dspex_lab.optimize._objectives import Objective
from dspex_lab.optimize._pareto import non_dominated
from dspex_lab.optimize._run import TrialInfo

if TYPE_CHECKING:
    from dspex_lab.store.records import TrialRecord
    from dspex_lab.variables import Space

__all__ = ["WARM_START_LIMIT", "interrupted_trials", "max_trial_number", "prior_trials",
           "run_row", "spent_by_run", "warm_start_configs"]

WARM_START_LIMIT = 8


def _json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _params(space: Space, raw: Any) -> dict[str, Any] | None:
    """Stored params back into an assignment (demo lists become tuples); None when the
    stored configuration no longer fits the space."""
    params = _json(raw)
    if not isinstance(params, dict):
        return None
    out = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return out if space.is_valid(out) else None


def warm_start_configs(store: Any, program_id: str, space_id: str, space: Space,
                       objectives: Sequence[Objective], *, exclude_run: str | None = None,
                       limit: int = WARM_START_LIMIT) -> list[dict[str, Any]]:
    """The non-dominated completed configurations of earlier runs of this program and
    space (newest runs first), at most ``limit``."""
    frame = store.sql(
        "select t.params, t.objective_values from trials t join runs r using (run_id) "
        "where r.program_id = ? and r.space_id = ? and t.state = 'completed' "
        "and r.run_id <> ? order by r.started_at desc, t.number", [
            program_id, space_id, exclude_run or ""])
    found: list[tuple[dict[str, Any], tuple[float, ...]]] = []
    seen: set[str] = set()
    for raw_params, raw_values in zip(frame["params"], frame["objective_values"], strict=True):
        params = _params(space, raw_params)
        values = _json(raw_values)
        if params is None or not isinstance(values, dict):
            continue
        vector = []
        for o in objectives:
            v = values.get(o.name)
            if v is None:
                break
            vector.append(-float(v) if o.maximize else float(v))
        else:
            key = repr(sorted(params.items()))
            if key not in seen:
                seen.add(key)
                found.append((params, tuple(vector)))
    keep = non_dominated([v for _, v in found])
    return [found[i][0] for i in keep][:limit]


def run_row(store: Any, run_id: str) -> dict[str, Any] | None:
    frame = store.sql("select * from runs where run_id = ?", [run_id])
    if frame.empty:
        return None
    row = frame.iloc[0].to_dict()
    for key in ("objectives", "budget", "config", "tags"):
        row[key] = _json(row.get(key))
    return dict(row)


def prior_trials(store: Any, run_id: str, space: Space) -> list[TrialInfo]:
    """The finished trials of ``run_id`` (completed, pruned or failed) as the run saw them;
    trials that were still running when the process died are left out (run again)."""
    frame = store.sql(
        "select * from trials where run_id = ? and state in ('completed', 'pruned', 'failed') "
        "order by number", [run_id])
    out: list[TrialInfo] = []
    for row in frame.to_dict("records"):
        params = _params(space, row["params"])
        if params is None:
            continue
        values = _json(row.get("objective_values")) or {}
        metrics = _json(row.get("metrics")) or {}
        trial = TrialInfo(
            number=int(row["number"]), trial_id=str(row["trial_id"]), params=params,
            config=space.to_config(params), state=str(row["state"]),
            values={k: (None if v is None else float(v)) for k, v in values.items()},
            metrics=dict(metrics), reason=row.get("reason"),
            fidelity=float(row.get("fidelity") or 0.0),
            n_examples=int(row.get("n_examples") or 0), lm_calls=int(row.get("lm_calls") or 0),
            spent=float(row.get("spent") or 0.0), source="resumed")
        trial.calls_saved = float(metrics.get("calls_saved") or 0.0)
        out.append(trial)
    return out


def interrupted_trials(store: Any, run_id: str) -> list[TrialRecord]:
    """Trials the store still shows as running (their process died mid-trial), as the
    failed records that replace them: same id, params and start, reason "interrupted"."""
    from dspex_lab.store.records import TrialRecord

    frame = store.sql("select * from trials where run_id = ? and state = 'running' "
                      "order by number", [run_id])
    out = []
    for row in frame.to_dict("records"):
        params = _json(row.get("params"))
        started = row.get("started_at")
        out.append(TrialRecord(
            trial_id=str(row["trial_id"]), run_id=run_id, number=int(row["number"]),
            state="failed", params=params if isinstance(params, dict) else {},
            reason="interrupted: the process ended during this trial",
            started_at=started.timestamp() if hasattr(started, "timestamp") else time.time(),
            ended_at=time.time()))
    return out


def max_trial_number(store: Any, run_id: str) -> int:
    """The highest trial number stored for ``run_id`` (-1 when none)."""
    frame = store.sql("select coalesce(max(number), -1) as n from trials where run_id = ?",
                      [run_id])
    return int(frame["n"].iloc[0])


def spent_by_run(store: Any, run_id: str) -> float:
    """Dollars paid for every LM call recorded under ``run_id`` (a resumed run's
    budget continues from here)."""
    frame = store.sql("select coalesce(sum(cost), 0) as paid from executions "
                      "where run_id = ? and kind = 'lm'", [run_id])
    return float(frame["paid"].iloc[0] or 0.0)
