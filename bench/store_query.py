"""Named-query latency on a big store: 1,000,000 executions, 10,000 trials, 100 runs.

Builds the file with DuckDB itself (synthetic rows generated column-wise in
SQL, ~500 bytes of JSON per execution, realistic mixes of models, kinds and
errors), then times every named query the way ``dx.sql`` and the CLI run
them: a ``StoreReader`` call, i.e. attach the file read-only, query, detach.

Prints one JSON object: per query the median of ``--repeat`` calls (and the
first, cold call), ``max_query_s`` (the largest median), the build time and
the file size.

Usage: ``python bench/store_query.py [--executions 1000000] [--runs 100]
[--trials-per-run 100] [--repeat 5] [--keep PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb

from dspex_lab.store import Store, StoreReader

SYSTEM = ("Your input fields are: `question` (str). Your output fields are: `answer` (str). "
          "Every exchange uses this structure, with each value filled in: [[ ## question ## ]] "
          "{question} [[ ## answer ## ]] {answer} [[ ## completed ## ]] Your task: given the "
          "fields `question`, produce the fields `answer`.")

_RUNS = """
INSERT INTO runs
SELECT 'run-' || r, 'run ' || r, 'prog-' || (r % 10), 'space-' || (r % 10),
       ['tpe', 'nsga2', 'grid', 'random'][1 + r % 4], 'bench',
       CASE WHEN r % 2 = 0 THEN '[{"name":"accuracy","direction":"maximize"},'
            || '{"name":"cost","direction":"minimize"},'
            || '{"name":"latency_s","direction":"minimize"}]' END,
       '{"dollars": 5}', '{}', 'finished', 'trials', TIMESTAMP '2026-01-01' + INTERVAL (r) HOUR,
       TIMESTAMP '2026-01-01' + INTERVAL (r) HOUR + INTERVAL 50 MINUTE, NULL
FROM range($runs) AS t(r)
"""

_TRIALS = """
INSERT INTO trials
WITH t AS (
    SELECT i, i // $per_run AS r, i % $per_run AS n,
           ['sim/tiny', 'sim/small', 'sim/medium',
            'sim/large'][1 + (hash(i * 7) % 4)::BIGINT] AS model,
           ['chat', 'json', 'markdown'][1 + (hash(i * 11) % 3)::BIGINT] AS adapter,
           ['predict', 'cot', 'pot'][1 + (hash(i * 13) % 3)::BIGINT] AS module,
           ((hash(i * 17) % 11)::BIGINT) / 10 AS temperature,
           (hash(i * 19) % 9)::BIGINT AS demos,
           ((hash(i * 23) % 1000)::BIGINT) / 1000.0 AS u
    FROM range($trials) AS g(i)
), v AS (
    SELECT *,
        least(0.99, 0.3 + 0.15 * list_position(['sim/tiny', 'sim/small', 'sim/medium',
              'sim/large'], model) + CASE module WHEN 'cot' THEN 0.05 ELSE 0 END
              + 0.01 * demos - 0.05 * temperature + 0.05 * u) AS accuracy,
        0.0001 * pow(4, list_position(['sim/tiny', 'sim/small', 'sim/medium', 'sim/large'],
              model)) * (1 + 0.1 * demos) * (CASE module WHEN 'cot' THEN 2 ELSE 1 END) AS cost,
        0.2 * list_position(['sim/tiny', 'sim/small', 'sim/medium', 'sim/large'], model)
              * (CASE module WHEN 'cot' THEN 2.5 ELSE 1 END) + 0.1 * u AS latency_s
    FROM t
)
SELECT 'run-' || r || '-t' || n, 'run-' || r, n,
       CASE WHEN u < 0.05 THEN 'failed' WHEN u < 0.10 THEN 'pruned' ELSE 'completed' END,
       CASE WHEN u < 0.05 THEN 'all calls failed' WHEN u < 0.10 THEN 'hopeless' END,
       json_object('model', model, 'adapter', adapter, 'module', module,
                   'temperature', temperature, 'demos', demos),
       json_object('accuracy', accuracy, 'cost', cost, 'latency_s', latency_s),
       accuracy, cost, latency_s, json_object('accuracy_ci', [accuracy - 0.05, accuracy + 0.05]),
       1.0, 100, 100, cost * 100,
       TIMESTAMP '2026-01-01' + INTERVAL (r) HOUR + INTERVAL (n * 30) SECOND,
       TIMESTAMP '2026-01-01' + INTERVAL (r) HOUR + INTERVAL (n * 30 + 25) SECOND, NULL
FROM v
"""

_EXECUTIONS = """
INSERT INTO executions
WITH e AS (
    SELECT i, i // 100 AS trial, (i // 100) // $per_run AS r, (i // 100) % $per_run AS n,
           i % 2 = 0 AS is_lm, (hash(i) % 1000)::BIGINT AS u,
           ['sim/tiny', 'sim/small', 'sim/medium',
            'sim/large'][1 + (hash(i // 100 * 7) % 4)::BIGINT] AS model,
           ['Predict', 'QA', 'CoT', 'Summarize', 'Classify'][1 + (i // 100) % 5] AS module,
           TIMESTAMP '2026-01-01' + INTERVAL (i * 10) MILLISECOND AS t0
    FROM range($executions) AS g(i)
)
SELECT CASE WHEN is_lm THEN printf('%016x', i) || ':1' ELSE printf('%016x', i) END,
       CASE WHEN is_lm THEN 'lm' ELSE 'program' END, printf('%016x', i),
       printf('%016x', i // 2), CASE WHEN is_lm THEN printf('%016x', i + 1) END,
       'run-' || r, 'run-' || r || '-t' || n,
       CASE WHEN NOT is_lm THEN module END, CASE WHEN NOT is_lm THEN 'predict' END,
       CASE WHEN NOT is_lm THEN 'chat' END, model, 'sim',
       CASE WHEN is_lm THEN '[{"role":"system","content":"' || $system || '"},'
            || '{"role":"user","content":"[[ ## question ## ]] What is ' || i || ' plus '
            || (i * 7) || '?"}]'
            ELSE '{"question":"What is ' || i || ' plus ' || (i * 7) || '?"}' END,
       CASE WHEN u < 30 THEN NULL
            WHEN is_lm THEN '{"text":"[[ ## answer ## ]] ' || (i * 8) || ' [[ ## completed ## ]]"}'
            ELSE '{"answer":"' || (i * 8) || '"}' END,
       CASE WHEN is_lm THEN '{"temperature":0.7,"max_tokens":256}'
            ELSE '{"module":"predict","model":"' || model || '","adapter":"chat"}' END,
       CASE WHEN is_lm THEN 90 + u % 60 END, CASE WHEN is_lm THEN 5 + u % 20 END,
       CASE WHEN u < 30 THEN NULL ELSE 0.00002 * (1 + u % 5) END,
       CASE WHEN u < 30 THEN NULL ELSE 0.00002 * (1 + u % 5) END,
       0.05 + (u % 100) / 200.0, 0.05 + (u % 100) / 200.0, 0.06 + (u % 100) / 200.0,
       CASE WHEN is_lm THEN u % 10 = 0 END, CASE WHEN NOT is_lm THEN 1 END,
       CASE WHEN is_lm THEN 1 END, CASE WHEN is_lm THEN u < 20 END,
       CASE WHEN u >= 30 AND is_lm THEN 'stop' END,
       CASE WHEN u >= 30 THEN NULL WHEN NOT is_lm THEN 'parse_error'
            WHEN u < 15 THEN 'rate_limit' WHEN u < 25 THEN 'server_error' ELSE 'timeout' END,
       CASE WHEN u < 30 THEN 'simulated failure ' || u END,
       t0, t0 + INTERVAL 60 MILLISECOND,
       '{"run_id":"run-' || r || '","trial_id":"run-' || r || '-t' || n || '"}'
FROM e
"""


def build(path: Path, executions: int, runs: int, per_run: int) -> float:
    started = time.perf_counter()
    Store(path).close()  # the schema, views and macros
    con = duckdb.connect(str(path))
    try:
        con.execute("SET preserve_insertion_order = false")
        con.execute(_RUNS, {"runs": runs})
        con.execute(_TRIALS, {"trials": runs * per_run, "per_run": per_run})
        con.execute(_EXECUTIONS, {"executions": executions, "per_run": per_run,
                                  "system": SYSTEM})
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return time.perf_counter() - started


def _time(call: Callable[[], Any], repeat: int) -> tuple[float, float, int]:
    timings = []
    rows = 0
    for _ in range(repeat):
        started = time.perf_counter()
        rows = len(call())
        timings.append(time.perf_counter() - started)
    return timings[0], statistics.median(timings[1:] or timings), rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--trials-per-run", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=6)
    parser.add_argument("--keep", type=Path, default=None, help="build the file here")
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        seconds = build(args.keep, args.executions, args.runs, args.trials_per_run)
        os.sync()  # no write-back of the fresh file competing with the timed queries
        print(seconds)
        return
    with tempfile.TemporaryDirectory(prefix="dspex-store-query-") as tmp:
        path = args.keep or Path(tmp) / "big.duckdb"
        if path.exists():
            path.unlink()
        # built by another process, as a notebook would have written it: this one only
        # reads, like the CLI or the app (a process that just wrote 1M rows through
        # DuckDB runs these queries ~2x slower while its allocator settles)
        out = subprocess.run(
            [sys.executable, __file__, "--build-only", "--keep", str(path),
             "--executions", str(args.executions), "--runs", str(args.runs),
             "--trials-per-run", str(args.trials_per_run)],
            capture_output=True, text=True, check=True)
        build_s = float(out.stdout.split()[-1])
        run = f"run-{args.runs // 2}"
        reader = StoreReader(path)
        checks = {
            "executions": reader.sql("select count(*) as n from executions")["n"][0],
            "trials": reader.sql("select count(*) as n from trials")["n"][0],
            "runs": reader.sql("select count(*) as n from runs")["n"][0],
        }
        queries: dict[str, Callable[[], Any]] = {
            "current_performance": lambda: reader.current_performance(),
            "current_performance(program)": lambda: reader.current_performance("QA"),
            "variable_importance(run)": lambda: reader.variable_importance(run),
            "cost_efficiency(run)": lambda: reader.cost_efficiency(run),
            "cost_efficiency": lambda: reader.cost_efficiency(),
            "convergence_status(run)": lambda: reader.convergence_status(run),
            "best_trade_offs(run)": lambda: reader.best_trade_offs(run),
            "failures_by_kind": lambda: reader.failures_by_kind(),
            "failures_by_kind(run)": lambda: reader.failures_by_kind(run),
            "runs": lambda: reader.runs(),
        }
        results: dict[str, Any] = {}
        for name, call in queries.items():
            cold, median, rows = _time(call, args.repeat)
            results[name] = {"median_s": round(median, 4), "cold_s": round(cold, 4),
                             "rows": rows}
        reader.close()
        figures = {
            **{k: int(v) for k, v in checks.items()},
            "build_s": round(build_s, 1),
            "file_mb": round(os.path.getsize(path) / 2**20, 1),
            "queries": results,
            "max_query_s": max(r["median_s"] for r in results.values()),
            "max_cold_query_s": max(r["cold_s"] for r in results.values()),
        }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
