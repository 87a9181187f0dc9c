"""Bootstrapped few-shot demos: run a teacher on the trainset, keep what passes the metric.

Why bootstrap rather than copy trainset rows as demos: a trainset has inputs
and gold outputs, but no reasoning, no code, and nothing in the shape a given
module actually produces. Running a (usually stronger) teacher over the rows
and keeping only the calls whose final prediction passes the metric yields
demos that show a *correct* chain of thought or a *working* program, which is
what teaches a cheaper student.

How the per-module demos are captured: each predictor of the teacher is
replaced, in a private copy, by a tracing subclass whose ``acall`` appends
``(path, inputs, outputs)`` to a list held in a context variable set per row.
Context variables follow ``await`` and are copied into the threads that run a
synchronous ``forward`` (see :mod:`dspex_lab.programs.module`), so every
predictor call made for a row lands in that row's list, at no cost beyond an
append. (The ``program.*`` events carry inputs and outputs too, but not the
module's attribute path, and they arrive asynchronously on subscriber
threads; the trace is simpler and exact.)
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import random
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dspex_lab.errors import ConfigurationError, DatasetError, DspexError
from dspex_lab.events._trace import Meter, child_span, span_scope
from dspex_lab.lm import run_sync
from dspex_lab.programs.evaluate import _check_rows, _metric, _rows
from dspex_lab.programs.metrics import (
    ExactMatch,
    Metric,
    NormalizedMatch,
    NumericTolerance,
    TokenF1,
)
from dspex_lab.programs.module import Module, _set_path
from dspex_lab.programs.prediction import Prediction
from dspex_lab.programs.predictors import Predictor

__all__ = ["BootstrapError", "BootstrapResult", "abootstrap_demos", "bootstrap_demos"]

Trace = list[tuple[str, dict[str, Any], dict[str, Any]]]
"""What one row's predictor calls produced: (module path, inputs, outputs), in call order."""

_TRACE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar(
    "dspex_bootstrap_trace", default=None)

_BUILTIN_METRICS = (ExactMatch, NormalizedMatch, TokenF1, NumericTolerance)


class BootstrapError(DspexError):
    """No trainset row passed the metric, so there is nothing to use as a demo.

    ``result`` holds the full bookkeeping (rows tried, failures by kind, what
    was spent), so the caller can see *why* before changing the teacher, the
    metric or the threshold.
    """

    kind = "bootstrap"

    def __init__(self, message: str, result: BootstrapResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class BootstrapResult:
    """Demos that passed the metric, and what finding them cost.

    ``demos`` are program-level demos: a row's inputs plus the teacher's
    predicted outputs (``reasoning`` and ``code`` included when the module
    produced them). ``demos_by_module`` maps each predictor's path to demos of
    that predictor's own inputs and outputs; a program that *is* one predictor
    uses the path ``""`` (its key does not change when the reasoning module
    does), a composite program its attribute paths (``"draft"``,
    ``"checks[0]"``). ``as_config()`` turns them into a config for
    ``program.with_config``.

    ``calls``, ``cost`` and ``latency_s`` count every LM call made, rows beyond
    ``max_demos`` that were already in flight included; ``uncached_cost``
    prices cache hits at what they cost when first made (what an optimizer
    should compare). ``failures`` counts rows that raised, by error kind
    (``"parse_error"``, ``"sandbox"``, ``"metric"`` when the metric itself
    raised, ...); ``rows_below_threshold`` counts rows that ran but scored
    below the threshold.
    """

    demos: list[dict[str, Any]]
    demos_by_module: dict[str, list[dict[str, Any]]]
    rows_tried: int
    rows_passed: int
    rows_below_threshold: int
    failures: dict[str, int]
    calls: int
    cost: float | None
    uncached_cost: float | None
    latency_s: float
    rounds: int
    wall_s: float
    rows: list[dict[str, Any]] = field(repr=False, default_factory=list)

    def as_config(self) -> dict[str, Any]:
        """A config giving every traced predictor its demos: ``{"demos": [...]}`` for a
        single-predictor program, ``{path: {"demos": [...]}, ...}`` otherwise."""
        if set(self.demos_by_module) == {""}:
            return {"demos": list(self.demos_by_module[""])}
        return {path: {"demos": list(demos)} for path, demos in self.demos_by_module.items()
                if path}


# -- tracing ----------------------------------------------------------------------------

_traced_classes: dict[type[Predictor], type[Predictor]] = {}


def _traced_class(cls: type[Predictor]) -> type[Predictor]:
    """A subclass of ``cls`` whose calls are appended to the current row's trace.

    It keeps ``kind`` and the display name of ``cls``, so prompts, call records
    and the store see exactly what the untraced predictor would produce.
    """
    traced = _traced_classes.get(cls)
    if traced is not None:
        return traced

    async def acall(self: Predictor, **inputs: Any) -> Prediction:
        pred = await cls.acall(self, **inputs)
        sink = _TRACE.get()
        path = self.__dict__.get("_trace_path")
        if sink is not None and path is not None:
            sink.append((path, dict(inputs), pred.to_dict()))
        return pred

    def display_name(self: Predictor) -> str:
        return cls.__name__

    traced = type(f"Traced{cls.__name__}", (cls,),
                  {"acall": acall, "_display_name": display_name,
                   "__module__": __name__, "__doc__": _traced_class.__doc__})
    _traced_classes[cls] = traced
    return traced


def _trace_copy(predictor: Predictor, path: str) -> Predictor:
    traced = predictor._clone(_traced_class(type(predictor)), predictor.cfg)
    traced.__dict__["_trace_path"] = path
    return traced


def _traced(program: Module) -> Module:
    """A copy of ``program`` whose predictors record their calls (see the module docstring)."""
    if isinstance(program, Predictor):
        return _trace_copy(program, "")
    clone = copy.deepcopy(program)
    for path, predictor in program.named_modules().items():
        _set_path(clone, path, _trace_copy(predictor, path))
    return clone


def _resampled(teacher: Module, round_index: int, seed: int) -> Module:
    """The teacher for a later round: each predictor's LM sends a fresh ``seed`` request
    parameter, so providers that honour it sample anew and the response cache (keyed on
    the parameters) cannot replay the first round's failures."""
    request_seed = 1000 * seed + round_index
    if isinstance(teacher, Predictor):
        return teacher.with_config({"lm": teacher._lm().copy(seed=request_seed)})
    changes = {path: {"lm": predictor._lm().copy(seed=request_seed)}
               for path, predictor in teacher.named_modules().items()}
    return teacher.with_config(changes)


# -- checks ---------------------------------------------------------------------------

def _check_metric_fields(metric: Metric, rows: Sequence[Mapping[str, Any]],
                         program: Module) -> None:
    """Fail before any call when a built-in metric cannot find what it compares.

    A custom callable cannot be inspected; if it raises, the row counts as a
    ``"metric"`` failure and the error names it.
    """
    if not isinstance(metric, _BUILTIN_METRICS):
        return
    if metric.field is not None:
        wanted: tuple[str, ...] = (metric.field,)
    elif isinstance(program, Predictor):
        wanted = tuple(program.signature.output_fields)
    else:
        inputs = set(program.input_names())
        for i, row in enumerate(rows):
            if not [k for k in row if k not in inputs and k not in ("id", "difficulty")]:
                raise DatasetError(
                    f"Row {i} has only the program's inputs; the metric {metric!r} needs "
                    f"the expected outputs to compare the prediction with.")
        return
    for i, row in enumerate(rows):
        if not any(name in row for name in wanted):
            raise DatasetError(
                f"Row {i} has no field {' or '.join(map(repr, wanted))}, which the metric "
                f"{metric!r} compares with the prediction (this row has: "
                f"{', '.join(map(str, row))}). Add the expected outputs; nothing was run.")


# -- the run --------------------------------------------------------------------------

@dataclass
class _Pass:
    """A row that passed: where it sits in the search order, and what it produced."""

    order: tuple[int, int]  # (round, position in the shuffled trainset)
    demo: dict[str, Any]
    trace: Trace


class _Run:
    """State shared by the workers of one bootstrap (all on one event loop)."""

    def __init__(self, rows: list[Mapping[str, Any]], needed: list[str], score_fn: Metric,
                 threshold: float, max_demos: int, tag_items: tuple[tuple[str, str], ...]
                 ) -> None:
        self.rows = rows
        self.needed = needed
        self.score_fn = score_fn
        self.threshold = threshold
        self.max_demos = max_demos
        self.tag_items = tag_items
        self.passes: list[_Pass] = []
        self.failed_rows: set[int] = set()
        self.meters: list[Meter] = []
        self.failures: dict[str, int] = {}
        self.below = 0
        self.tried = 0
        self.log: list[dict[str, Any]] = []

    def enough(self) -> bool:
        return len(self.passes) >= self.max_demos

    async def run_round(self, teacher: Module, round_index: int, order: Sequence[int],
                        concurrency: int) -> None:
        pending = iter(enumerate(order))

        async def worker() -> None:
            for position, index in pending:
                if self.enough():
                    return
                await self.run_row(teacher, round_index, position, index)

        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(order)))))

    async def run_row(self, teacher: Module, round_index: int, position: int,
                      index: int) -> None:
        row = self.rows[index]
        inputs = {name: row[name] for name in self.needed}
        meter = Meter()
        self.meters.append(meter)
        self.tried += 1
        trace: Trace = []
        token = _TRACE.set(trace)
        span, _ = child_span(self.tag_items, meter=meter)
        entry: dict[str, Any] = {"index": index, "round": round_index, "score": None,
                                 "error_kind": None}
        try:
            with span_scope(span):
                try:
                    pred = await teacher.acall(**inputs)
                except DspexError as exc:
                    self._fail(entry, index, exc.kind, str(exc))
                    return
                except Exception as exc:  # a bug in user code: recorded, not fatal
                    self._fail(entry, index, "exception", f"{type(exc).__name__}: {exc}")
                    return
            try:
                score = float(self.score_fn(row, pred))
            except Exception as exc:
                self._fail(entry, index, "metric",
                           f"the metric raised {type(exc).__name__}: {exc}")
                return
            entry["score"] = score
            if score >= self.threshold:
                self.passes.append(_Pass((round_index, position),
                                         {**inputs, **pred.to_dict()}, list(trace)))
                self.failed_rows.discard(index)
            else:
                self.below += 1
                self.failed_rows.add(index)
        finally:
            _TRACE.reset(token)
            entry["cost"] = meter.cost if meter.cost_known else None
            entry["lm_calls"] = meter.calls
            self.log.append(entry)

    def _fail(self, entry: dict[str, Any], index: int, kind: str, message: str) -> None:
        entry["error_kind"] = kind
        entry["error"] = message
        self.failures[kind] = self.failures.get(kind, 0) + 1
        self.failed_rows.add(index)

    def result(self, rounds: int, started: float) -> BootstrapResult:
        chosen = sorted(self.passes, key=lambda p: p.order)[: self.max_demos]
        by_module: dict[str, list[dict[str, Any]]] = {}
        for passed in chosen:
            for path, call_inputs, outputs in passed.trace:
                demos = by_module.setdefault(path, [])
                if len(demos) < self.max_demos:
                    demos.append({**call_inputs, **outputs})
        known = all(m.cost_known for m in self.meters)
        return BootstrapResult(
            demos=[p.demo for p in chosen], demos_by_module=by_module,
            rows_tried=self.tried, rows_passed=len(self.passes),
            rows_below_threshold=self.below, failures=dict(sorted(self.failures.items())),
            calls=sum(m.calls for m in self.meters),
            cost=sum(m.cost for m in self.meters) if known else None,
            uncached_cost=sum(m.uncached_cost for m in self.meters) if known else None,
            latency_s=sum(m.uncached_latency_s for m in self.meters),
            rounds=rounds, wall_s=time.perf_counter() - started, rows=self.log)


def _nothing_passed(result: BootstrapResult, threshold: float) -> BootstrapError:
    failed = ", ".join(f"{kind}: {n}" for kind, n in result.failures.items()) or "none"
    first = next((r.get("error") for r in result.rows if r.get("error")), None)
    best = max((r["score"] for r in result.rows if r["score"] is not None), default=None)
    detail = f" First error: {first}" if first else ""
    best_text = "no row was scored" if best is None else f"the best score was {best:g}"
    return BootstrapError(
        f"No demo passed: {result.rows_tried} row(s) tried over {result.rounds} round(s); "
        f"{result.rows_below_threshold} scored below the threshold {threshold:g} "
        f"({best_text}); failures by kind: {failed}.{detail} Try a stronger teacher "
        f"(teacher_config={{'model': ..., 'module': 'cot'}}), a lower threshold, or check "
        f"that the metric compares the right fields.", result)


async def abootstrap_demos(program: Module, trainset: Iterable[Mapping[str, Any]] | Any,
                           metric: Metric | str | None, *,
                           teacher_config: Mapping[str, Any] | None = None,
                           max_demos: int = 16, max_rounds: int = 1, concurrency: int = 16,
                           threshold: float = 1.0, seed: int = 0,
                           tags: Mapping[str, str] | None = None) -> BootstrapResult:
    """Run a teacher over ``trainset`` and keep the calls of rows that pass ``metric``.

    The teacher is ``program.with_config(teacher_config)`` (or ``program``
    itself). Rows are shuffled with ``seed`` and run ``concurrency`` at a
    time; no new row starts once ``max_demos`` rows passed (score >=
    ``threshold``), and the first ``max_demos`` passing rows in shuffled order
    are kept, so the result does not depend on which calls finished first.
    Round 2 onwards (``max_rounds`` > 1, only while fewer than ``max_demos``
    passed) reruns the rows that failed, with a fresh ``seed`` request
    parameter on every teacher LM so that the model samples again and the
    cache cannot replay the failure.

    Executions carry ``tags`` (e.g. ``{"run_id": ...}``) so the store links
    them to the optimization run.

    Raises :class:`~dspex_lab.errors.DatasetError` for an empty trainset or
    rows missing a field the program or a built-in metric needs (before any
    call), :class:`~dspex_lab.errors.ConfigurationError` for bad arguments, and
    :class:`BootstrapError` (with ``.result``) when no row passed: an
    optimizer asked for demos should not silently tune with none. Fewer than
    ``max_demos`` passing rows is not an error; ``len(result.demos)`` says how
    many were found.
    """
    if not isinstance(program, Module):
        raise ConfigurationError(f"program must be a dx module or program, not "
                                 f"{type(program).__name__}.")
    for name, value, low in (("max_demos", max_demos, 1), ("max_rounds", max_rounds, 1),
                             ("concurrency", concurrency, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigurationError(f"{name} must be an integer >= {low}, not {value!r}.")
    score_fn = _metric(metric)
    rows = _rows(trainset)
    if not rows:
        raise DatasetError("The trainset is empty: bootstrapping needs rows with the "
                           "program's inputs and the expected outputs.")
    needed = program.input_names()
    _check_rows(rows, needed)
    _check_metric_fields(score_fn, rows, program)
    teacher = program.with_config(teacher_config) if teacher_config else program

    started = time.perf_counter()
    run = _Run(rows, needed, score_fn, threshold, max_demos,
               tuple(sorted((tags or {}).items())))
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    rounds = 0
    for round_index in range(max_rounds):
        if round_index and (run.enough() or not run.failed_rows):
            break
        if round_index == 0:
            todo, current = order, teacher
        else:
            todo = [i for i in order if i in run.failed_rows]
            current = _resampled(teacher, round_index, seed)
        rounds += 1
        await run.run_round(_traced(current), round_index, todo, concurrency)
    result = run.result(rounds, started)
    if not result.demos:
        raise _nothing_passed(result, threshold)
    return result


def bootstrap_demos(program: Module, trainset: Iterable[Mapping[str, Any]] | Any,
                    metric: Metric | str | None, *,
                    teacher_config: Mapping[str, Any] | None = None, max_demos: int = 16,
                    max_rounds: int = 1, concurrency: int = 16, threshold: float = 1.0,
                    seed: int = 0, tags: Mapping[str, str] | None = None) -> BootstrapResult:
    """The synchronous form of :func:`abootstrap_demos` (runs on the background loop)."""
    return run_sync(abootstrap_demos(
        program, trainset, metric, teacher_config=teacher_config, max_demos=max_demos,
        max_rounds=max_rounds, concurrency=concurrency, threshold=threshold, seed=seed,
        tags=tags))
