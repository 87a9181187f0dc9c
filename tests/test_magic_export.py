"""``%dspex export`` in a real IPython shell, on real runs against the simulator.

The magic must do what ``export_app`` / ``export_report`` do (files, contents), find
the run the way the help says (a variable, an id, a store file, the latest), and end
every mistake in one ``UsageError`` line, leaving existing files alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

import dspex_lab as dx
from dspex_lab.jupyter.magics import register
from dspex_lab.optimize import Run

V = dx.variables


@pytest.fixture()
def ip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.ipython_dir = str(tmp_path_factory.mktemp("ipython"))
    shell = InteractiveShell.instance(config=config)
    with capture_output():
        shell.run_line_magic("load_ext", "dspex_lab")
    register(shell)
    try:
        yield shell
    finally:
        shell.reset(new_session=False)


@pytest.fixture()
def store(tmp_path: Path, sim_url: str) -> Path:
    path = tmp_path / "m.duckdb"
    dx.configure(store=path)
    return path


def _run(name: str | None = None, trials: int = 2) -> Run:
    space = dx.Space([V.module(["predict", "cot"])])
    return dx.optimize(dx.Predict("question -> answer", model="sim/small"), space,
                       valset=dx.datasets.load("sim-math").val[:6],
                       budget=dx.Budget(trials=trials), warm_start=False, name=name).wait(120)


def _export(ip: InteractiveShell, line: str) -> str:
    with capture_output() as captured:
        ip.run_line_magic("dspex", "export " + line)
    return captured.stdout


def _run_ids(data: Path) -> set[str]:
    con = duckdb.connect(str(data), read_only=True)
    try:
        return {r[0] for r in con.execute("select run_id from runs").fetchall()}
    finally:
        con.close()


def test_help_and_overview_mention_export(ip: InteractiveShell) -> None:
    with capture_output() as captured:
        ip.run_line_magic("dspex", "export --help")
    assert captured.stdout.startswith("usage: %dspex export")
    for option in ("--report", "--overwrite", "--no-app", "--store", "-o"):
        assert option in captured.stdout
    with capture_output() as captured:
        ip.run_line_magic("dspex", "--help")
    assert "%dspex export" in captured.stdout


def test_export_a_run_variable_as_app_and_report(ip: InteractiveShell, store: Path,
                                                tmp_path: Path) -> None:
    ip.user_ns["best"] = run = _run("magic-run")
    _run("later")  # the variable, not the latest run, is exported
    app, report = tmp_path / "out" / "dash.py", tmp_path / "out" / "r.html"
    out = _export(ip, f"best -o {app} --report {report}")
    assert f"Wrote {app} and dash_data.duckdb" in out and f"panel serve {app}" in out
    assert f"Wrote {report}: open it in a browser" in out
    assert f"run_id={run.run_id!r}" in app.read_text()
    assert _run_ids(tmp_path / "out" / "dash_data.duckdb") == {run.run_id}
    page = report.read_text()
    assert run.run_id in page and "magic-run" in page and "id='trials'" in page


def test_defaults_and_options_expand(ip: InteractiveShell, store: Path, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    latest = _run()
    _export(ip, "")  # the latest run of this kernel, to ./app.py
    assert f"run_id={latest.run_id!r}" in (tmp_path / "app.py").read_text()
    assert (tmp_path / "app_data.duckdb").is_file()
    # by id, report only, with a notebook variable in the line
    ip.user_ns["target"] = "only.html"
    out = _export(ip, f"{latest.run_id} --no-app --report {{target}}")
    assert "only.html" in out and (tmp_path / "only.html").is_file()
    assert sorted(p.name for p in tmp_path.glob("*.py")) == ["app.py"]


def test_export_a_store_file(ip: InteractiveShell, store: Path, tmp_path: Path) -> None:
    a, b = _run("a"), _run("b")
    out = _export(ip, f"{store} -o {tmp_path / 'all.py'} --report {tmp_path / 'r.html'}")
    assert "Wrote" in out
    assert _run_ids(tmp_path / "all_data.duckdb") == {a.run_id, b.run_id}
    assert b.run_id in (tmp_path / "r.html").read_text()  # the report: the store's latest
    # --store without a run: the latest run of that file, not of this kernel
    other = tmp_path / "other.duckdb"
    dx.configure(store=other)
    c = _run("c")
    dx.configure(store=store)
    _export(ip, f"--store {other} -o {tmp_path / 'c.py'}")
    assert _run_ids(tmp_path / "c_data.duckdb") == {c.run_id}


def test_overwrite(ip: InteractiveShell, store: Path, tmp_path: Path) -> None:
    run = _run()
    app = tmp_path / "app.py"
    app.write_text("# mine\n")
    with pytest.raises(UsageError, match=r"ExportError: .*app\.py exists; pass "
                                         r"overwrite=True \(--overwrite in %dspex export\)"):
        _export(ip, f"{run.run_id} -o {app}")
    assert app.read_text() == "# mine\n"
    _export(ip, f"{run.run_id} -o {app} --overwrite")
    assert run.run_id in app.read_text()


_ERRORS = [
    ("run-nope -o {tmp}/a.py", r"run\(s\) run-nope not found"),
    ("number -o {tmp}/a.py", r"number is a int, not a run"),
    ("--no-app", r"--no-app writes nothing without --report FILE"),
    ("-o {tmp}/a.txt", r"the app file must end in \.py"),
    ("--store {tmp}/empty.duckdb -o {tmp}/a.py", r"no run to export: .*holds none"),
    ("--report {tmp}/r.pdf --no-app", r"the report file must end in \.html"),
    ("--bogus", r"unrecognized arguments: --bogus"),
]


def test_errors_are_one_line(ip: InteractiveShell, store: Path, tmp_path: Path) -> None:
    _run()
    dx.Store(tmp_path / "empty.duckdb").close()
    ip.user_ns["number"] = 5
    for line, message in _ERRORS:
        with pytest.raises(UsageError, match=message):
            _export(ip, line.format(tmp=tmp_path))
    assert not list(tmp_path.glob("a*")) and not list(tmp_path.glob("r.*"))


def test_cell_body_is_refused(ip: InteractiveShell, store: Path) -> None:
    with pytest.raises(UsageError, match="%%dspex export takes no cell body"):
        ip.run_cell_magic("dspex", "export", "something")
