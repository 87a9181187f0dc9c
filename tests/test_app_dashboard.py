"""The dashboard's data layer and pages on real stores, written by real optimizations.

Stores are seeded by a *separate process* running ``dx.optimize`` on the simulator
(the situation the dashboard is for: a notebook records, the dashboard reads), so
every read here goes through the store's cross-process path. Pages are asserted on
their Panel widgets' values; ``test_browser_app.py`` renders them in Chromium.

``seed_store`` and ``start_recording`` are also used by the other ``test_app_*``
files.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

_SEED = r"""
import json, os, sys
import dspex_lab as dx
from dspex_lab import recording, sim

path, name = sys.argv[1], sys.argv[3]
trials, speed, rows = int(sys.argv[2]), float(sys.argv[4]), int(sys.argv[5])
V = dx.variables
dx.configure(store=path)
with sim.start(speed=speed, seed=0) as server:
    os.environ["DSPEX_SIM_URL"] = server.base_url
    space = dx.Space([V.module(["predict", "cot"]),
                      V.model(["sim/tiny", "sim/small", "sim/medium"]),
                      V.temperature(0.0, 1.0)])
    run = dx.optimize(dx.Predict("question -> answer", model="sim/small"), space,
                      valset=dx.datasets.load("sim-math").val[:rows],
                      budget=dx.Budget(trials=trials), strategy="random", seed=3,
                      concurrency=1, warm_start=False, pruning=False, name=name)
    print(json.dumps({"started": run.run_id}), flush=True)
    run.wait(300)
recording.active_store().flush()
print(json.dumps({"run_id": run.run_id, "state": run.state,
                  "front": sorted(t.number for t in run.front_trials())}), flush=True)
"""


def start_recording(path: Path, *, trials: int = 8, name: str = "seeded", speed: float = 0.0,
                    rows: int = 8) -> subprocess.Popen[str]:
    """A process optimizing a program on its own simulator, recording into ``path``."""
    return subprocess.Popen(
        [sys.executable, "-c", _SEED, str(path), str(trials), name, str(speed), str(rows)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str], timeout: float = 180) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    last: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return last


def seed_store(path: Path, *, trials: int = 8, name: str = "seeded") -> dict[str, Any]:
    """Record a finished run into ``path`` from another process; its id and front."""
    return finish(start_recording(path, trials=trials, name=name))


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("app") / "seeded.duckdb"
    return path, seed_store(path, trials=10)


@pytest.fixture()
def store(seeded: tuple[Path, dict[str, Any]], tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A private copy of the seeded store (lock files are per copy)."""
    path = tmp_path / "copy.duckdb"
    shutil.copy(seeded[0], path)
    return path, seeded[1]


def _reader(path: Path) -> Any:
    from dspex_lab.store import StoreReader

    return StoreReader(path)


# -- the data layer -----------------------------------------------------------------------

def test_source_reads_the_run_its_front_and_trials(store: tuple[Path, dict[str, Any]]) -> None:
    from dspex_lab.app._data import StoreSource

    path, seed = store
    source = StoreSource(path)
    assert source.exists() and source.fingerprint() is not None
    runs = source.runs()
    assert list(runs["run_id"]) == [seed["run_id"]]
    assert runs.iloc[0]["name"] == "seeded" and runs.iloc[0]["n_trials"] == 10
    detail = source.run(seed["run_id"])
    # the front is the run's own (as the optimizer saw it) and the store's named query's
    assert sorted(detail.data.front) == seed["front"]
    with _reader(path) as reader:
        named = reader.best_trade_offs(seed["run_id"])
    assert sorted(int(n) for n in named["number"]) == seed["front"]
    assert len(detail.trials) == 10
    assert sorted(detail.trials.loc[detail.trials["front"], "number"]) == seed["front"]
    assert {"param_model", "param_module", "accuracy", "cost", "latency_s"} <= set(
        detail.trials.columns)
    history = detail.data.hypervolume_history()
    assert len(history) == 10 and list(history["hypervolume"]) == sorted(history["hypervolume"])
    assert set(detail.importance["objective"]) == {"accuracy", "cost", "latency_s"}
    assert set(detail.importance["variable"]) == {"model", "module", "temperature"}
    assert detail.convergence["n_completed"] == 10
    assert source.run_options() == [(f"seeded · {seed['run_id']} (finished)", seed["run_id"])]


def test_trial_detail_has_its_config_values_and_sample_outputs(
        store: tuple[Path, dict[str, Any]]) -> None:
    from dspex_lab.app._data import StoreSource

    path, seed = store
    source = StoreSource(path)
    detail = source.run(seed["run_id"])
    number = seed["front"][0]
    trial = source.trial(detail, number, samples=3)
    assert trial.number == number and trial.on_front and trial.state == "completed"
    assert set(trial.params) == {"model", "module", "temperature"}
    assert trial.values["accuracy"] == detail.data.by_number(number).values["accuracy"]
    assert len(trial.samples) == 3
    first = json.loads(trial.samples.iloc[0]["inputs"])
    assert "question" in first and trial.samples.iloc[0]["outputs"]
    with pytest.raises(Exception, match="no trial 999"):
        source.trial(detail, 999)


def test_executions_are_filtered_and_searched_with_bound_values(
        store: tuple[Path, dict[str, Any]]) -> None:
    from dspex_lab.app._data import ERRORS_ONLY, NO_ERRORS, ExecutionFilter, StoreSource

    path, seed = store
    source = StoreSource(path)
    options = source.execution_options()
    assert options.runs == [(f"seeded · {seed['run_id']} (finished)", seed["run_id"])]
    assert set(options.models) <= {"sim/tiny", "sim/small", "sim/medium"} and options.models
    assert {"lm", "program"} <= set(options.kinds)
    with _reader(path) as reader:
        def count(where: str, params: list[Any]) -> int:
            return int(reader.sql(f"select count(*) as n from executions where {where}",
                                  params).iloc[0]["n"])

        total = count("true", [])
        model = options.models[0]
        _, n = source.executions(ExecutionFilter())
        assert n == total
        rows, n = source.executions(ExecutionFilter(model=model, kind="lm", limit=5))
        assert n == count("model = ? and kind = 'lm'", [model])
        assert len(rows) == min(5, n) and set(rows["model"]) == {model}
        assert list(rows["started_at"]) == sorted(rows["started_at"], reverse=True)
        _, n = source.executions(ExecutionFilter(run_id=seed["run_id"]))
        assert n == count("run_id = ?", [seed["run_id"]]) > 0
        _, n_ok = source.executions(ExecutionFilter(error=NO_ERRORS))
        _, n_err = source.executions(ExecutionFilter(error=ERRORS_ONLY))
        assert n_ok + n_err == total and n_ok == count("error_kind is null", [])
        for kind in options.error_kinds:
            _, n = source.executions(ExecutionFilter(error=kind))
            assert n == count("error_kind = ?", [kind]) > 0
        # search: a word of one question, case-insensitive, in inputs (program) and
        # messages (LM); SQL wildcards and quotes in the text are just text
        question = json.loads(reader.sql(
            "select inputs from executions where kind = 'program' limit 1").iloc[0][
            "inputs"])["question"]
        word = max(question.split(), key=len).strip(".,?!")
        rows, n = source.executions(ExecutionFilter(text=word.upper(), limit=1000))
        assert n == len(rows) >= 2
        assert all(word.lower() in (str(r["inputs"]) + str(r["outputs"])).lower()
                   or r["kind"] == "lm" for _, r in rows.iterrows())
        for text in ("%", "q%_z", "' or 1=1 --", "no such text anywhere"):
            _, n = source.executions(ExecutionFilter(text=text))
            assert n == 0, text


def test_sql_console_is_read_only_and_caps_rows(store: tuple[Path, dict[str, Any]]) -> None:
    from dspex_lab.app._data import StoreSource

    path, seed = store
    source = StoreSource(path)
    before = source.fingerprint()
    for statement in ("delete from runs", "drop table trials",
                      "insert into runs (run_id) values ('x')", "update trials set cost = 0",
                      "create table t as select 1", "attach 'other.duckdb' as o",
                      "copy runs to 'out.csv'", "select 1; delete from runs",
                      "pragma enable_profiling"):
        result = source.query(statement)
        assert not result.ok and result.frame is None, statement
        assert "read-only" in (result.error or ""), (statement, result.error)
    assert source.fingerprint() == before
    assert not (path.parent / "out.csv").exists()
    bad = source.query("select nope from trials")
    assert not bad.ok and "nope" in (bad.error or "")
    assert source.query("   ").error and "Type a query" in (source.query("").error or "")
    # rows capped without materializing everything; exact below the cap
    capped = source.query("select * from executions", max_rows=7)
    assert capped.ok and capped.truncated and len(capped.frame) == 7  # type: ignore[arg-type]
    exact = source.query("select number from trials order by number desc;", max_rows=10)
    assert exact.ok and not exact.truncated
    assert list(exact.frame["number"]) == list(range(9, -1, -1))  # type: ignore[index]
    assert source.query("describe trials").frame is not None
    shown = source.query("pragma show_tables", max_rows=3)
    assert shown.ok and len(shown.frame) == 3 and shown.truncated  # type: ignore[arg-type]
    explained = source.query("explain select * from runs")
    assert explained.ok, explained.error
    named = source.query(f"select * from best_trade_offs_of('{seed['run_id']}')")
    assert sorted(named.frame["number"]) == seed["front"]  # type: ignore[index]


def test_a_missing_store_says_how_to_make_one(tmp_path: Path) -> None:
    from dspex_lab.app._data import StoreSource
    from dspex_lab.store import StoreError

    source = StoreSource(tmp_path / "none.duckdb")
    assert not source.exists() and source.fingerprint() is None
    assert "dspex-lab demo" in source.missing_message()
    with pytest.raises(StoreError, match="dspex-lab demo"):
        source.runs()
    assert not (tmp_path / "none.duckdb").exists()  # reading never creates the file


def test_default_store_is_the_one_this_process_records_into(tmp_path: Path,
                                                            sim_url: str) -> None:
    import dspex_lab as dx
    from dspex_lab.app._data import StoreSource, default_store_path

    path = tmp_path / "mine.duckdb"
    dx.configure(store=path)
    assert default_store_path() == path.absolute()
    dx.Predict("question -> answer", model="sim/small")(question="2+2?")
    source = StoreSource()
    # the file is held by this process's writer: reads go through it, not a second attach
    assert source.fingerprint() is not None
    assert source.query("select count(*) as n from executions").frame.iloc[0]["n"] >= 2  # type: ignore[union-attr]


@pytest.mark.slow
def test_live_reads_while_another_process_records(tmp_path: Path) -> None:
    """The dashboard's reads interleave with a recording process: new trials appear while
    it runs, counts never go back, and the recorder loses nothing."""
    from dspex_lab.app._data import StoreSource

    path = tmp_path / "live.duckdb"
    proc = start_recording(path, trials=8, name="live", speed=1.0, rows=6)
    source = StoreSource(path)
    seen: list[tuple[str | None, int, int]] = []  # (state, trials, executions)
    deadline = time.monotonic() + 150
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            fingerprint = source.fingerprint()
            if fingerprint is not None and fingerprint[0] > 0:
                runs = source.runs()
                seen.append((str(runs.iloc[0]["state"]), int(runs.iloc[0]["n_trials"]),
                             fingerprint[4]))
            time.sleep(0.2)
        result = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
    final = source.runs().iloc[0]
    assert final["state"] == "finished" and final["n_trials"] == 8 == final["n_completed"]
    live = [s for s in seen if s[0] == "running"]
    assert len({s[1] for s in live}) >= 2, f"no trial appeared while running: {seen}"
    assert [s[1] for s in seen] == sorted(s[1] for s in seen), seen
    assert [s[2] for s in seen] == sorted(s[2] for s in seen), seen
    assert sorted(source.run(result["run_id"]).data.front) == result["front"]


# -- the Panel pages ------------------------------------------------------------------------

def _click(table: Any, row: int, column: str = "number") -> None:
    """What a click on a cell sends the server (Panel's own event, through its handler)."""
    from panel.models.tabulator import CellClickEvent

    table._process_event(CellClickEvent(model=None, column=column, row=row))


@pytest.mark.slow
def test_dashboard_pages_show_the_store(store: tuple[Path, dict[str, Any]]) -> None:
    from dspex_lab.app import build_dashboard

    path, seed = store
    dash = build_dashboard(path, refresh_s=0)
    assert dash.fingerprint is not None and dash.tabs.active == 0
    assert list(dash.runs_page.table.value["run_id"]) == [seed["run_id"]]
    assert not dash.runs_page.empty.visible
    assert dash.runs_page.table.formatters["spent"]["symbol"] == "$"
    assert "viewer · read-only" in dash.header.object and str(path) in dash.header.object

    _click(dash.runs_page.table, 0, "name")  # open the run from the runs list
    assert dash.tabs.active == 1
    page = dash.run_page
    assert page.run_id == seed["run_id"]
    assert f"data-front='{len(seed['front'])}'" in page.summary.object
    assert "data-completed='10'" in page.summary.object
    assert page.pareto.pane is not None and page.hypervolume.pane is not None
    rows = page.pareto.pane.object["data"]["values"]
    assert sorted(r["number"] for r in rows if r["front"]) == seed["front"]
    assert len(page.hypervolume.pane.object["data"]["values"]) == 10
    assert set(page.importance.value["variable"]) == {"model", "module", "temperature"}
    assert len(page.trials.value) == 10

    # a click on a front point: the chart's pick selection names the trial
    number = seed["front"][-1]
    page.pareto.pane.selection.pick = [{"number": number}]
    assert f"data-trial='{number}'" in page.trial.object
    assert page.trial.object.count("class='dx-sample'") == 3
    # a click on a row of the trials table does the same
    _click(page.trials, 2)
    assert f"data-trial='{int(page.trials.value.iloc[2]['number'])}'" in page.trial.object
    # other axes redraw the chart
    page.x_axis.value = "latency_s"
    assert page.pareto.pane.object["layer"][1]["encoding"]["x"]["field"] == "latency_s"


def test_executions_and_sql_pages(store: tuple[Path, dict[str, Any]]) -> None:
    from dspex_lab.app import build_dashboard
    from dspex_lab.app._data import ERRORS_ONLY

    path, seed = store
    dash = build_dashboard(path, refresh_s=0)
    dash.tabs.active = 2
    page = dash.executions_page
    total = int(page.count.object.split("data-total='")[1].split("'")[0])
    assert total > 0 and len(page.table.value) == min(200, total)
    page.kind.value = "program"
    assert set(page.table.value["kind"]) == {"program"}
    page.error.value = ERRORS_ONLY
    assert page.table.value.empty or page.table.value["error_kind"].notna().all()
    page.error.value = ""
    _click(page.table, 0, "kind")
    assert "class='dx-execution'" in page.detail.object and "question" in page.detail.object

    sql = dash.sql_page
    result = sql.run(f"select number, accuracy from trials where run_id = '{seed['run_id']}'")
    assert result.ok and len(sql.table.value) == 10 and "data-rows='10'" in sql.status.object
    refused = sql.run("delete from trials")
    assert not refused.ok and "read-only" in sql.status.object and sql.table.value.empty
    assert "Traceback" not in sql.status.object
    assert sql.run("select count(*) as n from trials").frame.iloc[0]["n"] == 10  # type: ignore[union-attr]


def test_dashboard_waits_for_a_missing_store_and_fills_in(
        store: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    from dspex_lab.app import build_dashboard

    target = tmp_path / "later" / "store.duckdb"
    dash = build_dashboard(target, refresh_s=0)
    assert dash.fingerprint is None and dash.notice.visible
    assert "dspex-lab demo" in dash.notice.object
    assert dash.runs_page.table.value.empty
    target.parent.mkdir()
    shutil.copy(store[0], target)
    assert dash.refresh() is True
    assert not dash.notice.visible
    assert list(dash.runs_page.table.value["run_id"]) == [store[1]["run_id"]]
    assert dash.refresh() is False  # nothing changed since


def test_sessions_share_one_reader_per_file(store: tuple[Path, dict[str, Any]]) -> None:
    """A server builds a dashboard per visit: they must not each keep a DuckDB instance
    and two lock-file descriptors."""
    import os

    from dspex_lab.app import build_dashboard

    first = build_dashboard(store[0], refresh_s=0)
    fds = len(os.listdir("/proc/self/fd"))
    for _ in range(15):
        dash = build_dashboard(store[0], refresh_s=0)
        assert dash.source is first.source
    assert len(os.listdir("/proc/self/fd")) <= fds + 2


def test_dashboard_refuses_a_negative_refresh() -> None:
    from dspex_lab.app import build_dashboard

    with pytest.raises(ValueError, match="refresh_s"):
        build_dashboard("x.duckdb", refresh_s=-1)


def test_html_fragments_escape_user_data() -> None:
    import pandas as pd

    from dspex_lab.app._data import TrialDetail
    from dspex_lab.app._html import execution_html, trial_html

    evil = "<script>alert(1)</script>"
    trial = TrialDetail(run_id="r", number=1, trial_id="r-1", state="completed",
                        params={"instructions": evil}, values={"accuracy": 0.5, "cost": 2e-5},
                        metrics={"accuracy_ci": [0.1, 0.9]}, on_front=True, fidelity=1.0,
                        n_examples=4, spent=0.01, reason=None,
                        samples=pd.DataFrame([{"inputs": json.dumps({"q": evil}),
                                               "outputs": json.dumps({"a": evil}),
                                               "error_kind": None, "error_message": None}]))
    for text in (trial_html(trial, ["accuracy", "cost"]),
                 execution_html({"id": evil, "inputs": {"q": evil}, "model": evil})):
        assert "<script>" not in text and "&lt;script&gt;" in text
    assert "$0.0000200" in trial_html(trial, ["cost"])


def test_importing_the_app_layer_loads_no_panel() -> None:
    code = ("import sys, dspex_lab, dspex_lab.app, dspex_lab.app._data, dspex_lab.app._auth; "
            "print(sorted(m for m in ('panel', 'bokeh', 'altair', 'duckdb', 'pandas') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out[0] == "[]"
    code = "import sys, dspex_lab; print('dspex_lab.app' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_public_names_resolve() -> None:
    import dspex_lab.app as app

    assert app.__all__ == sorted(app.__all__)
    assert {"build_dashboard", "serve", "AuthPolicy", "export_app", "export_report"} <= set(
        app.__all__)
    for name in ("AuthPolicy", "Dashboard", "StoreMissingError", "UnsafeBindError",
                 "build_dashboard", "serve"):
        assert getattr(app, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        app.nope  # noqa: B018
