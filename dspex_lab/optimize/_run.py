"""The handle a user holds while a run goes on in the background, and after.

Everything here reads the run's own state under a lock: the driver (on the
background loop) appends trials and the notebook thread reads them, so a
DataFrame is always a consistent snapshot. Nothing here waits on the run
except :meth:`Run.wait`.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.errors import ConfigurationError, DspexError
from dspex_lab.optimize._front_tracker import FrontTracker
from dspex_lab.optimize._objectives import (
    Objective,
    minimization_vector,
    resolve_weights,
    scalarize,
)
from dspex_lab.optimize._pareto import non_dominated

if TYPE_CHECKING:
    import pandas as pd

    from dspex_lab.events import Event, Subscription
    from dspex_lab.programs.module import Module
    from dspex_lab.store.records import TrialRecord
    from dspex_lab.variables import Space, StrategyChoice

__all__ = ["FrontChanged", "Run", "TrialInfo", "get_run", "runs"]

_REGISTRY: dict[str, Run] = {}
_REGISTRY_LOCK = threading.Lock()


def runs() -> list[Run]:
    """The runs started (or resumed) in this process, oldest first."""
    with _REGISTRY_LOCK:
        return list(_REGISTRY.values())


def get_run(run_id: str) -> Run | None:
    """The run with this id if this process started it (else read it from the store)."""
    with _REGISTRY_LOCK:
        return _REGISTRY.get(run_id)

FINAL_STATES = ("finished", "stopped", "failed")


@dataclass
class TrialInfo:
    """One trial as the run sees it (the store keeps the same as a ``TrialRecord``).

    ``state``: ``running``, ``completed``, ``pruned`` or ``failed``. ``values`` are
    objective values at the fidelity reached (``fidelity``: the fraction of the
    validation set evaluated); ``spent`` the dollars really paid.
    """

    number: int
    trial_id: str
    params: dict[str, Any]
    config: dict[str, Any]
    state: str = "running"
    values: dict[str, float | None] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    fidelity: float = 0.0
    n_examples: int = 0
    lm_calls: int = 0
    spent: float = 0.0
    calls_saved: float = 0.0
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    source: str = "sampler"

    def to_record(self, run_id: str) -> TrialRecord:
        from dspex_lab.store.records import TrialRecord

        metrics = dict(self.metrics)
        metrics["calls_saved"] = self.calls_saved
        metrics["source"] = self.source
        return TrialRecord(
            trial_id=self.trial_id, run_id=run_id, number=self.number, state=self.state,
            params=_jsonable(self.params), values=dict(self.values), metrics=metrics,
            reason=self.reason, fidelity=self.fidelity, n_examples=self.n_examples,
            lm_calls=self.lm_calls, spent=self.spent, started_at=self.started_at,
            ended_at=self.ended_at)


@dataclass(frozen=True)
class FrontChanged:
    """Event ``front.changed``: the run's Pareto front now holds these trial numbers."""

    run_id: str
    trials: tuple[int, ...]
    hypervolume: float
    n_completed: int


def _jsonable(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()}


class Run:
    """A running (or finished) optimization. Returned at once by :func:`dx.optimize`.

    ``run.wait()`` blocks until it ends; ``run.stop()`` asks it to stop (trials in
    flight finish); ``run.trials`` and ``run.pareto_front()`` are DataFrames;
    ``run.best(weights=...)`` is a configured program; ``run.subscribe(fn)``
    delivers this run's events on a thread of their own.
    """

    def __init__(self, run_id: str, *, name: str | None, program: Module, space: Space,
                 objectives: tuple[Objective, ...], weights: Mapping[str, float] | None,
                 strategy: StrategyChoice, budget: Any) -> None:
        self.run_id = run_id
        self.name = name
        self.program = program
        self.space = space
        self.objectives = objectives
        self.weights = dict(weights or {})
        self.strategy = strategy
        self.budget = budget
        self.state = "running"
        self.stop_reason: str | None = None
        self.error: BaseException | None = None
        self.started_at = time.time()
        self.ended_at: float | None = None
        self.spent = 0.0
        self.lm_calls = 0
        self.calls_saved = 0.0
        self.rejected = 0
        self.notes: list[str] = []
        self._trials: list[TrialInfo] = []
        self._log: list[tuple[str, Any]] = []
        self._log_lock = threading.Lock()
        self._tracker_lock = threading.Lock()
        self._front_tracker: FrontTracker | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._stop = threading.Event()
        with _REGISTRY_LOCK:
            _REGISTRY[run_id] = self

    # -- control -------------------------------------------------------------
    def stop(self) -> None:
        """Start no new trial or example; trials in flight finish their current slice."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def wait(self, timeout: float | None = None) -> Run:
        """Block until the run ends (raises what ended it, if it failed)."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"run {self.run_id} still running after {timeout} s; "
                               f"call run.stop() to end it early")
        if self.state == "failed" and self.error is not None:
            raise self.error
        return self

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def _finish(self, state: str, reason: str | None, error: BaseException | None = None
                ) -> None:
        self.state, self.stop_reason, self.error = state, reason, error
        self.ended_at = time.time()
        self._done.set()

    # -- trials --------------------------------------------------------------
    def _add(self, trial: TrialInfo) -> None:
        with self._lock:
            self._trials.append(trial)

    def trial_list(self) -> list[TrialInfo]:
        """A snapshot of the trials (objects shared with the run: read, don't change)."""
        with self._lock:
            return list(self._trials)

    def completed(self) -> list[TrialInfo]:
        return [t for t in self.trial_list() if t.state == "completed"]

    @property
    def trials(self) -> pd.DataFrame:
        """One row per trial: number, state, the variables, objective values, accuracy
        interval, fidelity, examples, LM calls, dollars paid, reason."""
        import pandas as pd

        rows = []
        for t in self.trial_list():
            row: dict[str, Any] = {"number": t.number, "state": t.state}
            row.update({f"param_{k}": (list(v) if isinstance(v, tuple) else v)
                        for k, v in t.params.items()})
            row.update({o.name: t.values.get(o.name) for o in self.objectives})
            ci = t.metrics.get("accuracy_ci")
            row["accuracy_low"], row["accuracy_high"] = (ci or (None, None))
            row.update(fidelity=t.fidelity, n_examples=t.n_examples, lm_calls=t.lm_calls,
                       spent=t.spent, reason=t.reason, source=t.source,
                       duration_s=None if t.ended_at is None else t.ended_at - t.started_at)
            rows.append(row)
        return pd.DataFrame(rows)

    # -- the front -----------------------------------------------------------
    def _vector(self, values: Mapping[str, float | None]) -> tuple[float, ...] | None:
        return minimization_vector(values, self.objectives)

    def front_trials(self) -> list[TrialInfo]:
        """Completed trials no other completed trial dominates."""
        done = [t for t in self.completed() if self._vector(t.values) is not None]
        points = [self._vector(t.values) for t in done]
        keep = non_dominated([p for p in points if p is not None])
        return [done[i] for i in keep]

    def pareto_front(self) -> pd.DataFrame:
        """The trials on the Pareto front (same columns as :attr:`trials`), best
        weighted score first."""
        import pandas as pd

        front = {t.number for t in self.front_trials()}
        table = self.trials
        if table.empty or not front:
            return pd.DataFrame(columns=table.columns)
        out = table[table["number"].isin(front)].copy()
        points = [{o.name: r[o.name] for o in self.objectives} for _, r in out.iterrows()]
        out["weighted_score"] = scalarize(points, self.objectives, self._weights(None))
        return out.sort_values("weighted_score", ascending=False).reset_index(drop=True)

    def _weights(self, weights: Mapping[str, float] | None) -> dict[str, float]:
        return resolve_weights(weights or self.weights or None, self.objectives)

    def best_trial(self, weights: Mapping[str, float] | None = None) -> TrialInfo:
        """The front's trial with the best weighted score (objectives scaled to [0, 1])."""
        front = self.front_trials()
        if not front:
            raise DspexError(f"run {self.run_id} has no completed trial yet"
                             + (f" ({self.stop_reason})" if self.stop_reason else "")
                             + "; wait for one (run.wait()) or look at run.trials")
        scores = scalarize([t.values for t in front], self.objectives, self._weights(weights))
        return max(zip(scores, front, strict=True), key=lambda p: (p[0], -p[1].number))[1]

    def best(self, weights: Mapping[str, float] | None = None) -> Module:
        """The program configured as the best trial for ``weights`` (e.g.
        ``{"accuracy": 1, "cost": 0.5}``; default: the run's weights, else all equal)."""
        trial = self.best_trial(weights)
        return self.program.with_config(trial.config) if trial.config else self.program

    def reference_point(self) -> tuple[float, ...] | None:
        """The hypervolume reference (minimization): accuracy-like objectives at 0, the
        others 10% beyond the worst value seen in completed trials."""
        return self._tracker().reference_point

    def hypervolume(self) -> float:
        return self._tracker().hypervolume()

    def hypervolume_history(self) -> pd.DataFrame:
        """Hypervolume of the front after each completed trial (in completion order),
        all measured against today's reference point so the curve is comparable."""
        import pandas as pd

        rows = self._tracker().history(self.started_at)
        return pd.DataFrame(rows, columns=["completed", "trial", "elapsed_s", "hypervolume"])

    def _tracker(self) -> FrontTracker:
        """The run's incremental front tracker, brought up to date (completed trials never
        change, so each call only pays for the trials completed since the last)."""
        with self._tracker_lock:
            if self._front_tracker is None:
                self._front_tracker = FrontTracker(self.objectives)
            self._front_tracker.update(self.completed())
            return self._front_tracker

    # -- events --------------------------------------------------------------
    def _emit(self, kind: str, record: Any) -> None:
        """Report on the bus and keep the event, so late subscribers can replay it."""
        from dspex_lab import events

        with self._log_lock:
            self._log.append((kind, record))
            events.emit(kind, record)

    def subscribe(self, callback: Callable[[Event], object], kinds: Iterable[str] | None = None,
                  *, replay: bool = True, **options: Any) -> Subscription:
        """Deliver this run's events (``trial.*``, ``run.*``, ``front.changed``) to
        ``callback`` on its own thread; a slow callback never slows the trials.

        ``replay`` (default) first delivers what the run already reported, in order,
        so subscribing right after ``dx.optimize`` (or to a finished run) misses
        nothing."""
        from dspex_lab import events
        from dspex_lab.events import Event

        run_id = self.run_id

        def only_mine(event: Event) -> object:
            if getattr(event.record, "run_id", None) == run_id:
                return callback(event)
            return None

        wanted = list(kinds) if kinds is not None else ["run.*", "trial.*", "front.*"]
        with self._log_lock:  # no event can slip between the replay and the live feed
            sub = events.subscribe(only_mine, kinds=wanted, **options)
            if replay:
                for kind, record in self._log:
                    if sub.matches(kind):
                        sub.offer(Event(kind, record))
        return sub

    # -- display -------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        states: dict[str, int] = {}
        for t in self.trial_list():
            states[t.state] = states.get(t.state, 0) + 1
        return {"run_id": self.run_id, "state": self.state, "stop_reason": self.stop_reason,
                "strategy": self.strategy.name, "strategy_reason": self.strategy.reason,
                "trials": states, "spent": self.spent, "lm_calls": self.lm_calls,
                "calls_saved": self.calls_saved, "front_size": len(self.front_trials())}

    def __repr__(self) -> str:
        s = self.summary()
        trials = ", ".join(f"{k} {v}" for k, v in sorted(s["trials"].items())) or "none yet"
        why = f" ({self.stop_reason})" if self.stop_reason else ""
        return (f"<Run {self.run_id} {self.state}{why}: {trials}; front {s['front_size']}; "
                f"${self.spent:.4f} spent; strategy {self.strategy.name}>")

    def _repr_html_(self) -> str:
        s = self.summary()
        trials = ", ".join(f"{k}: {v}" for k, v in sorted(s["trials"].items())) or "none yet"
        rows = [("run", self.run_id), ("state", self.state + (
            f" ({self.stop_reason})" if self.stop_reason else "")),
            ("strategy", f"{self.strategy.name}: {self.strategy.reason}"),
            ("trials", trials), ("front", str(s["front_size"])),
            ("spent", f"${self.spent:.4f} in {self.lm_calls} LM calls")]
        body = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(v)}</td></tr>" for k, v in rows)
        return f"<table>{body}</table>"


def check_weights(weights: Mapping[str, float] | None, objectives: tuple[Objective, ...]
                  ) -> dict[str, float]:
    """Validate weights early (at ``dx.optimize``), with the run's objectives."""
    if weights is not None and not isinstance(weights, Mapping):
        raise ConfigurationError(f"weights is a mapping of objective name to weight, not "
                                 f"{weights!r}")
    return resolve_weights(weights, objectives)
