"""Rich displays for the notebook: a run's summary and side-by-side comparisons of runs.

:func:`compare_runs` returns a :class:`RunComparison`, which notebooks show as an
HTML table (``_repr_html_``) and code reads as a DataFrame (``.frame``). Runs
may be live ``Run`` objects or run ids read back from the store, so a
comparison works after a kernel restart too.

Hypervolumes of different runs are only comparable against one reference
point: when the runs share their objectives, each run's front is measured
against a reference built from *all* the runs' completed trials (accuracy at 0,
every other objective 10% beyond the worst value any run saw).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.jupyter import _format
from dspex_lab.jupyter._data import RunData, _vector, as_run_data
from dspex_lab.optimize import hypervolume

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunComparison", "compare_runs", "summary_rows"]


def _state_counts(data: RunData) -> str:
    states: dict[str, int] = {}
    for t in data.trials:
        states[t.state] = states.get(t.state, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none yet"


def _has(data: RunData, name: str) -> bool:
    return any(o.name == name for o in data.objectives)


def best_accuracy(data: RunData) -> tuple[int, float] | None:
    """(trial, accuracy) of the most accurate completed trial."""
    if not _has(data, "accuracy"):
        return None
    scored = [(t.values["accuracy"], -t.number, t.number) for t in data.completed()
              if isinstance(t.values.get("accuracy"), int | float)]
    if not scored:
        return None
    acc, _, number = max(scored)
    return number, float(acc)  # type: ignore[arg-type]


def cheapest_front_point(data: RunData) -> tuple[int, float, float | None] | None:
    """(trial, cost, accuracy) of the cheapest trial on the front."""
    if not _has(data, "cost"):
        return None
    front = [t for t in data.front_trials() if isinstance(t.values.get("cost"), int | float)]
    if not front:
        return None
    t = min(front, key=lambda t: (t.values["cost"], t.number))
    acc = t.values.get("accuracy")
    return t.number, float(t.values["cost"] or 0.0), None if acc is None else float(acc)


def summary_rows(data: RunData) -> list[tuple[str, str]]:
    """A run's key facts as (label, text) pairs: state, strategy, trials, front,
    hypervolume, best accuracy, cheapest front point, money and time."""
    name = f" ({data.name})" if data.name else ""
    state = data.state + (f" ({data.stop_reason})" if data.stop_reason else "")
    total = f" of {data.max_trials}" if data.max_trials else ""
    done = sum(t.state != "running" for t in data.trials)
    rows = [("run", data.run_id + name), ("state", state),
            ("strategy", f"{data.strategy or '?'}"
             + (f": {data.strategy_reason}" if data.strategy_reason else "")),
            ("trials", f"{done}{total} done: {_state_counts(data)}"),
            ("front", f"{len(data.front)} trials"),
            ("hypervolume", f"{data.tracker.hypervolume():.4g}")]
    best = best_accuracy(data)
    if best is not None:
        rows.append(("best accuracy", f"{best[1]:.3f} (trial {best[0]})"))
    cheap = cheapest_front_point(data)
    if cheap is not None:
        acc = "" if cheap[2] is None else f", accuracy {cheap[2]:.3f}"
        rows.append(("cheapest front point",
                     f"trial {cheap[0]}: {_format.dollars(cheap[1])} per example{acc}"))
    limit = data.budget.get("dollars")
    rows.append(("spent", f"{_format.dollars(data.spent)}"
                 + (f" of {_format.dollars(float(limit))}" if limit else "")
                 + f" in {data.lm_calls} LM calls"))
    rows.append(("elapsed", _format.duration(data.elapsed_s())))
    return rows


@dataclass
class RunComparison:
    """Runs side by side. ``frame``: one row per run; ``notes``: caveats (e.g. runs with
    different objectives, whose hypervolumes are not comparable)."""

    runs: list[RunData]
    frame: pd.DataFrame
    notes: list[str] = field(default_factory=list)

    def _repr_html_(self) -> str:
        columns = list(self.frame.columns)
        rows = [[_cell(c, v) for c, v in zip(columns, rec, strict=True)]
                for rec in self.frame.itertuples(index=False)]
        notes = "".join(f"<div style='color:#a15c00;font-size:12px'>{html.escape(n)}</div>"
                        for n in self.notes)
        return _format.html_table(rows, columns) + notes

    def __repr__(self) -> str:
        return f"RunComparison({len(self.runs)} runs)\n{self.frame.to_string(index=False)}"


def _cell(column: str, v: Any) -> str:
    if column in ("spent", "cheapest cost"):
        return _format.dollars(v)
    if column in ("best accuracy", "cheapest accuracy") and isinstance(v, float):
        return f"{v:.3f}"
    if column == "hypervolume" and isinstance(v, float):
        return f"{v:.4g}"
    if column == "elapsed":
        return _format.duration(v)
    return "—" if v is None else str(v)


def _shared_hypervolumes(runs: Sequence[RunData]) -> tuple[list[float], list[str]]:
    signature = [tuple((o.name, o.maximize) for o in r.objectives) for r in runs]
    if len(set(signature)) > 1:
        return ([r.tracker.hypervolume() for r in runs],
                ["the runs have different objectives: each hypervolume is against its own "
                 "run's reference point, not comparable"])
    objectives = runs[0].objectives
    points = [[v for t in r.completed() if (v := _vector(t.values, objectives)) is not None]
              for r in runs]
    everything = [p for ps in points for p in ps]
    if not everything:
        return [0.0 for _ in runs], []
    worst = [max(p[i] for p in everything) for i in range(len(objectives))]
    ref = tuple(0.0 if o.maximize and o.name == "accuracy" else w + 0.1 * abs(w) + 1e-12
                for o, w in zip(objectives, worst, strict=True))
    return [hypervolume(ps, ref) if ps else 0.0 for ps in points], []


def compare_runs(*runs: Any, store: Any = None) -> RunComparison:
    """Runs side by side: strategy, trials, front size, hypervolume (against one shared
    reference point), best accuracy, cheapest front point, dollars spent, time.

    Each run is a ``Run`` or a run id (this kernel's run, else the store's record;
    ``store``: a path or Store to read)."""
    import pandas as pd

    if len(runs) == 1 and isinstance(runs[0], list | tuple):
        runs = tuple(runs[0])
    if not runs:
        raise ValueError("compare_runs needs at least one run (a Run or a run id)")
    datas = [as_run_data(r, store) for r in runs]
    hvs, notes = _shared_hypervolumes(datas)
    rows = []
    for data, hv in zip(datas, hvs, strict=True):
        best = best_accuracy(data)
        cheap = cheapest_front_point(data)
        rows.append({
            "run": data.run_id + (f" ({data.name})" if data.name else ""),
            "state": data.state, "strategy": data.strategy,
            "trials": sum(t.state != "running" for t in data.trials),
            "completed": len(data.completed()), "front": len(data.front),
            "hypervolume": hv, "best accuracy": None if best is None else best[1],
            "cheapest cost": None if cheap is None else cheap[1],
            "cheapest accuracy": None if cheap is None else cheap[2],
            "spent": data.spent, "elapsed": data.elapsed_s()})
    return RunComparison(datas, pd.DataFrame(rows), notes)
