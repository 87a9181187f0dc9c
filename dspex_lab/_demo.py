"""``dspex-lab demo``: an offline multi-objective optimization, start to finish.

The README's first command. It starts the built-in simulator in this process,
optimizes a question-answering program over model x module x adapter x demos x
temperature on a built-in dataset, prints each trial as it finishes and the
Pareto front at the end, records everything in the store (``./dspex.duckdb``
unless ``DSPEX_STORE`` says otherwise) and writes the Pareto chart as an image.
No network, no API key.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, TextIO

__all__ = ["demo_space", "run_demo"]


def demo_space() -> Any:
    """The variables the demo tunes (5 variables, 192 configurations)."""
    import dspex_lab as dx

    v = dx.variables
    return dx.Space([v.model(["sim/tiny", "sim/small", "sim/medium", "sim/large"]),
                     v.module(["predict", "cot"]), v.adapter(["chat", "json"]),
                     v.demos((0, 3)), v.temperature(choices=[0.0, 0.7])])


def _print_trial(stream: TextIO) -> Any:
    def show(event: Any) -> None:
        record = event.record
        if not event.kind.startswith("trial.") or record.state == "running":
            return
        values = record.values or {}
        params = record.params or {}
        demos = params.get("demos")
        shown = (f"{params.get('model', '')!s:<10} {params.get('module', '')!s:<7} "
                 f"{params.get('adapter', '')!s:<5} k={len(demos) if demos else 0} "
                 f"T={params.get('temperature', '')}")
        if record.state == "failed":
            print(f"  #{record.number:<3} {shown}  failed: {record.reason}", file=stream)
            return
        acc, cost = values.get("accuracy"), values.get("cost")
        note = "" if record.state == "completed" else f"  ({record.state})"
        print(f"  #{record.number:<3} {shown}  accuracy {acc:.3f}  "
              f"${(cost or 0) * 1000:.4f}/1k examples{note}", file=stream, flush=True)
    return show


def run_demo(*, dataset: str = "sim-math", n: int = 60, trials: int = 24,
             speed: float = 0.02, chart: str | Path = "pareto.png", seed: int = 0,
             out: TextIO | None = None) -> Any:
    """Run the demo optimization; returns the finished :class:`dx.Run`."""
    import dspex_lab as dx
    from dspex_lab import recording, sim

    stream = out or sys.stdout
    data = dx.datasets.load(dataset)
    with sim.start(speed=speed) as server:
        store = recording.active_store()
        print(f"simulator at {server.base_url}; recording into "
              f"{store.path if store is not None else 'nothing (recording off)'}",
              file=stream)
        program = dx.Predict(data.signature)
        run = dx.optimize(program, demo_space(), trainset=dataset, valset=data.val[:n],
                          budget=dx.Budget(trials=trials), seed=seed, name="demo")
        print(f"optimizing {trials} trials on {dataset} ({n} validation examples): "
              f"strategy {run.strategy.name} ({run.strategy.reason})\n", file=stream)
        watcher = run.subscribe(_print_trial(stream), kinds=["trial.*"])
        run.wait()
        watcher.close()
    front = run.pareto_front()
    print(f"\n{run.stop_reason}; ${run.spent:.4f} spent in {run.lm_calls} LM calls, "
          f"{run.calls_saved:.0f} saved by pruning", file=stream)
    print(f"Pareto front ({len(front)} configurations):", file=stream)
    columns = [c for c in ("number", "param_model", "param_module", "param_adapter",
                           "param_demos", "param_temperature", "accuracy", "cost",
                           "latency_s") if c in front.columns]
    print(front[columns].to_string(index=False), file=stream)
    if chart:
        from dspex_lab.jupyter.charts import pareto_chart, save_chart

        save_chart(pareto_chart(run), chart)
        print(f"\nPareto chart: {Path(chart).resolve()}", file=stream)
    if store is not None:
        print(f"query it: dspex-lab sql \"select state, count(*) from trials where run_id = "
              f"'{run.run_id}' group by all\"", file=stream)
    return run


def main_demo(dataset: str, n: int, trials: int, speed: float, chart: str) -> int:
    started = time.perf_counter()
    run_demo(dataset=dataset, n=n, trials=trials, speed=speed, chart=chart)
    print(f"\ndone in {time.perf_counter() - started:.1f} s")
    return 0
