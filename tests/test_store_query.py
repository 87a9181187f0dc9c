"""Reading: the read-only guard, bound parameters, the named queries, export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from test_store_support import lm_record, program_record

from dspex_lab.store import ReadOnlyQueryError, RunRecord, Store, StoreError, TrialRecord

DAY = 86_400.0


def _trial(run: str, number: int, values: dict[str, float | None], *, state: str = "completed",
           params: dict[str, object] | None = None) -> TrialRecord:
    return TrialRecord(f"{run}-t{number}", run, number, state, params or {"n": number},
                       dict(values))


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One store with runs, trials and executions whose answers are known."""
    store = Store(tmp_path_factory.mktemp("q") / "q.duckdb")
    rec = store.record
    # r1: the standard objectives; front = t1, t2, t3, t5
    rec("run.started", RunRecord("r1", name="standard", started_at=1_700_000_100.0))
    for n, (acc, cost, lat) in enumerate([(0.5, 0.010, 1.0), (0.7, 0.020, 1.0),
                                          (0.9, 0.050, 2.0), (0.6, 0.005, 1.0),
                                          (0.7, 0.030, 1.5), (0.95, None, 3.0)]):
        rec("trial.completed", _trial("r1", n, {"accuracy": acc, "cost": cost,
                                                "latency_s": lat}))
    rec("trial.pruned", _trial("r1", 6, {"accuracy": 0.99, "cost": 0.0, "latency_s": 0.1},
                               state="pruned"))
    rec("trial.failed", _trial("r1", 7, {}, state="failed"))
    # r2: its own objectives and directions; front = a, b
    rec("run.started", RunRecord("r2", objectives=[{"name": "f1", "direction": "maximize"},
                                                   {"name": "tokens", "direction": "min"}],
                                 started_at=1_700_000_200.0))
    for n, (f1, tokens) in enumerate([(0.8, 100), (0.9, 200), (0.7, 150), (0.9, 300)]):
        rec("trial.completed", _trial("r2", n, {"f1": f1, "tokens": tokens}))
    # r3: accuracy is decided by the model; "noise" and "temperature" do nothing
    rec("run.started", RunRecord("r3", started_at=1_700_000_300.0))
    for i in range(40):
        model = "A" if i % 2 == 0 else "B"
        params = {"model": model, "noise": "x" if (i // 4) % 2 == 0 else "y",
                  "temperature": ((i // 2) % 10) / 10}
        acc = (0.9 if model == "A" else 0.5) + 0.001 * (i % 3)
        rec("trial.completed", _trial("r3", i, {"accuracy": acc, "cost": 0.01,
                                                "latency_s": 1.0}, params=params))
    # r4: the front last moved at trial 5 of 30 -> converged; r5 improves every trial
    for run, best_at in (("r4", 5), ("r5", None)):
        rec("run.started", RunRecord(run, started_at=1_600_000_000.0))
        for n in range(30):
            if best_at is None:
                values = {"accuracy": 0.3 + n * 0.01, "cost": 0.01, "latency_s": 1.0}
            elif n == best_at:
                values = {"accuracy": 0.9, "cost": 0.001, "latency_s": 0.1}
            else:
                values = {"accuracy": 0.5 - n * 0.001, "cost": 0.01, "latency_s": 1.0}
            rec("trial.completed", _trial(run, n, values))
    rec("run.started", RunRecord("r6", started_at=1_600_000_000.0))
    for n in range(4):
        rec("trial.completed", _trial("r6", n, {"accuracy": 0.5, "cost": 0.1,
                                                "latency_s": 1.0}))
    rec("trial.started", _trial("r7", 0, {}, state="running"))
    # executions: failures in r1, program calls of "QA" (one too old for the window)
    t1 = {"run_id": "r1"}
    rec("lm.failed", lm_record(1, call_id="a", attempt=1, error="rate_limit", will_retry=True,
                               tags=t1))
    rec("lm.failed", lm_record(1, call_id="a", attempt=2, error="rate_limit", will_retry=True,
                               tags=t1))
    rec("lm.completed", lm_record(1, call_id="a", attempt=3, tags=t1))
    rec("lm.failed", lm_record(2, call_id="b", attempt=1, error="rate_limit", tags=t1))
    rec("lm.failed", lm_record(3, call_id="c", attempt=1, error="server_error",
                               tags={"run_id": "r2"}))
    now = 1_700_100_000.0
    for i, lat in enumerate([0.1, 0.2, 0.3, 0.4]):
        rec("program.completed", program_record(i, call_id=f"qa-{i}", module="QA",
                                                started=now + i, latency=lat, tags=t1))
    rec("program.failed", program_record(9, call_id="qa-9", module="QA", started=now + 9,
                                         error="parse_error", latency=0.5, tags=t1))
    rec("program.completed", program_record(10, call_id="qa-old", module="QA",
                                            started=now - 2 * DAY, latency=9.0))
    store.flush()
    yield store
    store.close()


# -- the guard -------------------------------------------------------------------------------

REFUSED = [
    "insert into executions (id, kind) values ('x', 'lm')",
    "update executions set cost = 0",
    "delete from executions",
    "drop table executions",
    "create table t (x int)",
    "create view v as select 1",
    "create macro m(x) as x",
    "alter table runs add column y int",
    "attach 'other.duckdb' as other",
    "detach dspex",
    "copy executions to 'out.csv'",
    "copy (select 1) to 'out.parquet' (format parquet)",
    "export database 'somewhere'",
    "install httpfs",
    "load httpfs",
    "set threads = 1",
    "reset threads",
    "use memory",
    "pragma enable_checkpoint_on_shutdown",
    "pragma force_checkpoint",
    "checkpoint",
    "call checkpoint()",
    "vacuum",
    "begin transaction",
    "explain analyze delete from executions",
    "select 1; drop table executions",
    "prepare p as select 1",
]
ALLOWED = [
    "select count(*) from executions",
    "from runs",
    "with t as (select 1 as x) select x from t",
    "describe executions",
    "show tables",
    "summarize select 1 as x",
    "explain select * from runs",
    "pragma table_info('runs')",
    "pragma show_tables",
    "select * from best_trade_offs_of('r1')",
]


@pytest.mark.parametrize("query", REFUSED)
def test_statements_that_change_anything_are_refused(filled: Store, query: str) -> None:
    with pytest.raises(ReadOnlyQueryError, match=r"dx\.sql is read-only"):
        filled.sql(query)


def test_select_body_gives_selects_as_subqueries_and_refuses_the_rest() -> None:
    from dspex_lab.store import select_body

    assert select_body("select count(*) from executions;") == "select count(*) from executions"
    assert select_body("from runs") == "from runs"
    assert select_body("pragma show_tables") is None
    assert select_body("explain select * from runs") is None
    for query in REFUSED:
        with pytest.raises(ReadOnlyQueryError):
            select_body(query)


def test_refusals_left_everything_in_place(filled: Store) -> None:
    for query in REFUSED:
        with pytest.raises(ReadOnlyQueryError):
            filled.sql(query)
    assert filled.sql("select count(*) as n from executions")["n"][0] == 11
    assert filled.sql("select count(*) as n from runs")["n"][0] == 6


@pytest.mark.parametrize("query", ALLOWED)
def test_reading_statements_run(filled: Store, query: str) -> None:
    filled.sql(query)


def test_parameters_are_bound_never_pasted(filled: Store) -> None:
    hostile = "x'; drop table executions; --"
    assert filled.sql("select count(*) as n from executions where id = ?", [hostile])["n"][0] == 0
    df = filled.sql("select $v as v, length($v) as n", {"v": hostile})
    assert (df["v"][0], df["n"][0]) == (hostile, len(hostile))
    assert filled.sql("select count(*) as n from executions")["n"][0] == 11
    by_run = filled.sql("select count(*) as n from executions where run_id = ? and kind = ?",
                        ("r1", "lm"))
    assert by_run["n"][0] == 4
    with pytest.raises(TypeError, match="sequence or a mapping"):
        filled.sql("select ?", "r1")  # a bare string would be split into characters


def test_bad_sql_is_a_store_error_with_duckdbs_words(filled: Store) -> None:
    with pytest.raises(StoreError, match="does not parse"):
        filled.sql("selec 1")
    with pytest.raises(StoreError, match="nope"):
        filled.sql("select nope from runs")


def test_read_only_even_past_the_guard(tmp_path: Path) -> None:
    # the file is attached READ_ONLY (or read in a read-only transaction), so DuckDB
    # itself refuses writes the statement check would have missed
    with Store(tmp_path / "s.duckdb") as store:
        with pytest.raises(StoreError, match=r"read-only|read only"):
            store._read_df("insert into runs (run_id) values ('sneaky')")
        store.record("lm.completed", lm_record(1))
        store.flush()  # now the writer holds the file; reads go through its attachment
        with pytest.raises(StoreError, match=r"read-only|read only"):
            store._read_df("delete from executions")
        assert store.sql("select count(*) as n from executions")["n"][0] == 1


# -- named queries ---------------------------------------------------------------------------

def test_best_trade_offs_is_the_pareto_set(filled: Store) -> None:
    assert sorted(filled.best_trade_offs("r1")["trial_id"]) == ["r1-t1", "r1-t2", "r1-t3",
                                                                 "r1-t5"]
    assert sorted(filled.best_trade_offs("r2")["trial_id"]) == ["r2-t0", "r2-t1"]
    everything = filled.sql("select run_id, count(*) as n from best_trade_offs group by 1")
    assert dict(zip(everything["run_id"], everything["n"], strict=True))["r1"] == 4


def test_variable_importance_finds_the_variable_that_matters(filled: Store) -> None:
    df = filled.variable_importance("r3")
    acc = df[df["objective"] == "accuracy"].set_index("variable")
    assert acc.loc["model", "importance"] > 0.95
    assert acc.loc["noise", "importance"] < 0.05
    assert acc.loc["temperature", "importance"] < 0.2
    assert acc.loc["model", "best_setting"] == "A"
    assert acc.loc["model", "best_mean"] == pytest.approx(0.901, abs=1e-3)
    assert acc.loc["temperature", "n_settings"] == 5  # 10 values, binned into quintiles
    assert acc.index[0] == "model"  # most important first
    # constant objectives explain nothing
    assert df[df["objective"] == "cost"]["importance"].fillna(0).max() == 0


def test_cost_efficiency_ranks_accuracy_per_dollar(filled: Store) -> None:
    df = filled.cost_efficiency("r1")
    assert list(df["trial_id"][:2]) == ["r1-t3", "r1-t0"]  # 120 and 50 accuracy per dollar
    assert df.set_index("trial_id").loc["r1-t3", "accuracy_per_dollar"] == pytest.approx(120)
    assert df.set_index("trial_id")["accuracy_per_dollar"].isna()["r1-t5"]  # unknown cost
    assert set(filled.cost_efficiency()["run_id"]) >= {"r1", "r3"}


def test_convergence_status(filled: Store) -> None:
    def status(run: str) -> dict[str, object]:
        df = filled.convergence_status(run)
        assert len(df) == 1
        return dict(df.iloc[0])

    r4 = status("r4")
    assert (r4["last_improvement"], r4["trials_since_improvement"], r4["status"]) == \
        (5, 24, "converged")
    assert status("r5")["status"] == "improving"
    assert status("r6")["status"] == "warming_up"
    assert status("r7")["status"] == "no_trials"
    assert (status("r1")["n_completed"], status("r1")["n_pruned"],
            status("r1")["n_failed"]) == (6, 1, 1)


def test_failures_by_kind(filled: Store) -> None:
    everything = filled.failures_by_kind()
    key = everything.set_index(["kind", "error_kind"])
    assert key.loc[("lm", "rate_limit"), "failures"] == 3
    assert key.loc[("lm", "rate_limit"), "retried"] == 2
    assert key.loc[("lm", "rate_limit"), "final"] == 1
    assert key.loc[("lm", "server_error"), "failures"] == 1
    assert key.loc[("program", "parse_error"), "last_message"] == "parse_error!"
    r2 = filled.failures_by_kind("r2")
    assert list(r2["error_kind"]) == ["server_error"]


def test_current_performance_uses_the_last_day_of_calls(filled: Store) -> None:
    df = filled.current_performance("QA")
    assert len(df) == 1
    row = df.iloc[0]
    assert (row["calls"], row["succeeded"]) == (5, 4)  # the 2-day-old call is outside
    assert row["error_rate"] == pytest.approx(0.2)
    assert row["latency_p50_s"] == pytest.approx(0.3)
    assert filled.current_performance("nobody").empty
    assert "QA" in set(filled.current_performance()["program"])


def test_runs_summary(filled: Store) -> None:
    df = filled.runs().set_index("run_id")
    assert list(df.index[:3]) == ["r3", "r2", "r1"]  # newest first
    r1 = df.loc["r1"]
    assert (r1["n_trials"], r1["n_completed"], r1["lm_attempts"], r1["lm_failures"]) == \
        (8, 6, 4, 3)
    assert r1["best_accuracy"] == pytest.approx(0.95)


def test_named_queries_are_views_in_the_file(filled: Store) -> None:
    filled._access.release()  # the writer lets go of the file when idle anyway
    con = duckdb.connect(":memory:")
    try:
        con.execute("attach ? as other (read_only)", [str(filled.path)])
        con.execute("use other")
        n = con.execute("select count(*) from best_trade_offs where run_id = 'r2'").fetchone()
        assert n == (2,)
    finally:
        con.close()


# -- export -----------------------------------------------------------------------------------

def test_export_parquet_and_csv(filled: Store, tmp_path: Path) -> None:
    files = filled.export(tmp_path / "pq", "parquet")
    by_name = {f.stem: f for f in files}
    assert set(by_name) >= {"executions", "runs", "trials", "lm_cache"}
    table = pq.read_table(by_name["executions"])
    assert table.num_rows == 11
    assert json.loads(table.column("inputs")[0].as_py())[0]["role"] == "system"
    csvs = filled.export(tmp_path / "csv", "csv", tables=["trials"])
    assert [f.name for f in csvs] == ["trials.csv"]
    assert pacsv.read_csv(csvs[0]).num_rows == filled.sql("select count(*) as n from trials"
                                                          )["n"][0]
    with pytest.raises(ValueError, match="unknown table"):
        filled.export(tmp_path / "x", "csv", tables=["executions; drop"])
    with pytest.raises(ValueError, match="parquet"):
        filled.export(tmp_path / "x", "xlsx")  # type: ignore[arg-type]
