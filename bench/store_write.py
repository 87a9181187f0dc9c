"""Store write path: rows per second from records to durable rows, memory, file size,
the ceilings of its two halves, and what recording costs ``dx.evaluate``.

Prints one JSON object (``method`` repeats this in short):

- ``executions_per_s``: records (half LM attempts, half program calls, ~500
  bytes of JSON each: messages, outputs, params, config, tags) handed to the
  store's writer as fast as one thread can (``Store.record``, what its bus
  callback does), converted and written into the DuckDB file until
  ``flush()`` returns (everything committed, i.e. durable), divided into the
  number of rows; the median of ``--repeat`` runs (all of them in
  ``executions_per_s_runs``);
- ``cpu_us_per_execution``: CPU time of the whole process (every thread) per
  row during those runs: what the writer costs, whatever else the machine does;
- ``writer_peak_rss_mb``: peak resident memory during that, above the
  process's memory with the records already built (sampled every 5 ms);
- ``file_mb_per_100k_executions``: file size after the run, per 100k rows;
- ``executions_per_s_via_bus``: the same records emitted on the event bus
  instead (adds the bus's per-event cost: queue, thread hand-off);
- ``duckdb_only_rows_per_s``: the DuckDB half alone, the ceiling of the file
  side: the same records converted beforehand (outside the clock) by the
  writer's own code into its Arrow batches, then inserted with the writer's own
  statements into the same schema on a connection set up like the writer's, in
  transactions of the writer's burst size, until the last COMMIT;
- ``python_only_rows_per_s``: the Python half alone: the writer's conversion
  of the same records into those Arrow batches, nothing written;
- ``ratio_vs_duckdb_only`` / ``ratio_vs_python_only``: ``executions_per_s`` of
  each run divided by that run's own half alone (median): how much of each
  half's ceiling the whole writer reaches, steadier than the absolute rate on
  a machine whose load moves;
- ``logging_overhead``: ``1 - on/off`` where on/off are ``dx.evaluate``
  calls per second of a ``dx.Predict`` program against the simulator in a
  separate process (fixed 50 ms latency, 64 in flight) with a store attached
  vs not; the median over interleaved rounds (order alternating);
- ``load_avg_1m``: the machine's 1-minute load average before and after (the
  figures above move with it: other jobs share the cores).

``converter`` says which converter the writer used: ``compiled`` (the C
extension ``pip install`` builds, the default) or ``python`` (``--converter
python``: the fallback of an install without a C compiler).

Usage: ``python bench/store_write.py [--rows 200000] [--repeat 3] [--eval-n 3000]
[--rounds 5] [--converter compiled|python]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import dspex_lab as dx
from dspex_lab import events, sim
from dspex_lab.lm._types import LMCallRecord
from dspex_lab.programs.records import ProgramCallRecord
from dspex_lab.store import Store, _rows, _writer
from dspex_lab.store._locking import FileAccess
from dspex_lab.store._writer import Writer

SYSTEM = ("Your input fields are: `question` (str). Your output fields are: `answer` (str). "
          "Answer the question. Think about the arithmetic before answering and give only "
          "the final number in the answer field.")
WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota",
         "kappa", "lambda", "mu"]


def _records(n: int, seed: int = 0) -> list[tuple[str, Any]]:
    """n records, alternating an LM attempt and the program call around it.

    Like the real ones: a program call's config is a fresh dict per call holding the
    predictor's own configuration, which the predictor computes once and shares with
    every call (``Predictor.own_config``); everything else is fresh per record."""
    rng = random.Random(seed)
    out: list[tuple[str, Any]] = []
    now = time.time()
    predictor_config = {"module": "predict", "model": "openai/small", "adapter": "chat",
                        "temperature": 0.7, "max_tokens": 256, "demos": [],
                        "instructions": None}
    for i in range(n // 2):
        trace = f"{rng.getrandbits(64):016x}"
        program_id = f"{rng.getrandbits(64):016x}"
        call_id = f"{rng.getrandbits(64):016x}"
        question = f"What is {i} plus {i * 7}? " + " ".join(rng.choices(WORDS, k=8))
        answer = str(i * 8)
        tags = {"run_id": f"run-{i % 10}", "trial_id": f"trial-{i % 500}"}
        failed = i % 20 == 0
        lm = LMCallRecord(
            call_id, trace, program_id, "openai/small", "openai",
            [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": f"[[ ## question ## ]]\n{question}"}],
            {"temperature": 0.7, "max_tokens": 256}, 1, now + i * 1e-3,
            ended_at=now + i * 1e-3 + 0.05,
            text=None if failed else f"[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]",
            prompt_tokens=95, completion_tokens=12, cost=None if failed else 2.1e-5,
            latency_s=0.05, wall_s=0.051, finish_reason=None if failed else "stop",
            error_kind="server_error" if failed else None,
            error_message="HTTP 500 from openai/small" if failed else None,
            will_retry=failed, tags=tags)
        program = ProgramCallRecord(
            program_id, trace, None, "Predict", "predict", {"question": question},
            {"predict": predictor_config},
            now + i * 1e-3, ended_at=now + i * 1e-3 + 0.06, outputs={"answer": answer},
            cost=2.1e-5, latency_s=0.05, lm_calls=1, adapter_used="chat", tags=tags)
        out.append(("lm.failed" if failed else "lm.completed", lm))
        out.append(("program.completed", program))
    return out


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _PeakRSS:
    def __init__(self) -> None:
        self.base = _rss_bytes()
        self.peak = self.base
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_bytes())

    def __enter__(self) -> _PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _write_rate(directory: Path, records: list[tuple[str, Any]], via_bus: bool, run: int
                ) -> dict[str, Any]:
    """Rows/s from records to durable rows; ``via_bus``: emitted on the event bus,
    else handed to the store's writer directly (what its bus callback does)."""
    path = directory / f"{'bus' if via_bus else 'writer'}-{run}.duckdb"
    store = Store(path)
    if via_bus:
        store.attach()
        feed = events.emit
    else:
        feed = store.record
    # warm up: pyarrow import, first session, allocator pools
    for kind, record in _records(20_000, seed=1):
        feed(kind, record)
    store.flush()
    written_before = sum(store.stats()["rows_written"].values())
    size_before = path.stat().st_size
    with _PeakRSS() as rss:
        started = time.perf_counter()
        cpu = time.process_time()
        for kind, record in records:
            feed(kind, record)
        store.flush(timeout=600)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    stats = store.stats()
    store.close()
    rows = sum(stats["rows_written"].values()) - written_before
    assert rows == len(records), (rows, len(records))
    size = path.stat().st_size
    path.unlink()
    return {
        "rows": rows,
        "rows_per_s": round(rows / elapsed),
        "cpu_us_per_row": round(cpu / rows * 1e6, 2),
        "seconds": round(elapsed, 2),
        "flushes": stats["flushes"],
        "max_flush_s": round(stats["max_flush_s"], 3),
        "peak_rss_mb": round((rss.peak - rss.base) / 2**20, 1),
        "file_mb_per_100k": round((size - size_before) / rows * 1e5 / 2**20, 2),
    }


def _converted(records: list[tuple[str, Any]], writer: Writer) -> tuple[list[Any], float]:
    """The records as the writer's converted batches (chunks of its chunk size), and the
    seconds the conversion took: the Python half of the writer, alone."""
    batches = []
    elapsed = 0.0
    for i in range(0, len(records), _writer._CHUNK_ROWS):
        part = records[i:i + _writer._CHUNK_ROWS]
        appends: dict[str, list[Any]] = {"lm": [], "program": [], "fallback": [],
                                         "lm_cache": []}
        for kind, record in part:
            appends["lm" if kind.startswith("lm.") else "program"].append(record)
        batch = _writer._Batch(appends, {}, False, {})
        started = time.perf_counter()
        writer._convert(batch)
        elapsed += time.perf_counter() - started
        batches.append(batch)
    return batches, elapsed


def _halves(directory: Path, records: list[tuple[str, Any]], run: int) -> dict[str, Any]:
    """Each half of the writer alone, on the same records: the conversion (Python), and
    the INSERTs + COMMITs of the converted batches (DuckDB), as the writer runs them."""
    path = directory / f"duckdb-only-{run}.duckdb"
    Store(path).close()  # the schema
    access = FileAccess(path)
    writer = Writer(access, flush_rows=5000, flush_ms=1000, max_queue=200_000)
    batches, convert_s = _converted(records, writer)
    rows = 0
    with access.session(write=True, timeout=60) as con:  # the writer's instance settings
        started = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        in_tx = 0
        for batch in batches:
            n = writer._insert(con, batch)  # the writer's own statements
            rows += n
            in_tx += n
            if in_tx >= _writer._TX_ROWS:  # the writer's burst transactions
                con.execute("COMMIT")
                con.execute("BEGIN TRANSACTION")
                in_tx = 0
        con.execute("COMMIT")
        elapsed = time.perf_counter() - started
    access.close()
    path.unlink()
    assert rows == len(records), (rows, len(records))
    return {"duckdb_only_rows_per_s": round(rows / elapsed),
            "python_only_rows_per_s": round(rows / convert_s)}


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _eval_rate(program: Any, rows: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    result = dx.evaluate(program, rows, "exact_match", concurrency=64, progress=False)
    elapsed = time.perf_counter() - started
    assert result.n == len(rows) and result.n_failed == 0, result.failures[:3]
    return len(rows) / elapsed


def _recording_off() -> None:
    """No default store: only the store this benchmark attaches records."""
    # a dspex_lab without default recording has nothing to turn off
    with contextlib.suppress(Exception):
        dx.configure(store=None)


def _logging_overhead(directory: Path, n: int, rounds: int, flush_ms: int | None
                      ) -> dict[str, Any]:
    """Interleaved rounds of dx.evaluate with the store detached and attached (order
    alternating, fresh questions every time so no LM cache can answer); the overhead
    is 1 - the median of the per-round on/off ratios, which cancels slow drifts of a
    shared machine better than comparing the best rounds."""
    _recording_off()
    counter = iter(range(10**9))

    def fresh_rows() -> list[dict[str, Any]]:
        k = next(counter)
        return [{"question": f"What is {i} plus {k}?", "answer": str(i + k)} for i in range(n)]

    options = {} if flush_ms is None else {"flush_ms": flush_ms}
    store = Store(directory / "eval.duckdb", **options)
    ratios: list[float] = []
    best_on = best_off = 0.0
    with sim.start(process=True, fixed_latency_ms=50, speed=1.0) as server:
        lm = dx.LM("openai/small", base_url=server.base_url, api_key="bench", price_in=0.15,
                   price_out=0.6, max_concurrency=64)
        program = dx.Predict("question -> answer", lm=lm, adapter="chat")
        _eval_rate(program, fresh_rows()[:500])  # warm up connections
        store.attach()
        _eval_rate(program, fresh_rows()[:500])  # warm up the writer (imports, first flush)
        store.flush()
        store.detach()
        for r in range(rounds):
            rates = {}
            for mode in (("off", "on") if r % 2 == 0 else ("on", "off")):
                if mode == "on":
                    store.attach()
                rates[mode] = _eval_rate(program, fresh_rows())
                if mode == "on":
                    store.flush()
                    store.detach()
            ratios.append(rates["on"] / rates["off"])
            best_on, best_off = max(best_on, rates["on"]), max(best_off, rates["off"])
    recorded = int(store.sql("select count(*) as n from executions")["n"].iloc[0])
    stats = store.stats()
    store.close()
    ratios.sort()
    median = ratios[len(ratios) // 2] if len(ratios) % 2 else \
        (ratios[len(ratios) // 2 - 1] + ratios[len(ratios) // 2]) / 2
    return {
        "eval_calls_per_s_store_off": round(best_off, 1),
        "eval_calls_per_s_store_on": round(best_on, 1),
        "logging_overhead": round(1 - median, 3),
        "logging_overhead_rounds": [round(1 - x, 3) for x in ratios],
        "eval_rows_recorded": recorded,
        "eval_flush_interval_s": round(stats["flush_interval_s"], 3),
    }


METHOD = ("median of --repeat runs; per run: the records (half LM attempts, half program "
          "calls, ~500 bytes of JSON each) built before the clock starts, then handed to "
          "Store.record (or events.emit: _via_bus) by one thread; the clock stops when "
          "Store.flush() returns, i.e. every row is committed to the DuckDB file. "
          "duckdb_only/python_only: the same records through each half of the writer alone "
          "(its conversion; its INSERTs and COMMITs of pre-converted batches).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--eval-n", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--flush-ms", type=int, default=None,
                        help="the store's flush interval for logging_overhead (default: "
                             "Store's default)")
    parser.add_argument("--converter", choices=("compiled", "python"), default="compiled",
                        help="the writer's converter: the compiled one (built by pip "
                             "install; the default) or the pure-Python fallback")
    args = parser.parse_args()
    if args.converter == "compiled" and not _rows.compiled_available():
        parser.error("the compiled converter is not built (reinstall with `pip install -e .`, "
                     "which needs a C compiler), or pass --converter python")
    _rows.use_compiled(args.converter == "compiled")
    load_before = _load()
    records = _records(args.rows)
    runs: dict[str, list[Any]] = {"writer": [], "bus": [], "halves": []}
    with tempfile.TemporaryDirectory(prefix="dspex-store-bench-") as tmp:
        directory = Path(tmp)
        for run in range(args.repeat):
            runs["writer"].append(_write_rate(directory, records, via_bus=False, run=run))
            runs["bus"].append(_write_rate(directory, records, via_bus=True, run=run))
            runs["halves"].append(_halves(directory, records, run))
        writer = runs["writer"]
        bus = runs["bus"]
        halves = runs["halves"]
        figures: dict[str, Any] = {
            "rows": args.rows,
            "converter": _rows.converter(),
            "executions_per_s": round(_median([r["rows_per_s"] for r in writer])),
            "executions_per_s_runs": [r["rows_per_s"] for r in writer],
            "cpu_us_per_execution": _median([r["cpu_us_per_row"] for r in writer]),
            "executions_per_s_via_bus": round(_median([r["rows_per_s"] for r in bus])),
            "executions_per_s_via_bus_runs": [r["rows_per_s"] for r in bus],
            "duckdb_only_rows_per_s": round(_median(
                [h["duckdb_only_rows_per_s"] for h in halves])),
            "duckdb_only_rows_per_s_runs": [h["duckdb_only_rows_per_s"] for h in halves],
            "python_only_rows_per_s": round(_median(
                [h["python_only_rows_per_s"] for h in halves])),
            "python_only_rows_per_s_runs": [h["python_only_rows_per_s"] for h in halves],
            # the same run's own references (noise on a shared machine moves both)
            "ratio_vs_duckdb_only": round(_median(
                [w["rows_per_s"] / h["duckdb_only_rows_per_s"]
                 for w, h in zip(writer, halves, strict=True)]), 3),
            "ratio_vs_python_only": round(_median(
                [w["rows_per_s"] / h["python_only_rows_per_s"]
                 for w, h in zip(writer, halves, strict=True)]), 3),
            "writer_peak_rss_mb": max(r["peak_rss_mb"] for r in writer),
            "writer_peak_rss_mb_via_bus": max(r["peak_rss_mb"] for r in bus),
            "file_mb_per_100k_executions": writer[-1]["file_mb_per_100k"],
            "max_flush_s": max(r["max_flush_s"] for r in (*writer, *bus)),
        }
        del records
        if args.eval_n:
            figures.update(_logging_overhead(directory, args.eval_n, args.rounds,
                                             args.flush_ms))
        else:
            figures["logging_overhead"] = None
    figures["load_avg_1m"] = [load_before, _load()]
    figures["method"] = METHOD
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
