"""``dx.evaluate``: run a program over a dataset, concurrently, and score it.

All examples run as coroutines on the background loop (no thread per
example; sync user programs excepted), a fixed pool of ``concurrency``
workers pulls examples, and a failing example is recorded, not fatal. Inputs
are checked against what the program needs before any call, so a typo in a
dataset costs nothing.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.errors import ConfigurationError, DatasetError, DspexError, EvaluationAborted
from dspex_lab.events._trace import Meter, child_span, span_scope
from dspex_lab.lm import run_sync
from dspex_lab.programs.metrics import BY_NAME, Metric, exact_match
from dspex_lab.programs.module import Module

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["EvaluationResult", "Failure", "aevaluate", "evaluate"]


@dataclass(frozen=True, slots=True)
class Failure:
    index: int
    kind: str
    message: str
    raw: str | None = None


@dataclass
class EvaluationResult:
    """Scores and costs of one evaluation.

    ``score`` is the mean metric over all ``n`` examples, failures counting 0
    (a configuration that fails is not a good one); ``score_stderr`` its
    standard error. ``cost`` is dollars for every LM call made, failed
    examples included (None if a model's price is unknown). Latencies are per
    example (summed LM latency). ``uncached_cost`` and
    ``uncached_latency_mean_s`` count cache hits at their original price and
    latency: they are what an optimizer should compare.
    """

    score: float
    n: int
    n_failed: int
    cost: float | None
    latency_p50_s: float
    latency_p95_s: float
    wall_s: float
    lm_calls: int
    uncached_cost: float | None
    uncached_latency_mean_s: float
    rows: list[dict[str, Any]] = field(repr=False)
    failures: list[Failure] = field(repr=False)

    @property
    def score_stderr(self) -> float:
        if self.n < 2:
            return 0.0
        scores = [r["score"] for r in self.rows]
        mean = sum(scores) / len(scores)
        var = sum((s - mean) ** 2 for s in scores) / (len(scores) - 1)
        return math.sqrt(var / len(scores))

    @property
    def table(self) -> pd.DataFrame:
        """One row per example: inputs, expected and predicted fields, score, cost, error."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    @property
    def cost_per_example(self) -> float | None:
        return None if self.cost is None or not self.n else self.cost / self.n

    def summary(self) -> dict[str, Any]:
        return {"score": self.score, "n": self.n, "failed": self.n_failed, "cost": self.cost,
                "latency_p50_s": self.latency_p50_s, "latency_p95_s": self.latency_p95_s,
                "lm_calls": self.lm_calls, "wall_s": self.wall_s}

    def __repr__(self) -> str:
        cost = "unknown" if self.cost is None else f"${self.cost:.4f}"
        return (f"EvaluationResult(score={self.score:.3f} ± {self.score_stderr:.3f}, "
                f"n={self.n}, failed={self.n_failed}, cost={cost}, "
                f"latency p50={self.latency_p50_s * 1000:.0f} ms "
                f"p95={self.latency_p95_s * 1000:.0f} ms)")

    def _repr_html_(self) -> str:
        import html

        cost = "unknown" if self.cost is None else f"${self.cost:.4f}"
        kinds: dict[str, int] = {}
        for f in self.failures:
            kinds[f.kind] = kinds.get(f.kind, 0) + 1
        fails = ", ".join(f"{k}: {v}" for k, v in sorted(kinds.items())) or "none"
        return (
            "<table><tr><th style='text-align:left'>score</th>"
            f"<td>{self.score:.3f} ± {self.score_stderr:.3f}</td></tr>"
            f"<tr><th style='text-align:left'>examples</th><td>{self.n}</td></tr>"
            f"<tr><th style='text-align:left'>cost</th><td>{cost}</td></tr>"
            f"<tr><th style='text-align:left'>latency p50 / p95</th>"
            f"<td>{self.latency_p50_s * 1000:.0f} / {self.latency_p95_s * 1000:.0f} ms</td></tr>"
            f"<tr><th style='text-align:left'>failures</th><td>{html.escape(fails)}</td></tr>"
            "</table>")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile of ``values`` by linear interpolation (0.0 for none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _rows(dataset: Any) -> list[Mapping[str, Any]]:
    if hasattr(dataset, "to_dict") and hasattr(dataset, "columns"):
        return list(dataset.to_dict("records"))
    if isinstance(dataset, Mapping | str | bytes):
        raise ConfigurationError("dataset must be a list of dicts (one per example) or a "
                                 "DataFrame, not a single mapping or string.")
    rows = list(dataset)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise DatasetError(f"Row {i} is a {type(row).__name__}, not a dict of fields.")
    return rows


def _check_rows(rows: Sequence[Mapping[str, Any]], needed: Sequence[str]) -> None:
    for i, row in enumerate(rows):
        for name in needed:
            if name not in row:
                raise DatasetError(
                    f"Row {i} has no field {name!r}, which the program needs "
                    f"(inputs: {', '.join(needed)}; this row has: {', '.join(map(str, row))}). "
                    f"Rename the column or fix the row; nothing was run.")


def _metric(metric: Metric | str | None) -> Metric:
    if metric is None:
        return exact_match
    if isinstance(metric, str):
        try:
            return BY_NAME[metric]
        except KeyError:
            raise ConfigurationError(f"Unknown metric {metric!r}; built-ins: "
                                     f"{', '.join(BY_NAME)} (or pass any callable).") from None
    if not callable(metric):
        raise ConfigurationError("metric must be a callable metric(example, prediction).")
    return metric


class _Progress:
    """A one-line progress report on stderr, redrawn at most twice a second."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.total = total
        self.enabled = enabled
        self.done = 0
        self.failed = 0
        self.start = time.perf_counter()
        self._last = 0.0

    def tick(self, failed: bool) -> None:
        self.done += 1
        self.failed += failed
        if self.enabled:
            now = time.perf_counter()
            if now - self._last >= 0.5 or self.done == self.total:
                self._last = now
                self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = now - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else 0.0
        end = "\n" if self.done == self.total else ""
        sys.stderr.write(f"\revaluate: {self.done}/{self.total} "
                         f"({100 * self.done / self.total:.0f}%) {rate:.0f}/s, "
                         f"{self.failed} failed, eta {eta:.0f}s   {end}")
        sys.stderr.flush()


def evaluate(program: Module, dataset: Iterable[Mapping[str, Any]] | Any,
             metric: Metric | str | None = None, *, concurrency: int = 64,
             max_errors: int | None = None, progress: bool | None = None,
             tags: Mapping[str, str] | None = None) -> EvaluationResult:
    """Run ``program`` on every row of ``dataset`` and score it with ``metric``.

    ``max_errors`` stops a clearly broken run once more examples than that have
    failed (raising :class:`EvaluationAborted` with the partial result as
    ``.result``). ``progress`` defaults to on for 200+ examples.
    """
    return run_sync(aevaluate(program, dataset, metric, concurrency=concurrency,
                              max_errors=max_errors, progress=progress, tags=tags))


async def aevaluate(program: Module, dataset: Iterable[Mapping[str, Any]] | Any,
                    metric: Metric | str | None = None, *, concurrency: int = 64,
                    max_errors: int | None = None, progress: bool | None = None,
                    tags: Mapping[str, str] | None = None) -> EvaluationResult:
    """The async form of :func:`evaluate` (runs on the caller's loop)."""
    if not isinstance(program, Module):
        raise ConfigurationError(f"program must be a dx module or program, not "
                                 f"{type(program).__name__}.")
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be >= 1, not {concurrency}.")
    score_fn = _metric(metric)
    rows = _rows(dataset)
    needed = program.input_names()
    _check_rows(rows, needed)
    n = len(rows)
    show = progress if progress is not None else n >= 200
    bar = _Progress(n, show)
    results: list[dict[str, Any] | None] = [None] * n
    failures: list[Failure] = []
    meters: list[Meter] = []
    tag_items = tuple(sorted((tags or {}).items()))
    state = {"aborted": False}
    started = time.perf_counter()
    pending = iter(range(n))

    async def run_one(i: int) -> None:
        row = rows[i]
        inputs = {name: row[name] for name in needed}
        meter = Meter()
        meters.append(meter)
        span, _ = child_span(tag_items, meter=meter)
        record: dict[str, Any] = {"example": i}
        if "id" in row:
            record["id"] = row["id"]
        record.update(inputs)
        for key, value in row.items():
            if key not in inputs and key != "id":
                record[f"expected_{key}"] = value
        error: Failure | None = None
        score = 0.0
        with span_scope(span):
            try:
                pred = await program.acall(**inputs)
            except DspexError as exc:
                error = Failure(i, exc.kind, str(exc), getattr(exc, "raw", None))
            except Exception as exc:  # a bug in user code: recorded, counted toward max_errors
                error = Failure(i, "exception", f"{type(exc).__name__}: {exc}")
            else:
                for key, value in pred.items():
                    record[f"pred_{key}"] = value
                try:
                    score = float(score_fn(row, pred))
                except Exception as exc:
                    error = Failure(i, "metric", f"the metric raised {type(exc).__name__}: {exc}")
        known = meter.cost_known
        record.update(score=score, cost=meter.cost if known else None,
                      uncached_cost=meter.uncached_cost if known else None,
                      latency_s=meter.latency_s, uncached_latency_s=meter.uncached_latency_s,
                      lm_calls=meter.calls,
                      tokens=meter.prompt_tokens + meter.completion_tokens,
                      error_kind=error.kind if error else None,
                      error=error.message if error else None)
        results[i] = record
        if error is not None:
            failures.append(error)
            if max_errors is not None and len(failures) > max_errors:
                state["aborted"] = True
        bar.tick(error is not None)

    async def worker() -> None:
        for i in pending:
            if state["aborted"]:
                return
            await run_one(i)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, n))))
    done_rows = [r for r in results if r is not None]
    known = all(m.cost_known for m in meters)
    result = EvaluationResult(
        score=sum(r["score"] for r in done_rows) / len(done_rows) if done_rows else 0.0,
        n=len(done_rows), n_failed=len(failures),
        cost=sum(m.cost for m in meters) if known else None,
        latency_p50_s=percentile([r["latency_s"] for r in done_rows], 0.5),
        latency_p95_s=percentile([r["latency_s"] for r in done_rows], 0.95),
        wall_s=time.perf_counter() - started, lm_calls=sum(m.calls for m in meters),
        uncached_cost=sum(m.uncached_cost for m in meters) if known else None,
        uncached_latency_mean_s=(sum(r["uncached_latency_s"] for r in done_rows)
                                 / len(done_rows) if done_rows else 0.0),
        rows=done_rows, failures=sorted(failures, key=lambda f: f.index))
    if state["aborted"]:
        kinds = sorted({f.kind for f in failures})
        exc = EvaluationAborted(
            f"Stopped after {len(failures)} failures (max_errors={max_errors}) in "
            f"{len(done_rows)} of {n} examples; failure kinds: {', '.join(kinds)}. First: "
            f"{result.failures[0].message}")
        exc.result = result  # type: ignore[attr-defined]
        raise exc
    return result
