"""Recording: records on the bus -> rows, flush semantics, backpressure, failures, cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_store_support import lm_record, program_record, run_python, wait_for

from dspex_lab import events
from dspex_lab.store import (
    CachedEntry,
    ProgramRecord,
    RunRecord,
    SpaceRecord,
    Store,
    StoreError,
    StoreReader,
    StoreWarning,
    TrialRecord,
    _rows,
    _writer,
)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "s.duckdb")
    s.attach()
    try:
        yield s
    finally:
        s.close()


def _count(path: Path, where: str = "true") -> int:
    with StoreReader(path) as reader:
        return int(reader.sql(f"select count(*) as n from executions where {where}")["n"][0])


def test_lm_attempts_become_rows_with_derived_columns(store: Store) -> None:
    tags = {"run_id": "run-1", "trial_id": "trial-3"}
    events.emit("lm.failed", lm_record(1, call_id="c", attempt=1, error="rate_limit",
                                       will_retry=True, tags=tags))
    events.emit("lm.completed", lm_record(1, call_id="c", attempt=2, tags=tags))
    events.emit("lm.completed", lm_record(2, call_id="hit", cache_hit=True))
    events.emit("lm.started", lm_record(3, call_id="ignored"))  # not recorded
    store.flush()
    df = store.sql("select * from executions order by id")
    assert list(df["id"]) == ["c:1", "c:2", "hit:1"]
    first, second, hit = (df.iloc[i] for i in range(3))
    assert (first["kind"], first["error_kind"], bool(first["will_retry"])) == \
        ("lm", "rate_limit", True)
    assert pd.isna(first["outputs"])
    assert (second["run_id"], second["trial_id"]) == ("run-1", "trial-3")
    assert json.loads(second["outputs"]) == {"text": "the answer"}
    assert json.loads(second["inputs"])[1] == {"role": "user", "content": "question 1"}
    assert json.loads(second["params"]) == {"temperature": 0.0}
    assert second["uncached_cost"] == second["cost"] == pytest.approx(1e-5)
    assert second["uncached_latency_s"] == second["latency_s"]
    assert (bool(hit["cache_hit"]), hit["cost"]) == (True, 0.0)
    assert hit["uncached_cost"] == pytest.approx(1e-5)  # objectives see the real price
    assert hit["uncached_latency_s"] == pytest.approx(0.2)
    assert str(second["started_at"]) == "2023-11-14 22:13:21"  # UTC, from epoch seconds


def test_program_calls_and_parse_fallbacks_link_to_their_lm_calls(store: Store) -> None:
    events.emit("lm.completed", lm_record(1, call_id="lm-1", parent_id="p-1", trace_id="T",
                                          tags={"run_id": "r"}))
    events.emit("program.parse_fallback", {"call_id": "lm-1", "adapter": "json",
                                           "fallback": "chat", "error": "not JSON",
                                           "raw": "{oops", "time": 1_700_000_000.5})
    events.emit("program.completed", program_record(1, call_id="p-1", trace_id="T"))
    events.emit("program.failed", program_record(2, call_id="p-2", error="parse_error"))
    events.emit("program.completed", program_record(
        3, call_id="p-3", config={"a": {"model": "m1"}, "b": {"model": "m1"}}))
    store.flush()
    df = store.sql("select * from executions order by id").set_index("id")
    assert df.loc["p-1", "kind"] == "program"
    assert df.loc["p-1", "model"] == "sim/small"  # from the predictor's config
    assert df.loc["p-3", "model"] == "m1"         # one model across predictors
    assert df.loc["p-1", "wall_s"] == pytest.approx(0.2, abs=1e-3)
    assert json.loads(df.loc["p-2", "outputs"]) == {"raw_text": "garbled"}
    assert df.loc["p-2", "error_kind"] == "parse_error"
    fb = df.loc["lm-1:parse_fallback"]
    assert (fb["kind"], fb["error_kind"], fb["trace_id"], fb["parent_id"], fb["run_id"]) == \
        ("parse_fallback", "parse_error", "T", "p-1", "r")
    assert json.loads(fb["params"]) == {"adapter": "json", "fallback": "chat"}
    # a program call's LM calls and fallbacks can be followed
    follow = store.sql("select kind from executions where trace_id = ? order by kind", ["T"])
    assert list(follow["kind"]) == ["lm", "parse_fallback", "program"]


def test_runs_trials_programs_spaces_are_upserted(store: Store) -> None:
    run = RunRecord("run-1", name="first", strategy="tpe")
    events.emit("run.started", run)
    trial = TrialRecord("t-0", "run-1", 0, params={"model": "a"})
    events.emit("trial.started", trial)
    store.flush()
    assert store.sql("select state from trials")["state"][0] == "running"
    trial.state = "completed"
    trial.values = {"accuracy": 0.75, "cost": 0.002, "latency_s": 1.5, "f1": 0.5}
    events.emit("trial.completed", trial)
    events.emit("run.finished", RunRecord("run-1", name="first", state="finished",
                                          stop_reason="budget"))
    events.emit("store.program", ProgramRecord("prog", "qa", signature="question -> answer"))
    events.emit("store.space", {"space_id": "sp", "program_id": "prog",
                                "variables": [{"name": "model"}]})
    events.emit("store.space", SpaceRecord("sp2"))
    store.flush()
    t = store.sql("select * from trials").iloc[0]
    assert (t["state"], t["accuracy"], t["cost"], t["latency_s"]) == \
        ("completed", 0.75, 0.002, 1.5)
    assert json.loads(t["objective_values"])["f1"] == 0.5
    r = store.sql("select * from runs")
    assert len(r) == 1 and (r["state"][0], r["stop_reason"][0]) == ("finished", "budget")
    assert json.loads(r["objectives"][0])[0] == {"name": "accuracy", "direction": "maximize"}
    assert store.sql("select signature from programs")["signature"][0] == "question -> answer"
    assert sorted(store.sql("select space_id from variable_spaces")["space_id"]) == ["sp", "sp2"]


def test_rows_arrive_after_flush_ms_without_flush(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path, flush_ms=100) as store:
        store.attach()
        events.emit("lm.completed", lm_record(1))
        assert wait_for(lambda: store.stats()["rows_written"]["executions"] == 1, 5)
        assert _count(path) == 1


def test_rows_are_written_every_flush_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb", flush_rows=50, flush_ms=60_000) as store:
        store.attach()
        for i in range(120):
            events.emit("lm.completed", lm_record(i))
        assert wait_for(lambda: store.stats()["rows_written"]["executions"] >= 100, 10)
        store.flush()
        assert store.stats()["rows_written"]["executions"] == 120


def test_direct_records_and_bad_records(tmp_path: Path) -> None:
    with Store(tmp_path / "s.duckdb") as store:
        good = lm_record(1)
        bad = lm_record(2)
        bad.prompt_tokens = "many"  # type: ignore[assignment]
        worse = object()  # not a record at all
        store.record("lm.completed", good)
        store.record("lm.completed", bad)
        store.record("lm.completed", worse)
        store.record("run.started", {"name": "no id"})  # a run without its key
        store.flush()
        ids = list(store.sql("select id, prompt_tokens from executions order by id")["id"])
        assert ids == ["call-1:1", "call-2:1"]  # the wrong type became NULL, not a failure
        assert store.stats()["bad_records"] == 2


def test_secret_keys_are_dropped_everywhere(store: Store) -> None:
    events.emit("lm.completed", lm_record(
        1, params={"temperature": 0.1, "api_key": "K1", "extra_headers": {"X": "K2"},
                   "nested": {"Authorization": "K3", "ok": 1}},
        tags={"run_id": "r", "OPENAI_API_KEY": "K4"}))
    events.emit("run.started", RunRecord("r", config={"client": {"api-key": "K5"}, "n": 1}))
    store.flush()
    row = store.sql("select params, tags from executions").iloc[0]
    assert json.loads(row["params"]) == {"temperature": 0.1, "nested": {"ok": 1}}
    assert json.loads(row["tags"]) == {"run_id": "r"}
    assert json.loads(store.sql("select config from runs")["config"][0]) == \
        {"client": {}, "n": 1}


def test_cache_round_trip_newest_wins_and_clear(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    with Store(path) as store:
        old = CachedEntry("old", 1, 2, 0.5, 1.0, "m", 1000.0)
        new = CachedEntry("new", 3, 4, None, 2.0, "m", 2000.25)
        store.cache_put("k1", old)
        store.cache_put("k1", new)
        store.cache_put("k2", old)
        store.flush()  # cache_load reads the file; it does not wait for the writer
        assert store.cache_load() == {"k1": new, "k2": old}
        store.cache_put("k3", old)
        store.cache_clear()
        store.cache_put("k4", new)  # after the clear: kept
        store.flush()
        assert store.cache_load() == {"k4": new}
    with StoreReader(path) as reader:
        assert reader.cache_load() == {"k4": new}


def test_backpressure_blocks_emitters_instead_of_growing(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store = Store(path, flush_rows=10, flush_ms=10, max_queue=50)
    # hold the file from another process so every write waits
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); time.sleep(3)", str(path)],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    store.attach()
    done = threading.Event()

    def produce() -> None:
        for i in range(400):
            events.emit("lm.completed", lm_record(i))
        done.set()

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert not done.wait(1.0)  # emit blocks while the disk is unavailable
        for _ in range(20):
            # the buffer, the batch being converted and the one waiting to be written
            assert store.stats()["pending"] <= 3 * 50
            time.sleep(0.02)
    finally:
        holder.wait(10)
        producer.join(30)
    assert done.is_set()
    store.flush(timeout=30)
    assert _count(path) == 400
    store.close()


def _make_unwritable(path: Path) -> None:
    if os.geteuid() == 0:  # root ignores permissions; the immutable flag stops it too
        if shutil.which("chattr") is None or subprocess.run(
                ["chattr", "+i", str(path)], capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr: cannot make a file unwritable")
    else:
        path.chmod(0o444)


def _make_writable(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        path.chmod(0o644)


def test_a_failed_write_warns_keeps_rows_and_retries(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s.duckdb"
    store = Store(path, flush_ms=50)
    store.attach()
    for i in range(10):
        events.emit("lm.completed", lm_record(i))
    store.flush()
    store._access.release()  # let go of the file so the next write must open it again
    _make_unwritable(path)
    try:
        for i in range(10, 30):
            events.emit("lm.completed", lm_record(i))
        with pytest.warns(StoreWarning, match="kept in memory"), \
                pytest.raises(StoreError, match="retried"):
            store.flush(timeout=20)
        assert store.stats()["failing"]
        assert store.stats()["pending"] == 20
        assert "could not write 20 rows" in caplog.text
    finally:
        _make_writable(path)
    store.flush(timeout=20)  # the same rows, written on retry
    assert store.stats()["failing"] is False
    store.close()
    assert _count(path) == 30


def test_closing_while_writes_fail_reports_the_loss(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    store = Store(path, flush_ms=50, timeout=1)
    _make_unwritable(path)
    try:
        for i in range(5):
            store.record("lm.completed", lm_record(i))
        with pytest.warns(StoreWarning) as caught:
            store.close(timeout=3)
        assert any("lost" in str(w.message) for w in caught)
    finally:
        _make_writable(path)
    with StoreReader(path) as reader:
        assert reader.sql("select count(*) as n from executions")["n"][0] == 0


def test_close_flushes_and_exit_flushes(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    code = ("import sys\n"
            "from dspex_lab import events\n"
            "from dspex_lab.store import Store\n"
            "from test_store_support import lm_record\n"
            "store = Store(sys.argv[1], flush_ms=60000)\n"
            "store.attach()\n"
            "for i in range(250):\n"
            "    events.emit('lm.completed', lm_record(i))\n"
            "print('emitted', flush=True)\n")  # no close(): atexit must write them
    out = run_python(code, str(path))
    assert out.returncode == 0, out.stderr
    assert _count(path) == 250


def test_store_sql_sees_what_this_process_just_emitted(store: Store) -> None:
    for i in range(7):
        events.emit("lm.completed", lm_record(i))
    # no flush(): a query through the store writes what is pending first
    assert store.sql("select count(*) as n from executions")["n"][0] == 7


def test_stats_shape(store: Store) -> None:
    events.emit("lm.completed", lm_record(1))
    store.flush()
    stats = store.stats()
    assert stats["rows_written"]["executions"] == 1
    assert stats["flushes"] >= 1 and stats["failed_flushes"] == 0
    assert stats["flush_interval_s"] == pytest.approx(1.0)
    # the compiled converter wherever pip install could build it (tests/test_store_compiled)
    assert stats["converter"] == ("compiled" if _rows.compiled_available() else "python")


def test_a_burst_is_written_in_one_transaction_of_many_chunks(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chunks of flush_rows (5,000) records, one transaction while the converter keeps
    # producing them (DuckDB then writes them straight into the file, not into the WAL)
    monkeypatch.setattr(_writer, "_CHUNK_ROWS", 1)
    monkeypatch.setattr(_writer, "_TX_S", 60.0)
    inserted: list[int] = []
    insert = _writer.Writer._insert

    def counting_insert(self: _writer.Writer, con: Any, batch: Any) -> int:
        rows = insert(self, con, batch)
        inserted.append(rows)
        return rows

    monkeypatch.setattr(_writer.Writer, "_insert", counting_insert)
    records = [r for i in range(12_000) for r in (lm_record(i), program_record(i))]
    with Store(tmp_path / "s.duckdb", flush_ms=60_000) as store:
        for record in records:  # a backlog forms at once, as when a burst arrives
            store.record("lm.completed" if record.__class__.__name__.startswith("LM")
                         else "program.completed", record)
        store.flush()
        stats = store.stats()
        assert stats["rows_written"]["executions"] == 24_000
        assert len(inserted) >= 4 and sum(inserted) == 24_000
        assert stats["flushes"] <= 2  # the first chunk may go alone, before the backlog
        counts = store.sql("select kind, count(*) as n, count(distinct id) as ids "
                           "from executions group by all order by kind")
    assert list(counts["n"]) == list(counts["ids"]) == [12_000, 12_000]


def test_a_transaction_stops_growing_at_its_row_limit(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_writer, "_CHUNK_ROWS", 1)  # chunks of flush_rows
    monkeypatch.setattr(_writer, "_TX_ROWS", 3_000)
    with Store(tmp_path / "s.duckdb", flush_rows=1_000) as store:
        for i in range(12_000):
            store.record("lm.completed", lm_record(i))
        store.flush()
        assert store.stats()["rows_written"]["executions"] == 12_000
        assert store.stats()["flushes"] >= 4  # at most ~3,000 rows (+ one chunk) each


def test_a_reader_in_line_ends_a_long_transaction(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # a writer kept busy by a producer would hold one transaction open for long; another
    # reader (its own lock files, as in another process) gets in within a chunk or two
    monkeypatch.setattr(_writer, "_CHUNK_ROWS", 1)
    monkeypatch.setattr(_writer, "_TX_S", 60.0)
    monkeypatch.setattr(_writer, "_TX_ROWS", 10**9)
    path = tmp_path / "s.duckdb"
    stop = threading.Event()
    produced = 0
    store = Store(path, flush_rows=2_000, flush_ms=60_000, max_queue=10_000)

    def produce() -> None:
        nonlocal produced
        while not stop.is_set():
            store.record("lm.completed", lm_record(produced, call_id=f"c{produced}"))
            produced += 1

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert wait_for(lambda: store.stats()["pending"] > 5_000, 10)
        time.sleep(0.5)  # the writer is inside its transaction by now
        started = time.perf_counter()
        with StoreReader(path, timeout=30) as reader:
            seen = int(reader.sql("select count(*) as n from executions")["n"][0])
        waited = time.perf_counter() - started
    finally:
        stop.set()
        producer.join()
    assert waited < 2.0 and seen > 0
    store.flush(timeout=60)
    store.close()
    assert _count(path) == produced


def test_a_failed_transaction_is_retried_whole(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # the second chunk of a transaction fails: the chunks before it were rolled back with
    # it and are written again (rebuilt from their records), each row once
    monkeypatch.setattr(_writer, "_CHUNK_ROWS", 1)
    monkeypatch.setattr(_writer, "_TX_S", 60.0)
    calls = 0
    insert = _writer.Writer._insert

    def failing_insert(self: _writer.Writer, con: Any, batch: Any) -> int:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("disk trouble")
        return insert(self, con, batch)

    monkeypatch.setattr(_writer.Writer, "_insert", failing_insert)
    path = tmp_path / "s.duckdb"
    store = Store(path, flush_rows=1_000, flush_ms=60_000)
    store.record("lm.completed", object())  # not a record: dropped and counted, once
    for i in range(5_000):
        store.record("lm.completed", lm_record(i))
    with pytest.warns(StoreWarning, match="disk trouble"), \
            pytest.raises(StoreError, match="retried"):
        store.flush(timeout=30)
    store.flush(timeout=30)
    stats = store.stats()
    assert stats["rows_written"]["executions"] == 5_000
    assert stats["bad_records"] == 1
    store.close()
    with StoreReader(path) as reader:
        df = reader.sql("select count(*) as n, count(distinct id) as ids from executions")
    assert (df["n"][0], df["ids"][0]) == (5_000, 5_000)


def test_json_columns_hold_valid_json_or_null(store: Store,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sv-9Tq2Lm4Pz8Rw1Ky6"
    monkeypatch.setenv("SOME_SERVICE_TOKEN", secret)
    none_params = lm_record(1)
    none_params.params = None  # type: ignore[assignment]
    odd = lm_record(2, params={"n": float("nan"), 3: "int key", "s": {"b", "a"}},
                    tags={"run_id": "r"}, content=f'quote " {secret} \\ Bearer abc.def-123')
    events.emit("lm.completed", none_params)
    events.emit("lm.completed", odd)
    events.emit("program.completed", program_record(1, tags={}))
    store.flush()
    df = store.sql("select id, inputs, outputs, params, tags, json_valid(inputs) as vi, "
                   "json_valid(params) as vp from executions order by id").set_index("id")
    assert pd.isna(df.loc["call-1:1", "params"]) and pd.isna(df.loc["prog-1", "tags"])
    assert df.loc["call-2:1", "vi"] and df.loc["call-2:1", "vp"]
    assert json.loads(df.loc["call-2:1", "params"]) == {"n": None, "3": "int key",
                                                        "s": ["a", "b"]}
    content = json.loads(df.loc["call-2:1", "inputs"])[1]["content"]
    assert content == 'quote " *** \\ Bearer ***'
    assert json.loads(df.loc["call-2:1", "tags"]) == {"run_id": "r"}


@pytest.mark.parametrize("typed_json", [True, False])
def test_json_columns_and_tag_ids_with_and_without_arrow_json(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, typed_json: bool) -> None:
    # typed: Arrow's JSON extension type (DuckDB takes the text as JSON unchecked);
    # untyped: plain text that DuckDB validates (pyarrow < 19 or DuckDB < 1.2)
    from dspex_lab.store import _rows

    monkeypatch.setattr(_rows, "_json_extension", lambda: typed_json)
    with Store(tmp_path / "s.duckdb") as store:
        store.record("lm.completed", lm_record(1, tags={"run_id": "r1", "trial_id": "t1"}))
        store.record("lm.completed", lm_record(2, tags={"run_id": 7, "trial_id": None}))
        store.record("lm.completed", lm_record(3))  # no tags
        store.record("program.completed", program_record(1, tags={"trial_id": "t9"}))
        store.flush()
        df = store.sql("select id, run_id, trial_id, typeof(inputs) as t, "
                       "json_valid(inputs) and json_valid(params) as valid, "
                       "inputs->>'$[1].content' as question from executions "
                       "order by id").set_index("id")
    assert df.loc["call-1:1", ["run_id", "trial_id"]].tolist() == ["r1", "t1"]
    assert df.loc["call-2:1", "run_id"] == "7" and pd.isna(df.loc["call-2:1", "trial_id"])
    assert df.loc["call-3:1", ["run_id", "trial_id"]].isna().all()
    assert pd.isna(df.loc["prog-1", "run_id"]) and df.loc["prog-1", "trial_id"] == "t9"
    assert set(df["t"]) == {"JSON"} and df["valid"].all()
    assert df.loc["call-1:1", "question"] == "question 1"


def test_the_converter_pauses_between_columns_only_while_duckdb_works(
        tmp_path: Path) -> None:
    from dspex_lab.store import _rows

    calls: list[int] = []
    compiled = _rows.use_compiled(False)  # the Python converter: between columns
    _rows.set_pause(lambda: calls.append(1))
    try:
        _rows.lm_table([lm_record(1), lm_record(2)])
        _rows.program_table([program_record(1)])
        assert len(calls) >= 40  # every attribute column and every built column
        if compiled:  # the compiled one: every _COMPILED_PAUSE_ROWS rows of a column pass
            _rows.use_compiled(True)
            calls.clear()
            many = [lm_record(i) for i in range(10 * _rows._COMPILED_PAUSE_ROWS + 1)]
            _rows.lm_table(many)
            assert len(calls) >= 10
    finally:
        _rows.set_pause(None)
        _rows.use_compiled(compiled)
    seen = len(calls)
    _rows.lm_table([lm_record(3)])  # no hook: nothing called
    assert len(calls) == seen

    with Store(tmp_path / "s.duckdb") as store:
        writer = store._writer
        started = time.perf_counter()
        for _ in range(20):
            writer._pause()  # DuckDB idle: no sleep
        idle = time.perf_counter() - started
        with writer._duckdb_working():
            started = time.perf_counter()
            for _ in range(20):
                writer._pause()
            busy = time.perf_counter() - started
        assert not writer._duckdb_busy
    assert busy >= 20 * _writer._PAUSE_S > idle


def test_a_batch_of_bus_events_larger_than_the_queue_is_all_written(tmp_path: Path) -> None:
    # the store subscribes with batched delivery: a batch that overfills the queue must
    # wake the converter and wait for room, not wait for ever; kinds mixed in one batch
    # (executions, a parse fallback, a trial upsert) all land
    from dspex_lab.events import Event

    path = tmp_path / "s.duckdb"
    store = Store(path, flush_rows=10, flush_ms=60_000, max_queue=50)
    batch = [Event("lm.completed", lm_record(i, call_id=f"lm-{i}")) for i in range(300)]
    batch += [Event("program.completed", program_record(i)) for i in range(300)]
    batch.append(Event("program.parse_fallback", {"call_id": "lm-7", "adapter": "json",
                                                  "fallback": "chat", "error": "not JSON",
                                                  "raw": "{oops", "time": 1_700_000_000.5}))
    batch.append(Event("trial.completed", {"trial_id": "t-1", "run_id": "r", "number": 0,
                                           "state": "completed"}))
    feeder = threading.Thread(target=store._writer.on_events, args=(batch,))
    feeder.start()
    feeder.join(30)
    assert not feeder.is_alive(), "a batch larger than the queue never got room"
    store.flush(timeout=30)
    assert _count(path, "kind = 'lm'") == 300
    assert _count(path, "kind = 'program'") == 300
    assert _count(path, "kind = 'parse_fallback'") == 1
    assert store.sql("select state from trials where trial_id = 't-1'")["state"][0] == \
        "completed"
    store.close()


def test_program_configs_shared_by_calls_are_written_right_for_every_row(
        store: Store) -> None:
    # predictors cache their configuration, so calls of one configured program carry
    # the same inner dicts (serialized once per batch); each row must still get its own
    # configuration's JSON and model, secret-named keys dropped
    first = {"module": "cot", "model": "sim/small", "demos": [{"q": "1+1", "a": "2"}]}
    second = {"module": "predict", "model": "sim/tiny", "api_key": "sk-inner-secret-1234"}
    configs = [{"a": first}, {"a": second}, {"a": first, "b": second}, {"a": first},
               {"b": first}, {"a": dict(first)}, {"a": second}]
    for i, config in enumerate(configs):
        events.emit("program.completed", program_record(i, call_id=f"p-{i}", config=config))
    store.flush()
    df = store.sql("select id, params, model from executions order by id").set_index("id")
    clean = {"module": "predict", "model": "sim/tiny"}
    expected = [{"a": first}, {"a": clean}, {"a": first, "b": clean}, {"a": first},
                {"b": first}, {"a": first}, {"a": clean}]
    models = ["sim/small", "sim/tiny", None, "sim/small", "sim/small", "sim/small",
              "sim/tiny"]
    for i, (want, model) in enumerate(zip(expected, models, strict=True)):
        assert json.loads(df.loc[f"p-{i}", "params"]) == want, i
        got = df.loc[f"p-{i}", "model"]
        assert (got if isinstance(got, str) else None) == model, i
    assert "sk-inner-secret" not in "".join(df["params"])
