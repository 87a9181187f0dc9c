"""Exported apps and reports, on real runs against the simulator and real DuckDB files.

The snapshot must hold exactly the chosen runs (and the right executions, with
payloads capped), be a store every reader can open, and never hold a secret: the
secrets test plants keys in the environment, in an LM's api_key and headers, and
straight into the store, then searches the raw bytes of every exported file. The
generated app must run under ``panel serve`` from another directory with the
original store gone.
"""

from __future__ import annotations

import html
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import duckdb
import pytest

import dspex_lab as dx
from dspex_lab.app._export import ExportError, data_path_for, export_app, export_report
from dspex_lab.app._scrub import REDACTED, Scrubber, is_secret_name
from dspex_lab.jupyter._data import from_store
from dspex_lab.optimize import Run
from tests.conftest_browser import free_port

V = dx.variables


@pytest.fixture()
def store(tmp_path: Path, sim_url: str) -> Path:
    path = tmp_path / "src" / "x.duckdb"
    dx.configure(store=path)
    return path


def _run(trials: int = 4, lm: Any = None, **kwargs: Any) -> Run:
    space = dx.Space([V.module(["predict", "cot"]), V.model(["sim/tiny", "sim/small"])])
    program = dx.Predict("question -> answer", lm=lm) if lm is not None else \
        dx.Predict("question -> answer", model="sim/small")
    run = dx.optimize(program, space, valset=dx.datasets.load("sim-math").val[:10],
                      budget=dx.Budget(trials=trials), warm_start=False, **kwargs)
    return run.wait(120)


def _snapshot_sql(path: Path, query: str, params: Any = None) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(query, params).fetchall()
    finally:
        con.close()


def _leftovers(directory: Path) -> list[str]:
    """Temporary files or folders an export might leave behind."""
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


# -- the app and its snapshot ------------------------------------------------------------


def test_export_app_writes_the_app_and_a_snapshot_of_only_that_run(store: Path,
                                                                    tmp_path: Path) -> None:
    first = _run(name="first")
    second = _run(name="second")
    out = tmp_path / "out"
    app = export_app(first, out / "dash.py", samples_per_trial=2)
    assert app == out / "dash.py"
    data = out / "dash_data.duckdb"
    assert data_path_for(app) == data and data.is_file()
    assert sorted(p.name for p in out.iterdir()) == ["dash.py", "dash_data.duckdb"]

    text = app.read_text()
    assert "panel serve dash.py" in text
    assert f"run_id={first.run_id!r}" in text and "read_only=True" in text
    assert "'dash_data.duckdb'" in text and "title='dspex_lab: first'" in text
    compile(text, "dash.py", "exec")

    # only the first run, whole: its trials, its program and space, all its executions
    assert _snapshot_sql(data, "select run_id, name from runs") == [(first.run_id, "first")]
    assert _snapshot_sql(data, "select count(*) from trials")[0][0] == len(first.trial_list())
    assert {r[0] for r in _snapshot_sql(data, "select distinct run_id from trials")} == {
        first.run_id}
    source = dx.sql("select count(*) as n, sum(cost) as c from executions where run_id = ?",
                    [first.run_id]).iloc[0]
    copied = _snapshot_sql(data, "select count(*), sum(cost), count(distinct run_id) "
                                 "from executions")[0]
    assert copied[0] == source["n"] > 0 and copied[1] == pytest.approx(source["c"])
    assert copied[2] == 1
    assert _snapshot_sql(data, "select count(*) from programs")[0][0] == 1
    assert _snapshot_sql(data, "select count(*) from variable_spaces")[0][0] == 1
    assert _snapshot_sql(data, "select count(*) from lm_cache")[0][0] == 0
    # payloads of at most 2 top-level calls per trial, each with its LM rows
    kept = _snapshot_sql(data, "select trial_id, count(distinct trace_id) from executions "
                               "where inputs is not null and trial_id is not null "
                               "group by trial_id")
    assert kept and all(n <= 2 for _, n in kept)
    assert len(kept) == len(first.trial_list())
    # a real store: the named queries work on it, through the same API as any store
    summary = dx.sql("select run_id, n_trials from run_summary", store=data)
    assert list(summary["run_id"]) == [first.run_id]
    assert second.run_id not in data.read_bytes().decode("latin-1")


def test_export_a_store_file_takes_every_run_or_the_chosen_ones(store: Path,
                                                                 tmp_path: Path) -> None:
    a, b = _run(trials=2), _run(trials=2)
    dx.configure(store=None)  # the file is closed: exported as a path
    app = export_app(store, tmp_path / "all.py")
    assert "run_id=None" in app.read_text() and "2 runs" in app.read_text()
    ids = {r[0] for r in _snapshot_sql(data_path_for(app), "select run_id from runs")}
    assert ids == {a.run_id, b.run_id}

    one = export_app(str(store), tmp_path / "one.py", runs=[b.run_id])
    assert f"run_id={b.run_id!r}" in one.read_text()
    assert _snapshot_sql(data_path_for(one), "select run_id from runs") == [(b.run_id,)]
    # a run id read from another store file
    by_id = export_app(a.run_id, tmp_path / "by_id.py", store=store, runs=[b])
    assert {r[0] for r in _snapshot_sql(data_path_for(by_id), "select run_id from runs")} \
        == {a.run_id, b.run_id}
    assert f"run_id={a.run_id!r}" in by_id.read_text()


def test_existing_files_are_kept_unless_overwrite(store: Path, tmp_path: Path) -> None:
    run = _run(trials=2)
    app = tmp_path / "app.py"
    app.write_text("# mine\n")
    with pytest.raises(ExportError, match=r"app\.py exists; pass overwrite=True"):
        export_app(run, app)
    assert app.read_text() == "# mine\n" and not data_path_for(app).exists()
    data_path_for(app).write_text("not a database")
    app.unlink()
    with pytest.raises(ExportError, match=r"app_data\.duckdb exists; pass overwrite=True"):
        export_app(run, app)
    assert not app.exists()
    export_app(run, app, overwrite=True)
    assert "build_dashboard" in app.read_text()
    assert _snapshot_sql(data_path_for(app), "select run_id from runs") == [(run.run_id,)]
    assert _leftovers(tmp_path) == []

    report = tmp_path / "r.html"
    report.write_text("mine")
    with pytest.raises(ExportError, match=r"r\.html exists; pass overwrite=True"):
        export_report(run, report)
    assert report.read_text() == "mine"
    export_report(run, report, overwrite=True)
    assert report.read_text().startswith("<!DOCTYPE html>")


def test_a_failed_export_leaves_nothing(store: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(trials=2)
    # A "secret" the scrubber cannot blank from the file, because it is the name of a
    # named query in every store's catalog: the last check (raw bytes) must refuse.
    monkeypatch.setenv("PLANTED_TOKEN", "current_performance")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ExportError, match=r"refusing to write .*app_data\.duckdb: it would "
                                          r"contain secret values \(curr…ce\)"):
        export_app(run, out / "app.py")
    assert list(out.iterdir()) == []


_BAD: list[tuple[Any, str, dict[str, Any], str]] = [
    (42, "app.py", {}, r"must be a Run or a run id, not int"),
    ("run-nope", "app.py", {}, r"run\(s\) run-nope not found in the store being recorded "
                               r"into"),
    ("missing.duckdb", "app.py", {}, r"no store at missing\.duckdb"),
    (None, "app.txt", {}, r"must end in \.py"),
    (None, "app.py", {"samples_per_trial": -1}, r"samples_per_trial must be an integer >= 0"),
    (None, "app.py", {"runs": ["run-nope"]}, r"run\(s\) run-nope not found"),
    (None, "app.py", {"runs": [3]}, r"each of runs must be a Run or a run id, not int"),
]


def test_bad_arguments_are_clear_errors(store: Path, tmp_path: Path) -> None:
    run = _run(trials=1)
    for first, name, kwargs, message in _BAD:
        with pytest.raises(ExportError, match=message):
            export_app(run if first is None else first, tmp_path / name, **kwargs)
    assert list(tmp_path.glob("app*")) == [] and _leftovers(tmp_path) == []


def test_a_store_without_runs_and_a_report_path(store: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.duckdb"
    dx.Store(empty).close()
    with pytest.raises(ExportError, match=r"empty\.duckdb holds no runs yet"):
        export_app(empty, tmp_path / "app.py")
    with pytest.raises(ExportError, match=r"report file must end in \.html"):
        export_report("run-x", tmp_path / "r.pdf")
    with pytest.raises(ExportError, match=r"no run 'run-x' in the store"):
        export_report("run-x", tmp_path / "r.html")


# -- the report --------------------------------------------------------------------------


def test_export_report_holds_front_history_configs_and_trials(store: Path,
                                                              tmp_path: Path) -> None:
    run = _run(trials=4, name="report-run")
    path = export_report(run, tmp_path / "report.html")
    page = path.read_text()
    assert page.count("src='data:image/png;base64,") == 2
    assert "id='front-chart'" in page and "id='history-chart'" in page
    assert "<script" not in page.lower() and "http://" not in page and "https://" not in page
    for section in ("The front's configurations", "Search progress", "Trials"):
        assert section in page
    for t in run.trial_list():
        assert f"data-trial='{t.number}' data-state='{t.state}'" in page
    for t in run.front_trials():  # full configurations of the front
        config = json.dumps(t.params, indent=1, ensure_ascii=False, default=str)
        assert f"<pre>{html.escape(config)}</pre>" in page
    start = page.index("id='history'")
    history_table = page[start:page.index("</table>", start)]
    assert history_table.count("<tr><td>") == len(run.hypervolume_history()) > 0
    # the same page from the store (a run id after a restart) shows the same trials
    again = export_report(run.run_id, tmp_path / "again.html")
    for t in run.trial_list():
        assert f"data-trial='{t.number}'" in again.read_text()


def test_export_report_of_a_run_recorded_nowhere(sim_url: str, tmp_path: Path) -> None:
    dx.configure(store=None)
    run = _run(trials=2)
    page = export_report(run, tmp_path / "r.html").read_text()
    assert run.run_id in page
    with pytest.raises(ExportError, match=r"cannot read the runs to export: .*[Rr]ecording "
                                          r"is off"):
        export_app(run, tmp_path / "app.py")


# -- secrets -----------------------------------------------------------------------------

PLANTED = {
    "env_key": "sk-planted-env-0123456789abcdefghij",
    "gateway": "gw-planted-header-value-5f3a9c",
    "explicit_key": "explicit-planted-key-77aa21bb",
    "custom_header": "custom-planted-header-42e1d0",
    "direct_key": "sk-proj-PLANTEDdirect0123456789abcd",
    "direct_bearer": "plantedBearerToken998877",
    "direct_param": "planted-param-value-31337",
    "direct_header": "planted-x-auth-value-5150",
    "direct_aws": "AKIAPLANTED012345678",
}


def test_no_secret_reaches_any_exported_file(store: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED["env_key"])
    monkeypatch.setenv("MY_GATEWAY_TOKEN", PLANTED["gateway"])
    lm = dx.LM("sim/small", api_key=PLANTED["explicit_key"],
               extra_headers={"X-Gateway-Auth": os.environ["MY_GATEWAY_TOKEN"],
                              "X-Custom": PLANTED["custom_header"]})
    run = _run(trials=3, lm=lm, name="secret-run", tags={"owner": "tests"})
    dx.configure(store=None)  # close the file: plant rows straight into it

    con = duckdb.connect(str(store))
    try:
        trial_id = con.execute("select trial_id from trials where run_id = ? order by number "
                               "limit 1", [run.run_id]).fetchone()[0]
        con.execute(
            "insert into executions (id, kind, run_id, trial_id, trace_id, model, inputs, "
            "outputs, params, error_kind, error_message, tags, cost, started_at) values "
            "('planted-1', 'lm', ?, ?, 'planted-trace', 'sim/small', ?, ?, ?, 'auth', ?, ?, "
            "0.0, '2000-01-01')",
            [run.run_id, trial_id,
             json.dumps([{"role": "user", "content": f"my key is {PLANTED['direct_key']}"}]),
             json.dumps({"text": f"env says {PLANTED['env_key']}, aws {PLANTED['direct_aws']}"}),
             json.dumps({"temperature": 0.0, "api_key": PLANTED["direct_param"],
                         "headers": {"X-Gateway-Auth": PLANTED["gateway"]}}),
             f"401: sent Authorization: Bearer {PLANTED['direct_bearer']} and "
             f"X-Custom-Auth: {PLANTED['direct_header']} with {PLANTED['explicit_key']} "
             f"(X-Custom: {PLANTED['custom_header']})",
             json.dumps({"run_id": run.run_id, "x-api-key": PLANTED["direct_param"]})])
        con.execute("update runs set name = ? where run_id = ?",
                    [f"secret-run {PLANTED['direct_key']}", run.run_id])
        con.execute("update trials set reason = ? where trial_id = ?",
                    [f"failed with key {PLANTED['env_key']}", trial_id])
    finally:
        con.close()
    # planted for real: the source store holds every one of them
    for value in PLANTED.values():
        hits = dx.sql("select count(*) as n from executions e join runs r using (run_id) "
                      "join trials t using (trial_id) where concat_ws(' ', e.inputs, "
                      "e.outputs, e.params, e.error_message, e.tags, r.name, t.reason) "
                      "like ?", [f"%{value}%"], store=store)
        assert hits["n"].iloc[0] >= 1, value

    out = tmp_path / "export"
    app = export_app(run.run_id, out / "app.py", store=store, runs=[run])
    # the report of the run as the store has it (with the planted name and reason)
    report = export_report(from_store(run.run_id, store), out / "report.html")
    files = [app, data_path_for(app), report]
    for path in files:
        raw = path.read_bytes()
        assert len(raw) > 500
        for name, value in PLANTED.items():
            assert raw.count(value.encode()) == 0, (path.name, name)
    # ...and not merely hidden by compression: every text value, read back through SQL
    data = data_path_for(app)
    rows = _snapshot_sql(data, "select concat_ws(' ', inputs, outputs, params, "
                               "error_message, tags) from executions where id = 'planted-1'")
    text = rows[0][0]
    assert not any(v in text for v in PLANTED.values())
    assert "Authorization: Bearer ***" in text and "X-Custom-Auth: ***" in text
    assert '"api_key": "***"' in text and '"temperature": 0.0' in text
    name = _snapshot_sql(data, "select name from runs")[0][0]
    assert name == f"secret-run {REDACTED}"
    assert f"failed with key {REDACTED}" in report.read_text()


def test_scrubber_rules() -> None:
    for name in ("api_key", "X-Api-Key", "Authorization", "openai_api_key", "access_token",
                 "x-custom-auth", "headers", "client_secret", "apiKey", "PASSWORD"):
        assert is_secret_name(name), name
    for name in ("max_tokens", "prompt_tokens", "author", "signature", "tokenizer", "key",
                 "monkey", "temperature"):
        assert not is_secret_name(name), name
    s = Scrubber(["my-extra-secret-value"], environ={"SERVICE_TOKEN": "tok-123456789",
                                                     "HOME": "/root/home-dir",
                                                     "SHORT_TOKEN": "1"})
    assert s.text("a tok-123456789 b my-extra-secret-value") == "a *** b ***"
    assert s.text("home is /root/home-dir") == "home is /root/home-dir"
    assert s.text("answer: 1") == "answer: 1"
    assert s.text("max_tokens=100000 and api_key=abcdef123") == \
        "max_tokens=100000 and api_key=***"
    assert s.text('{"x-api-key": "zzzzzzzz"}') == '{"x-api-key": "***"}'
    assert s.text("author: Jane Doe, token: None") == "author: Jane Doe, token: None"
    assert s.text("use ghp_" + "a" * 36 + " now") == "use *** now"
    assert s.text("task-0123456789abcdefghij") == "task-0123456789abcdefghij"
    assert json.loads(s.json_text('{"headers": {"A": "b"}, "n": 3, "m": ["sk-' + "x" * 20
                                  + '"]}')) == {"headers": "***", "n": 3, "m": ["***"]}
    assert s.json_text('{"a": 1}') == '{"a": 1}'  # untouched text keeps its spelling
    assert s.leaks(b"xx tok-123456789 yy") == ["tok-…89"]


# -- the app runs ------------------------------------------------------------------------


def _get(url: str, deadline: float) -> tuple[int, str]:
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return response.status, response.read().decode("utf-8", "replace")
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            last = exc
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer: {last}")


def _pull_document(url: str) -> str:
    """The served document as JSON text, as a new browser session would receive it."""
    import importlib
    import pkgutil

    import panel.models
    from bokeh.client import pull_session

    for module in pkgutil.iter_modules(panel.models.__path__):  # the types it may hold
        importlib.import_module(f"panel.models.{module.name}")
    with pull_session(url=url) as session:
        return json.dumps(session.document.to_json(), default=str)


@pytest.mark.slow
@pytest.mark.timeout(300)  # measured 55-77 s on a loaded 2-core machine (first page: ~37 s)
def test_the_exported_app_runs_under_panel_serve_without_the_store(
        store: Path, tmp_path: Path) -> None:
    run = _run(trials=3, name="served-run")
    app = export_app(run, tmp_path / "export" / "app.py")
    dx.configure(store=None)
    store.rename(store.with_name("gone.duckdb"))  # the app must not need the user's store
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DSPEX_STORE", "DSPEX_SIM_URL")}
    log = tmp_path / "panel.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "panel", "serve", str(app), "--port", str(port),
             "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
            cwd=elsewhere, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL)
    try:
        status, body = _get(f"http://127.0.0.1:{port}/app", time.monotonic() + 180)
        assert status == 200, log.read_text()
        assert "<title>dspex_lab: served-run</title>" in body
        # the page's content arrives over the websocket: open a session like a browser does
        document = _pull_document(f"http://127.0.0.1:{port}/app")
        assert run.run_id in document, log.read_text()[-3000:]
        assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    assert not (elsewhere / "dspex.duckdb").exists()
