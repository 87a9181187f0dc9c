"""Evaluating one configuration on a slice of the validation set: the unit of work.

:class:`TrialSlice` is plain data (a program, a config dict, rows, a metric)
and :func:`evaluate_slice` a module-level coroutine, so the same unit can later
be shipped to a Dask worker unchanged: nothing in it reaches back into the
optimizer. The optimizer decides how many slices a trial gets (budget,
multi-fidelity) and merges their results with :func:`merge_results`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dspex_lab.programs.evaluate import EvaluationResult
    from dspex_lab.programs.metrics import Metric
    from dspex_lab.programs.module import Module

__all__ = ["TrialSlice", "accuracy_interval", "evaluate_slice", "failure_reason",
           "merge_results", "run_slice"]


@dataclass(frozen=True)
class TrialSlice:
    """Run ``program.with_config(config)`` on ``rows`` (examples ``offset`` onwards of the
    run's validation order) and score with ``metric``; executions carry ``tags``."""

    program: Module
    config: Mapping[str, Any]
    rows: Sequence[Mapping[str, Any]]
    metric: Metric | str | None
    offset: int = 0
    concurrency: int = 16
    tags: Mapping[str, str] = field(default_factory=dict)


async def evaluate_slice(work: TrialSlice) -> EvaluationResult:
    """The picklable unit: configure, evaluate, and renumber rows to the run's order."""
    configured = work.program.with_config(dict(work.config)) if work.config else work.program
    return await run_slice(configured, work)


async def run_slice(configured: Module, work: TrialSlice) -> EvaluationResult:
    """:func:`evaluate_slice` with the program already configured (a trial configures
    once and evaluates several slices)."""
    from dspex_lab.programs.evaluate import aevaluate

    result = await aevaluate(configured, list(work.rows), work.metric,
                             concurrency=work.concurrency, progress=False,
                             tags=dict(work.tags))
    if work.offset:
        for row in result.rows:
            row["example"] = int(row["example"]) + work.offset
        result.failures = [replace(f, index=f.index + work.offset) for f in result.failures]
    return result


def merge_results(parts: Sequence[EvaluationResult]) -> EvaluationResult:
    """One result for several slices of the same configuration (rows in order)."""
    from dspex_lab.programs.evaluate import EvaluationResult, percentile

    if len(parts) == 1:
        return parts[0]
    rows = [r for p in parts for r in p.rows]
    n = len(rows)
    known = all(p.cost is not None for p in parts)
    uncached_known = all(p.uncached_cost is not None for p in parts)
    latencies = [float(r["latency_s"]) for r in rows]
    return EvaluationResult(
        score=sum(float(r["score"]) for r in rows) / n if n else 0.0,
        n=n, n_failed=sum(p.n_failed for p in parts),
        cost=sum(p.cost or 0.0 for p in parts) if known else None,
        latency_p50_s=percentile(latencies, 0.5), latency_p95_s=percentile(latencies, 0.95),
        wall_s=sum(p.wall_s for p in parts), lm_calls=sum(p.lm_calls for p in parts),
        uncached_cost=sum(p.uncached_cost or 0.0 for p in parts) if uncached_known else None,
        uncached_latency_mean_s=(sum(float(r["uncached_latency_s"]) for r in rows) / n
                                 if n else 0.0),
        rows=rows, failures=[f for p in parts for f in p.failures])


def accuracy_interval(result: EvaluationResult, z: float = 1.96) -> tuple[float, float]:
    """A normal-approximation confidence interval of the mean score, clipped to [0, 1]."""
    half = z * result.score_stderr
    return max(0.0, result.score - half), min(1.0, result.score + half)


def failure_reason(result: EvaluationResult) -> str | None:
    """Why a trial failed when *every* example failed (else None): the kinds and a
    first message, so a broken configuration never shows up as accuracy 0."""
    if not result.n or result.n_failed < result.n:
        return None
    kinds = Counter(f.kind for f in result.failures)
    shown = ", ".join(f"{k} x{v}" for k, v in kinds.most_common())
    first = result.failures[0].message if result.failures else ""
    return f"all {result.n} examples failed ({shown}); first: {first[:300]}"
