"""The loop of one run, on the background event loop: propose, evaluate, tell, repeat.

Proposals come from Optuna's ask-and-tell interface. A proposal is checked
before anything is spent: a configuration the space's constraints reject is
told back as infeasible (``trial.set_constraint``) and never evaluated; one
already tried is told back with the known result (no calls); one whose
estimated cost exceeds what is left of the dollar budget is told back as
infeasible too. Trials run concurrently (``concurrency`` at a time, LM calls
bounded per model by the transport), each on growing slices of the
validation set (:mod:`._pruning`), each slice reserved against the budget
first (:mod:`._budget`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from dspex_lab import events
from dspex_lab.errors import DspexError
from dspex_lab.optimize._budget import Ledger
from dspex_lab.optimize._costs import CostEstimator
from dspex_lab.optimize._params import assignment_key, suggest, to_params
from dspex_lab.optimize._pruning import Pruner
from dspex_lab.optimize._run import FrontChanged, Run, TrialInfo
from dspex_lab.optimize._samplers import make_sampler, quiet_optuna
from dspex_lab.optimize._setup import RunSetup
from dspex_lab.optimize._trial import (
    TrialSlice,
    accuracy_interval,
    failure_reason,
    merge_results,
    run_slice,
)

if TYPE_CHECKING:
    import optuna

    from dspex_lab.optimize._surrogate import Surrogate
    from dspex_lab.programs.evaluate import EvaluationResult
    from dspex_lab.store.records import RunRecord

__all__ = ["MAX_ASKS", "Driver"]

MAX_ASKS = 64
"""Proposals asked of the sampler for one free slot before falling back to random ones."""
RANDOM_FALLBACK_TRIES = 256


class Driver:
    """Runs one :class:`Run` to its end (see the module docstring)."""

    def __init__(self, setup: RunSetup, run: Run, *,
                 history: list[TrialInfo] | None = None,
                 seeds: list[tuple[dict[str, Any], str]] | None = None) -> None:
        self.s = setup
        self.run = run
        self.ledger = Ledger(setup.budget.dollars)
        self.pruner = Pruner(setup.objectives)
        self.rng = random.Random(setup.seed)
        self.order = list(setup.valset)
        random.Random(setup.seed).shuffle(self.order)
        self.estimator = CostEstimator(setup.program, self.order)
        self.seen: dict[str, TrialInfo] = {}
        self.queue: deque[tuple[dict[str, Any], str]] = deque(seeds or [])
        self.history = list(history or [])
        self.grid_mode = setup.strategy.name == "grid"
        self.started = 0
        self.stop_reason: str | None = None
        self.deadline = (None if setup.budget.time_limit_s is None
                         else time.monotonic() + setup.budget.time_limit_s)
        self.model_costs: dict[str, tuple[float, int]] = {}
        self.front: tuple[int, ...] = ()
        self.study: optuna.Study | None = None
        self.surrogate: Surrogate | None = None
        self.unaffordable: set[str] = set()
        self.first_number = 0  # a resumed run numbers on after every stored trial

    # -- records -------------------------------------------------------------
    def run_record(self) -> RunRecord:
        from dspex_lab.store.records import RunRecord

        run, s = self.run, self.s
        return RunRecord(
            run_id=run.run_id, name=s.name, program_id=s.program_id, space_id=s.space_id,
            strategy=s.strategy.name, strategy_reason=s.strategy.reason,
            objectives=[{"name": o.name, "direction": o.direction} for o in s.objectives],
            budget=s.budget.to_spec(), config=s.describe(), state=run.state,
            stop_reason=run.stop_reason, started_at=run.started_at, ended_at=run.ended_at,
            tags=dict(s.tags))

    def _emit_definitions(self) -> None:
        from dspex_lab.optimize._setup import program_identity, space_identity
        from dspex_lab.store.records import ProgramRecord, SpaceRecord

        s = self.s
        ident = program_identity(s.program)
        signatures = sorted({m["signature"] for m in ident["modules"].values()})
        events.emit("store.program", ProgramRecord(
            program_id=s.program_id, name=s.name or type(s.program).__name__,
            kind=ident["class"], signature="; ".join(signatures), definition=ident))
        shape = space_identity(s.space)
        events.emit("store.space", SpaceRecord(
            space_id=s.space_id, program_id=s.program_id, name=s.name,
            variables=shape["variables"], constraints=shape["constraints"]))

    def _emit_trial(self, kind: str, trial: TrialInfo) -> None:
        self.run._emit(kind, trial.to_record(self.run.run_id))

    # -- the loop ------------------------------------------------------------
    async def drive(self) -> None:
        run = self.run
        self._emit_definitions()
        self.run._emit("run.started", self.run_record())
        state, error = "finished", None
        try:
            await self._prepare()
            await self._loop()
            if run.stop_requested:
                state = "stopped"
        except BaseException as exc:
            state, error = "failed", exc
            self.stop_reason = self.stop_reason or f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, Exception):
                raise
        finally:
            run.spent = self.ledger.spent
            run._finish(state, self.stop_reason, error)
            self.run._emit("run.finished", self.run_record())

    async def _prepare(self) -> None:
        """Spend what comes before the first trial (bootstrapped demos, instruction
        proposals; see :mod:`._prepare`), then set up the study and replay history."""
        from dspex_lab.optimize._prepare import prepare_space

        space, notes, paid, calls = await prepare_space(self.s, self.ledger, self._tags(None))
        self.s.space = self.run.space = space
        self.run.notes.extend(notes)
        self.run.lm_calls += calls
        self.run.spent = self.ledger.spent
        if paid and self.ledger.limit is not None and self.ledger.remaining == 0:
            self.stop_reason = "the dollar budget was spent preparing demos/instructions"
        self.study = self._make_study()
        if self.s.strategy.name == "surrogate":
            self._make_surrogate()
        if self.grid_mode:
            self._queue_grid()
        elif self.s.strategy.requested == "auto" and not self.history:
            self._queue_anchors()
        for trial in self.history:
            self._replay(trial)

    def _make_study(self) -> optuna.Study:
        import optuna

        s = self.s
        sampler = make_sampler(s.strategy.name, seed=s.seed,
                               trials=s.max_trials or 100, conditional=bool(s.space.conditions))
        with quiet_optuna():
            return optuna.create_study(
                directions=[optuna.study.StudyDirection.MAXIMIZE if o.maximize
                            else optuna.study.StudyDirection.MINIMIZE for o in s.objectives],
                sampler=sampler,
                study_name=f"dspex-{self.run.run_id}")

    def _queue_grid(self) -> None:
        points = list(self.s.space.grid(points=5))
        random.Random(self.s.seed).shuffle(points)
        queued = {assignment_key(a) for a, _ in self.queue}
        self.queue.extend((a, "grid") for a in points if assignment_key(a) not in queued)

    def _make_surrogate(self) -> None:
        from dspex_lab.optimize._surrogate import Surrogate

        space = self.s.space

        def estimate(assignment: dict[str, Any]) -> tuple[float, float] | None:
            est = self.estimator.estimate(space.to_config(assignment))
            if est is None or est.cost is None:
                return None
            return est.cost, est.latency_s

        self.surrogate = Surrogate(space, estimate, seed=self.s.seed)

    def _surrogate_proposal(self) -> dict[str, Any] | None:
        if self.surrogate is None:
            return None
        trials = self.run.trial_list()
        observed = [(t.params, t.values) for t in trials
                    if t.state in ("completed", "pruned") and t.values]
        completed = [t.values for t in trials if t.state == "completed"]
        running = [t.params for t in trials if t.state == "running"]
        return self.surrogate.propose(observed, completed, running,
                                      set(self.seen) | self.unaffordable)

    def _queue_anchors(self) -> None:
        from dspex_lab.optimize._design import anchor_configs

        if not self.estimator.available:
            return
        space = self.s.space
        trials = self.s.max_trials or 100
        anchors = anchor_configs(
            space, lambda a: self.estimator.per_example(space.to_config(a)),
            limit=max(2, 2 * trials // 3), seed=self.s.seed)
        queued = {assignment_key(a) for a, _ in self.queue}
        self.queue.extend((a, "anchor") for a in anchors if assignment_key(a) not in queued)

    def _replay(self, trial: TrialInfo) -> None:
        """Tell the study about a trial a previous process ran (resume), without calls."""
        assert self.study is not None
        self.run._add(trial)
        self.started += 1
        key = assignment_key(trial.params)
        self.seen[key] = trial
        self.queue = deque((a, src) for a, src in self.queue if assignment_key(a) != key)
        with quiet_optuna():
            self.study.enqueue_trial(to_params(self.s.space, trial.params))
            ot = self.study.ask()
            suggest(ot, self.s.space)
            self._tell_known(ot, trial)
        if trial.state == "completed":
            self._note_costs(trial)
            self._check_front()

    async def _loop(self) -> None:
        pending: set[asyncio.Task[None]] = set()
        while True:
            if self.stop_reason is None:
                self.stop_reason = self._stop_check()
            while self.stop_reason is None and len(pending) < self.s.concurrency:
                proposal = self._propose()
                if proposal is None:
                    break
                ot, assignment, source = proposal
                trial = self._open_trial(assignment, source)
                pending.add(asyncio.ensure_future(self._trial(ot, trial)))
                self.stop_reason = self._stop_check()
            if not pending:
                if self.stop_reason is None:
                    self.stop_reason = "no configuration left to try"
                return
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()

    def _stop_check(self) -> str | None:
        s = self.s
        if self.run.stop_requested:
            return "stopped by the user"
        if s.max_trials is not None and self.started >= s.max_trials:
            return f"trial budget reached ({s.max_trials} trials)"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return f"time budget reached ({s.budget.time_limit_s:g} s)"
        remaining = self.ledger.remaining
        if remaining is not None and remaining <= 0:
            return f"dollar budget spent (${self.ledger.spent:.4f} of ${self.ledger.limit:g})"
        return None

    # -- proposals -------------------------------------------------------------
    def _propose(self) -> tuple[Any, dict[str, Any], str] | None:
        assert self.study is not None
        space = self.s.space
        too_dear = 0
        with quiet_optuna():
            for _ in range(MAX_ASKS):
                source = "sampler"
                modelled = None if self.queue or self.grid_mode else self._surrogate_proposal()
                if self.queue:
                    wanted, source = self.queue.popleft()
                    self.study.enqueue_trial(to_params(space, wanted))
                elif modelled is not None:
                    source = "surrogate"
                    self.study.enqueue_trial(to_params(space, modelled))
                elif self.grid_mode:
                    self.stop_reason = "every configuration of the grid was tried"
                    return None
                ot = self.study.ask()
                assignment = suggest(ot, space)
                problems = space.validate(assignment)
                if problems:
                    self.run.rejected += 1
                    self._tell_infeasible(ot, "space")
                    continue
                prior = self.seen.get(assignment_key(assignment))
                if prior is not None:
                    self._tell_known(ot, prior)
                    continue
                if not self._affordable(assignment):
                    too_dear += 1
                    self.unaffordable.add(assignment_key(assignment))
                    self._tell_infeasible(ot, "budget")
                    continue
                return ot, assignment, source
            return self._random_fallback(too_dear)

    def _random_fallback(self, too_dear: int) -> tuple[Any, dict[str, Any], str] | None:
        assert self.study is not None
        space = self.s.space
        for _ in range(RANDOM_FALLBACK_TRIES):
            try:
                assignment = space.sample(self.rng)
            except DspexError:
                break
            if assignment_key(assignment) in self.seen:
                continue
            if not self._affordable(assignment):
                too_dear += 1
                continue
            self.study.enqueue_trial(to_params(space, assignment))
            ot = self.study.ask()
            return ot, suggest(ot, space), "random-fallback"
        size = space.size
        if size is not None and space.size_exact and len(self.seen) >= size:
            self.stop_reason = f"every valid configuration was tried ({size})"
        elif too_dear:
            self.stop_reason = (f"the remaining ${self.ledger.remaining:.4f} is below the "
                                f"estimated cost of every configuration proposed")
        else:
            self.stop_reason = "the sampler proposed no new valid configuration"
        return None

    def _tell_infeasible(self, ot: Any, why: str) -> None:
        assert self.study is not None
        ot.set_constraint(why, 1.0)
        self.study.tell(ot, [o.worst() for o in self.s.objectives])

    def _tell_known(self, ot: Any, prior: TrialInfo) -> None:
        import optuna

        assert self.study is not None
        values = [prior.values.get(o.name) for o in self.s.objectives]
        if prior.state in ("completed", "pruned") and all(v is not None for v in values):
            ot.set_constraint("space", 0.0)
            self.study.tell(ot, [float(v) for v in values if v is not None])
        else:
            self.study.tell(ot, state=optuna.trial.TrialState.FAIL)

    # -- estimates -----------------------------------------------------------
    def _model_key(self, config: dict[str, Any]) -> str:
        models = [str(v) for k, v in config.items() if k.rsplit(".", 1)[-1] == "model"]
        if models:
            return ",".join(sorted(models))
        own = [str(m.own_config().get("model")) for m in self.s.program.named_modules().values()]
        return ",".join(sorted(own))

    def _per_example_estimate(self, config: dict[str, Any]) -> float | None:
        estimate = self.estimator.per_example(config)
        if estimate is not None:
            return estimate
        total, n = self.model_costs.get(self._model_key(config), (0.0, 0))
        return total / n if n else None

    def _affordable(self, assignment: dict[str, Any]) -> bool:
        """No trial starts when what is left of the dollar budget is below its estimate."""
        remaining = self.ledger.remaining
        if remaining is None:
            return True
        per = self._per_example_estimate(self.s.space.to_config(assignment))
        return per is None or per * len(self.order) <= remaining

    def _note_costs(self, trial: TrialInfo) -> None:
        cost = trial.values.get("cost")
        if cost is None or not trial.n_examples:
            return
        key = self._model_key(trial.config)
        total, n = self.model_costs.get(key, (0.0, 0))
        self.model_costs[key] = (total + cost * trial.n_examples, n + trial.n_examples)

    def _tags(self, trial: TrialInfo | None) -> dict[str, str]:
        tags = {**self.s.tags, "run_id": self.run.run_id}
        if trial is not None:
            tags["trial_id"] = trial.trial_id
        return tags

    # -- one trial -------------------------------------------------------------
    def _open_trial(self, assignment: dict[str, Any], source: str) -> TrialInfo:
        """Number and announce a trial (synchronously, so the next proposal sees it)."""
        run, space = self.run, self.s.space
        number = max(max((t.number for t in run.trial_list()), default=-1),
                     self.first_number - 1) + 1
        trial = TrialInfo(number=number, trial_id=f"{run.run_id}-{number}",
                          params=assignment, config=space.to_config(assignment),
                          source=source)
        self.seen[assignment_key(assignment)] = trial
        self.started += 1
        run._add(trial)
        self._emit_trial("trial.started", trial)
        return trial

    async def _trial(self, ot: Any, trial: TrialInfo) -> None:
        try:
            result, stopped = await self._evaluate(trial)
            self._conclude(ot, trial, result, stopped)
        except Exception as exc:  # a bug or a bad config: this trial fails, the run goes on
            self._fail(ot, trial, f"{type(exc).__name__}: {exc}")

    async def _evaluate(self, trial: TrialInfo) -> tuple[EvaluationResult | None, str | None]:
        s = self.s
        configured = s.program.with_config(trial.config) if trial.config else s.program
        per_example = self.estimator.per_example(trial.config)
        model_key = self._model_key(trial.config)
        parts: list[EvaluationResult] = []
        done, full = 0, len(self.order)
        for stage_end in s.rungs:
            while done < stage_end:
                stopped = self._slice_stop()
                if stopped:
                    return _merged(parts), stopped
                reservation = self.ledger.reserve(
                    stage_end - done, self.ledger.per_example(model_key, per_example))
                if reservation is None:
                    return _merged(parts), "the dollar budget ran out"
                work = TrialSlice(s.program, trial.config,
                                  self.order[done:done + reservation.examples], s.metric,
                                  offset=done, concurrency=s.example_concurrency,
                                  tags=self._tags(trial))
                paid: float | None = None
                try:
                    part = await run_slice(configured, work)
                    paid = part.cost
                finally:
                    self.ledger.settle(reservation, reservation.dollars if paid is None
                                       else paid)
                    self.run.spent = self.ledger.spent
                if part.cost is None and self.ledger.limit is not None:
                    raise DspexError(f"the price of {model_key} is unknown, so a dollar budget "
                                     f"cannot be enforced: set it with dx.set_price(...) or "
                                     f"drop budget.dollars")
                self.ledger.observe(model_key, max((float(r["cost"] or 0.0) for r in part.rows),
                                                   default=0.0))
                parts.append(part)
                done += len(work.rows)
                self._progress(trial, parts, done, full)
            why = self._hopeless(parts, done / full) if stage_end < full else None
            if why:
                return _merged(parts), f"pruned after {done} of {full} examples: {why}"
        return _merged(parts), None

    def _slice_stop(self) -> str | None:
        if self.run.stop_requested:
            return "stopped by the user"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "time budget reached"
        return None

    def _progress(self, trial: TrialInfo, parts: list[EvaluationResult], done: int,
                  full: int) -> None:
        trial.n_examples = done
        trial.fidelity = done / full
        trial.lm_calls = sum(p.lm_calls for p in parts)
        trial.spent = sum(p.cost or 0.0 for p in parts)

    def _values(self, result: EvaluationResult) -> dict[str, float | None]:
        return {o.name: o.value(result) for o in self.s.objectives}

    def _hopeless(self, parts: list[EvaluationResult], fraction: float) -> str | None:
        merged = merge_results(parts)
        if failure_reason(merged):
            return None  # concluded as failed at the end of the slice anyway
        finished = [self._pessimistic(t) for t in self.run.completed()]
        return self.pruner.verdict(self._values(merged), merged.score_stderr, finished,
                                   fraction)

    def _pessimistic(self, trial: TrialInfo) -> dict[str, float | None]:
        """A finished trial's values with its accuracy lowered by the pruner's
        ``finished_z`` standard errors: a lucky measurement must not condemn others."""
        values = dict(trial.values)
        ci = trial.metrics.get("accuracy_ci")
        if values.get("accuracy") is not None and ci:
            stderr = (float(ci[1]) - float(ci[0])) / (2 * 1.96)
            values["accuracy"] = float(values["accuracy"] or 0.0) \
                - self.pruner.finished_z * stderr
        return values

    def _conclude(self, ot: Any, trial: TrialInfo, result: EvaluationResult | None,
                  stopped: str | None) -> None:
        import optuna

        assert self.study is not None
        full = len(self.order)
        self.run.lm_calls += result.lm_calls if result is not None else 0
        if result is None or not result.n:
            trial.state, trial.reason = "pruned", f"not run: {stopped or 'no examples'}"
            trial.ended_at = time.time()
            with quiet_optuna():
                self.study.tell(ot, state=optuna.trial.TrialState.FAIL)
            self._emit_trial("trial.pruned", trial)
            return
        broken = failure_reason(result)
        if broken:
            self._fail(ot, trial, broken)
            return
        trial.values = self._values(result)
        trial.metrics.update(
            accuracy_ci=list(accuracy_interval(result)), n_failed=result.n_failed,
            failure_kinds=_kinds(result), cost_paid=result.cost,
            latency_p50_s=result.latency_p50_s, latency_p95_s=result.latency_p95_s,
            wall_s=result.wall_s)
        trial.ended_at = time.time()
        complete = stopped is None and result.n == full
        if not complete:
            per_call = result.lm_calls / result.n
            trial.calls_saved = per_call * (full - result.n)
            self.run.calls_saved += trial.calls_saved
        trial.state = "completed" if complete else "pruned"
        trial.reason = None if complete else stopped
        values = [trial.values[o.name] for o in self.s.objectives]
        with quiet_optuna():
            if all(v is not None for v in values):
                ot.set_constraint("space", 0.0)
                self.study.tell(ot, [float(v) for v in values if v is not None])
            else:
                self.study.tell(ot, state=optuna.trial.TrialState.FAIL)
        self._emit_trial(f"trial.{trial.state}", trial)
        if complete:
            self._note_costs(trial)
            self._check_front()

    def _fail(self, ot: Any, trial: TrialInfo, reason: str) -> None:
        import optuna

        assert self.study is not None
        trial.state, trial.reason, trial.ended_at = "failed", reason, time.time()
        # RuntimeError: already told (a failure after telling), nothing more to say
        with quiet_optuna(), contextlib.suppress(RuntimeError):
            self.study.tell(ot, state=optuna.trial.TrialState.FAIL)
        self._emit_trial("trial.failed", trial)

    def _check_front(self) -> None:
        front = tuple(sorted(t.number for t in self.run.front_trials()))
        if front != self.front:
            self.front = front
            self.run._emit("front.changed", FrontChanged(
                self.run.run_id, front, self.run.hypervolume(), len(self.run.completed())))


def _merged(parts: list[EvaluationResult]) -> EvaluationResult | None:
    return merge_results(parts) if parts else None


def _kinds(result: EvaluationResult) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for f in result.failures:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    return kinds
