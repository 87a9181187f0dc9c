"""How good are the fronts dx.optimize finds, and does it keep to its budgets?

On the simulator every configuration's exact expected accuracy, dollars and
latency per example are known (``dspex_lab.sim.expected_metrics``), so the true
Pareto front of a space is computable by exhaustion. Each run below searches
with noisy measurements on a slice of the validation set; what it found is
then scored at the exact values. Prints one JSON object:

- ``hv_ratio_auto_30``: hypervolume of the front found by ``strategy="auto"`` in
  30 trials / hypervolume of the true front (fixed reference point; mean over
  seeds).
- ``auto_vs_random_15``: mean hypervolume of ``auto`` / ``random`` at 15 trials.
- ``pruning_calls_saved``: LM calls avoided by multi-fidelity pruning / calls a
  run without pruning would have made; ``pruning_hv_loss``: hypervolume lost to
  pruning (fraction of the true front's; mean over seeds, negative = gained).
- ``budget_overshoot``: runs (of 20 with tight dollar budgets) whose paid
  dollars, summed from the store's executions, exceed the budget.
- LM calls and dollars per run.

Run: ``python bench/optimizer_quality.py [--seeds 10] [--val 60]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import dspex_lab as dx
from dspex_lab import sim
from dspex_lab.optimize import hypervolume, non_dominated

DATASET = "sim-math"
MODELS = ["sim/tiny", "sim/small", "sim/medium", "sim/large"]
MODULES = ["predict", "cot"]
ADAPTERS = ["chat", "json", "markdown"]
TEMPERATURES = [0.0, 0.7]
K_MAX = 4
CACHE = Path(__file__).with_name(".optimizer_quality_truth.json")


def pool() -> list[dict[str, Any]]:
    return [dict(r) for r in dx.datasets.load(DATASET).demos(K_MAX)]


def space() -> dx.Space:
    v = dx.variables
    return dx.Space([v.model(MODELS), v.module(MODULES), v.adapter(ADAPTERS),
                     v.demos((0, K_MAX), pool=pool()), v.temperature(choices=TEMPERATURES)])


def key(params: dict[str, Any]) -> str:
    return "|".join(f"{n}={params[n]!r}" for n in ("model", "module", "adapter", "temperature")
                    ) + f"|k={len(params['demos'])}"


def _exact(item: tuple[str, dict[str, Any]]) -> tuple[str, list[float]]:
    name, params = item
    demos = pool()[: len(params["demos"])]
    m = sim.expected_metrics({"model": params["model"], "module": params["module"],
                              "adapter": params["adapter"], "temperature": params["temperature"],
                              "demos": demos}, DATASET, "val")
    return name, [m.accuracy, m.cost_per_example, m.latency_s_per_example]


def truth() -> dict[str, list[float]]:
    """Exact (accuracy, $/example, s/example) of every configuration (cached on disk)."""
    configs = {key(a): a for a in space().grid()}
    known: dict[str, list[float]] = json.loads(CACHE.read_text()) if CACHE.exists() else {}
    missing = [(k, a) for k, a in configs.items() if k not in known]
    if missing:
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2) as pool_:
            known.update(dict(pool_.map(_exact, missing, chunksize=4)))
        CACHE.write_text(json.dumps(known))
    return {k: known[k] for k in configs}


class Scorer:
    """Hypervolume at exact values, objectives scaled by the grid's worst values."""

    def __init__(self, exact: dict[str, list[float]]) -> None:
        self.exact = exact
        self.max_cost = max(v[1] for v in exact.values())
        self.max_latency = max(v[2] for v in exact.values())
        self.reference = (1.0, 1.1, 1.1)

    def point(self, k: str) -> tuple[float, float, float]:
        acc, cost, lat = self.exact[k]
        return (1.0 - acc, cost / self.max_cost, lat / self.max_latency)

    def hv(self, keys: list[str]) -> float:
        points = [self.point(k) for k in set(keys)]
        front = [points[i] for i in non_dominated(points)]
        return hypervolume(front, self.reference) if front else 0.0


def run_once(strategy: str, trials: int, seed: int, val: list[dict[str, Any]], *,
             pruning: bool = True, budget: float | None = None) -> dx.Run:
    program = dx.Predict("question -> answer", model="sim/small")
    run = dx.optimize(program, space(), valset=val, strategy=strategy,
                      budget=dx.Budget(trials=trials, dollars=budget), seed=seed,
                      pruning=pruning, warm_start=False, force=True, concurrency=4)
    return run.wait()


def found_keys(run: dx.Run) -> list[str]:
    return [key(t.params) for t in run.completed()]


def paid_from_store(run_id: str) -> float:
    frame = dx.sql("select coalesce(sum(cost), 0) as paid from executions where run_id = ? "
                   "and kind = 'lm'", [run_id])
    return float(frame["paid"].iloc[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--val", type=int, default=60)
    parser.add_argument("--budget-runs", type=int, default=20)
    args = parser.parse_args()
    started = time.perf_counter()
    exact = truth()
    scorer = Scorer(exact)
    true_hv = scorer.hv(list(exact))
    server = sim.start(speed=0)
    tmp = tempfile.mkdtemp(prefix="dspex-bench-")
    dx.configure(store=Path(tmp) / "bench.duckdb", cache=False)
    val = [dict(r) for r in dx.datasets.load(DATASET).val[: args.val]]
    figures: dict[str, list[float]] = {k: [] for k in (
        "auto30", "auto15", "random15", "nopruning30", "calls", "dollars", "saved",
        "calls_nopruning")}
    strategy_names = set()
    for seed in range(args.seeds):
        auto30 = run_once("auto", 30, seed, val)
        strategy_names.add(auto30.strategy.name)
        figures["auto30"].append(scorer.hv(found_keys(auto30)) / true_hv)
        figures["calls"].append(auto30.lm_calls)
        figures["dollars"].append(auto30.spent)
        figures["saved"].append(auto30.calls_saved)
        flat = run_once("auto", 30, seed, val, pruning=False)
        figures["nopruning30"].append(scorer.hv(found_keys(flat)) / true_hv)
        figures["calls_nopruning"].append(flat.lm_calls)
        figures["auto15"].append(scorer.hv(found_keys(run_once("auto", 15, seed, val))))
        figures["random15"].append(scorer.hv(found_keys(run_once("random", 15, seed, val))))
    overshoots, budget_ratios = 0, []
    for i in range(args.budget_runs):
        limit = 0.002 + 0.004 * (i % 10)  # a few trials' worth: every run hits its limit
        run = run_once("auto", 1000, 100 + i, val, budget=limit)
        paid = paid_from_store(run.run_id)
        budget_ratios.append(paid / limit)
        overshoots += paid > limit + 1e-12
    saved, made = sum(figures["saved"]), sum(figures["calls"])
    result = {
        "hv_ratio_auto_30": round(statistics.mean(figures["auto30"]), 4),
        "auto_vs_random_15": round(statistics.mean(figures["auto15"])
                                   / statistics.mean(figures["random15"]), 4),
        "pruning_calls_saved": round(saved / (made + saved), 4),
        "pruning_calls_saved_vs_unpruned_run": round(
            1 - made / sum(figures["calls_nopruning"]), 4),
        "pruning_hv_loss": round(statistics.mean(figures["nopruning30"])
                                 - statistics.mean(figures["auto30"]), 4),
        "budget_overshoot": overshoots,
        "budget_max_spent_ratio": round(max(budget_ratios), 4),
        "lm_calls_per_run_auto_30": round(statistics.mean(figures["calls"]), 1),
        "dollars_per_run_auto_30": round(statistics.mean(figures["dollars"]), 4),
        "hv_ratio_auto_30_per_seed": [round(x, 3) for x in figures["auto30"]],
        "auto_strategy": sorted(strategy_names),
        "space_size": len(exact), "seeds": args.seeds, "val_examples": args.val,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    server.stop()
    print(json.dumps(result))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
