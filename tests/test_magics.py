"""The ``%dspex`` / ``%%dspex`` magics in a real IPython shell (no mocks).

Spec cells (binding, analysis, diagnostics without tracebacks), ``%dspex optimize``
end to end against the simulator, ``%%dspex sql`` parameter binding (an injection
attempt stays a value), ``runs`` / ``stop`` / ``store``, every error path, ``--help``,
and the cost of ``%load_ext dspex_lab`` in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import CapturedIO, capture_output
from traitlets.config import Config

import dspex_lab as dx
from dspex_lab.jupyter._magic_sql import SqlReferenceError, bind_references, resolve
from dspex_lab.jupyter.magics import register

SPEC = """\
name: qa
signature: question -> answer
model: sim/small
dataset: {name: sim-math, size: 10}
variables:
  module: [predict, cot]
budget: {trials: 3}
"""

BAD_SPEC = """\
name: qa
signature: question -> answer
variabels:
  module: [predict, cot]
"""

HEAVY = ("litellm", "altair", "panel", "optuna", "pandas", "duckdb")


@pytest.fixture()
def ip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InteractiveShell]:
    """A real shell with the extension freshly loaded; the namespace is reset afterwards.

    The shell is IPython's singleton (created by the first test); its profile and
    history stay out of the home directory."""
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.ipython_dir = str(tmp_path_factory.mktemp("ipython"))
    shell = InteractiveShell.instance(config=config)
    with capture_output():  # "already loaded" after the first test
        shell.run_line_magic("load_ext", "dspex_lab")
    register(shell)  # a fresh magics object per test (no spec remembered)
    try:
        yield shell
    finally:
        shell.reset(new_session=False)


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    """A store of the test's own."""
    path = tmp_path / "m.duckdb"
    dx.configure(store=path)
    return path


def _texts(captured: CapturedIO) -> str:
    return "\n".join(o.data.get("text/plain", "") for o in captured.outputs)


def _htmls(captured: CapturedIO) -> str:
    return "\n".join(o.data.get("text/html", "") for o in captured.outputs)


def _cell(ip: InteractiveShell, source: str) -> tuple[Any, CapturedIO]:
    with capture_output() as captured:
        result = ip.run_cell(source)
    return result, captured


def _define(ip: InteractiveShell, line: str = "", body: str = SPEC) -> CapturedIO:
    with capture_output() as captured:
        ip.run_cell_magic("dspex", line, body)
    return captured


# -- loading ------------------------------------------------------------------------------


def test_load_ext_is_fast_and_imports_nothing_heavy(tmp_path: Path) -> None:
    code = textwrap.dedent(f"""
        import json, sys, time
        from IPython.core.interactiveshell import InteractiveShell
        from traitlets.config import Config
        config = Config(); config.HistoryManager.hist_file = ":memory:"
        ip = InteractiveShell.instance(config=config)
        before = set(sys.modules)
        start = time.perf_counter()
        ip.run_line_magic("load_ext", "dspex_lab")
        seconds = time.perf_counter() - start
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY!r})
        print(json.dumps({{"seconds": seconds, "heavy": heavy,
                          "magic": "dspex" in ip.magics_manager.magics["cell"],
                          "loaded": sorted(set(sys.modules) - before)}}))
    """)
    env = dict(os.environ, IPYTHONDIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["magic"]
    assert report["heavy"] == [], report["heavy"]
    assert report["seconds"] < 1.0, report
    assert not any(m.startswith(("dspex_lab.variables", "dspex_lab.optimize", "dspex_lab.lm"))
                   for m in report["loaded"]), report["loaded"]


def test_unload_ext_removes_the_magic(ip: InteractiveShell) -> None:
    ip.run_line_magic("unload_ext", "dspex_lab")
    assert "dspex" not in ip.magics_manager.magics["line"]
    assert "dspex" not in ip.magics_manager.magics["cell"]
    ip.run_line_magic("load_ext", "dspex_lab")
    assert "dspex" in ip.magics_manager.magics["line"]


# -- help ---------------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["--help", "-h", "help", ""])
def test_help_lists_every_subcommand(ip: InteractiveShell, line: str) -> None:
    with capture_output() as captured:
        ip.run_line_magic("dspex", line)
    for usage in ("%%dspex [spec]", "%dspex optimize", "%dspex sql", "%dspex runs",
                  "%dspex stop", "%dspex store"):
        assert usage in captured.stdout


@pytest.mark.parametrize(("line", "expected"), [
    ("optimize --help", "--trials"), ("sql --help", "--store"), ("runs -h", "--store"),
    ("stop --help", "--all"), ("store --help", "--off")])
def test_subcommand_help(ip: InteractiveShell, line: str, expected: str) -> None:
    with capture_output() as captured:
        ip.run_line_magic("dspex", line)
    assert captured.stdout.startswith("usage: %dspex")
    assert expected in captured.stdout


def test_spec_cell_help_does_not_parse_the_body(ip: InteractiveShell) -> None:
    captured = _define(ip, "qa --help")
    assert "usage: %%dspex [spec]" in captured.stdout
    assert "qa" not in ip.user_ns


def test_unknown_command_is_one_line(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"unknown command 'optimise'.*optimize"):
        ip.run_line_magic("dspex", "optimise qa")


# -- spec cells ---------------------------------------------------------------------------


def test_spec_cell_binds_the_spec_and_shows_the_analysis(ip: InteractiveShell) -> None:
    assert "DSPEX_SIM_URL" not in os.environ  # analysis needs no simulator
    captured = _define(ip)
    spec = ip.user_ns["qa"]
    assert isinstance(spec, dx.Spec) and spec.ok and spec.name == "qa"
    assert hasattr(spec, "build") and hasattr(spec, "analyze")
    text = _texts(captured)
    assert "qa: the spec 'qa' (1 variable, 0 constraints); run it with %dspex optimize qa" \
        in text
    assert "Pre-flight analysis of qa" in text and "strategy: grid" in text
    assert "Pre-flight analysis of qa" in _htmls(captured)
    assert captured.stderr == ""


def test_spec_cell_binds_an_explicit_name(ip: InteractiveShell) -> None:
    _define(ip, "first")
    assert isinstance(ip.user_ns["first"], dx.Spec)
    assert "qa" not in ip.user_ns
    _define(ip, "spec second")  # the explicit form
    assert ip.user_ns["second"] == ip.user_ns["first"]


def test_spec_without_a_usable_name_binds_spec(ip: InteractiveShell) -> None:
    captured = _define(ip, body=SPEC.replace("name: qa", "name: my qa"))
    assert ip.user_ns["spec"].name == "my qa"
    assert "is not a Python variable name, so it is bound to `spec`" in _texts(captured)
    _define(ip, body=SPEC.replace("name: qa\n", ""))
    assert ip.user_ns["spec"].name is None


def test_spec_named_like_a_command_needs_the_explicit_form(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match=r"takes no cell body.*%%dspex spec runs"):
        ip.run_cell_magic("dspex", "runs", SPEC)
    _define(ip, "spec runs")
    assert isinstance(ip.user_ns["runs"], dx.Spec)
    with pytest.raises(UsageError, match="a spec is defined in a cell"):
        ip.run_line_magic("dspex", "spec qa")


def test_spec_with_errors_shows_diagnostics_without_traceback(ip: InteractiveShell) -> None:
    result, captured = _cell(ip, "%%dspex\n" + BAD_SPEC)
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in captured.stdout + captured.stderr
    assert captured.stderr.strip().startswith("UsageError: the spec has 1 error")
    assert "`qa` was not (re)defined" in captured.stderr
    assert len(captured.stderr.strip().splitlines()) == 1
    text = _texts(captured)
    assert "3:1: error[unknown-key]: unknown key 'variabels'" in text
    assert "\n  variabels:\n  ^\n  fix: variables" in text
    html = _htmls(captured)
    assert "<table>" in html and "unknown-key" in html and "fix:" in html
    assert "qa" not in ip.user_ns


def test_spec_with_errors_keeps_the_previous_binding(ip: InteractiveShell) -> None:
    _define(ip)
    old = ip.user_ns["qa"]
    with capture_output(), pytest.raises(UsageError):
        ip.run_cell_magic("dspex", "", BAD_SPEC)
    assert ip.user_ns["qa"] is old


def test_yaml_syntax_error_and_empty_cell(ip: InteractiveShell) -> None:
    result, captured = _cell(ip, "%%dspex qa\nsignature: question -> answer\nmodel: [a\n")
    assert isinstance(result.error_in_exec, UsageError)
    assert "yaml-syntax" in _texts(captured) and "Traceback" not in captured.stderr
    with capture_output() as captured, pytest.raises(UsageError, match="1 error"):
        ip.run_cell_magic("dspex", "qa", "\n")  # (IPython refuses a body of nothing at all)
    assert "missing-key" in _texts(captured)


def test_invalid_variable_name_is_refused(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="'1qa' is not a valid Python variable name"):
        ip.run_cell_magic("dspex", "1qa", SPEC)
    with pytest.raises(UsageError, match="unrecognized arguments"):
        ip.run_cell_magic("dspex", "qa extra", SPEC)


def test_spec_cell_expands_variables_in_its_line(ip: InteractiveShell) -> None:
    ip.user_ns["target"] = "chosen"
    _define(ip, "{target}")
    assert isinstance(ip.user_ns["chosen"], dx.Spec)


# -- optimize ---------------------------------------------------------------------------


def test_optimize_end_to_end(ip: InteractiveShell, sim_url: str, store: Path) -> None:
    _define(ip)
    with capture_output() as captured:
        assert ip.run_line_magic("dspex", "optimize qa --trials 1 --seed 3 -o run") is None
    run = ip.user_ns["run"]
    assert isinstance(run, dx.Run)
    assert captured.stderr == ""
    from dspex_lab.jupyter.monitor import RunMonitor

    [shown] = captured.outputs  # the live monitor widget
    assert RunMonitor.__name__ in shown.data["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in shown.data
    run.wait(timeout=60)
    assert run.state == "finished"
    assert run.budget.trials == 1 and len(run.completed()) == 1
    # the run is in the store and in %dspex runs
    table = ip.run_line_magic("dspex", "runs")
    row = table.set_index("run_id").loc[run.run_id]
    assert row["in_kernel"] and row["state"] == "finished" and row["n_completed"] == 1
    trials = ip.run_cell_magic("dspex", "sql -o trials",
                               "select number, state from trials where run_id = {run}")
    assert list(trials["state"]) == ["completed"]
    assert ip.user_ns["trials"] is trials


def test_optimize_cell_form_and_default_spec(ip: InteractiveShell, sim_url: str,
                                            store: Path) -> None:
    _define(ip, "mine")
    with capture_output():
        ip.run_cell_magic("dspex", "optimize", "# the last spec defined\n--trials 1\n\n"
                          "--strategy random -o cell_run\n")
    run = ip.user_ns["cell_run"].wait(timeout=60)
    assert run.strategy.name == "random" and run.budget.trials == 1
    with capture_output():  # a body of comments only: the line's options alone
        ip.run_cell_magic("dspex", "optimize mine --trials 1 -o second", "# no options\n")
    assert ip.user_ns["second"].wait(timeout=60).budget.trials == 1
    with pytest.raises(UsageError, match="holds options"):
        ip.run_cell_magic("dspex", "optimize", SPEC)


def test_optimize_default_binding_and_spec_text(ip: InteractiveShell, sim_url: str,
                                               store: Path) -> None:
    ip.user_ns["qa_text"] = SPEC
    with capture_output():
        ip.run_line_magic("dspex", "optimize qa_text --trials 1")
    ip.user_ns["_dspex_run"].wait(timeout=60)
    assert ip.user_ns["_dspex_run"].name == "qa"


def test_optimize_overrides_keep_the_rest_of_the_budget(ip: InteractiveShell, sim_url: str,
                                                        store: Path) -> None:
    _define(ip, body=SPEC.replace("budget: {trials: 3}", "budget: {trials: 1, minutes: 5}"))
    with capture_output():
        ip.run_line_magic("dspex", "optimize qa --seconds 120 --dollars 1")
    run = ip.user_ns["_dspex_run"].wait(timeout=60)
    assert (run.budget.trials, run.budget.dollars, run.budget.seconds, run.budget.minutes) \
        == (1, 1.0, 120.0, None)


def test_optimize_errors_are_one_line(ip: InteractiveShell, sim_url: str,
                                      store: Path) -> None:
    _define(ip)
    with pytest.raises(UsageError, match=r"no spec named `qaa`.*Did you mean `qa`"):
        ip.run_line_magic("dspex", "optimize qaa")
    with pytest.raises(UsageError, match=r"no spec named `zz`.*Specs in the notebook: qa"):
        ip.run_line_magic("dspex", "optimize zz")
    ip.user_ns["number"] = 3
    with pytest.raises(UsageError, match="`number` is a int, not a spec"):
        ip.run_line_magic("dspex", "optimize number")
    with pytest.raises(UsageError, match=r"BudgetExceededError.*--force"):
        ip.run_line_magic("dspex", "optimize qa --dollars 0.0000001 --trials 3")
    with pytest.raises(UsageError, match="ConfigurationError: strategy 'bogus'"):
        ip.run_line_magic("dspex", "optimize qa --strategy bogus")
    with pytest.raises(UsageError, match="argument --trials: expected an integer >= 1"):
        ip.run_line_magic("dspex", "optimize qa --trials 0")
    with pytest.raises(UsageError, match="argument --dollars: expected a number > 0"):
        ip.run_line_magic("dspex", "optimize qa --dollars -1")
    with pytest.raises(UsageError, match="-o variable 'not valid'"):
        ip.run_line_magic("dspex", "optimize qa -o 'not valid'")
    assert "_dspex_run" not in ip.user_ns
    result, captured = _cell(ip, "%dspex optimize qq")
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in captured.stderr


def test_optimize_spec_text_with_errors_shows_diagnostics(ip: InteractiveShell) -> None:
    ip.user_ns["broken"] = BAD_SPEC
    with capture_output() as captured, pytest.raises(UsageError, match="nothing was started"):
        ip.run_line_magic("dspex", "optimize broken")
    assert "unknown-key" in _texts(captured)


def test_optimize_without_a_spec_or_simulator(ip: InteractiveShell, store: Path) -> None:
    with pytest.raises(UsageError, match="which spec"):
        ip.run_line_magic("dspex", "optimize")
    _define(ip)
    with pytest.raises(UsageError, match="start the simulator"):
        ip.run_line_magic("dspex", "optimize --trials 1")


def test_optimize_reads_a_yaml_file(ip: InteractiveShell, sim_url: str, store: Path,
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "qa.yaml").write_text(SPEC)
    with capture_output():
        ip.run_line_magic("dspex", "optimize qa.yaml --trials 1")
    assert ip.user_ns["_dspex_run"].wait(timeout=60).name == "qa"


# -- stop, runs, store -----------------------------------------------------------------


def test_optimize_returns_while_the_run_goes_on_and_stop_ends_it(
        ip: InteractiveShell, sim_server: Any, sim_url: str, store: Path) -> None:
    _define(ip)
    with capture_output():  # the first monitor in a process pays for imports: not timed
        ip.run_line_magic("dspex", "optimize qa --trials 1 -o warm")
    ip.user_ns["warm"].wait(timeout=60)
    sim_server.set_faults(rate_hang=1.0, hang_s=1.5)  # every LM call takes 1.5 s
    try:
        start = time.perf_counter()
        with capture_output():
            ip.run_line_magic("dspex", "optimize qa --strategy random --trials 3 "
                              "--concurrency 1")
        returned_after = time.perf_counter() - start
        run = ip.user_ns["_dspex_run"]
        assert not run.done and run.state == "running"  # the cell did not wait for it
        assert returned_after < 3.0
        with capture_output() as captured:
            ip.run_line_magic("dspex", "stop")
        assert f"Stopping {run.run_id}" in captured.stdout
        run.wait(timeout=60)
    finally:
        sim_server.set_faults()
    assert run.state == "stopped" and len(run.trial_list()) < 3
    with capture_output() as captured:
        ip.run_line_magic("dspex", f"stop {run.run_id}")
        ip.run_line_magic("dspex", "stop _dspex_run")
        ip.run_line_magic("dspex", "stop --all")
    assert captured.stdout.count("has already ended (stopped)") == 2
    assert "No run is running in this kernel." in captured.stdout


def test_optimize_shows_the_run_without_the_monitor_module(
        ip: InteractiveShell, sim_url: str, store: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dspex_lab.jupyter.monitor", None)  # as if absent
    _define(ip)
    with capture_output() as captured:
        ip.run_line_magic("dspex", "optimize qa --trials 1")
    run = ip.user_ns["_dspex_run"].wait(timeout=60)
    [shown] = captured.outputs
    assert shown.data["text/plain"].startswith(f"<Run {run.run_id}")


def test_stop_errors(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="no run 'run-nope' in this kernel"):
        ip.run_line_magic("dspex", "stop run-nope")
    with pytest.raises(UsageError, match="not both"):
        ip.run_line_magic("dspex", "stop run-nope --all")


def test_runs_without_recording_lists_this_kernels_runs(ip: InteractiveShell,
                                                        sim_url: str) -> None:
    dx.configure(store=None)
    _define(ip)
    with capture_output():
        ip.run_line_magic("dspex", "optimize qa --trials 1")
    run = ip.user_ns["_dspex_run"].wait(timeout=60)
    with capture_output() as captured:
        table = ip.run_line_magic("dspex", "runs")
    assert "Recording is off" in captured.stderr
    row = table.set_index("run_id").loc[run.run_id]
    assert row["in_kernel"] and row["state"] == "finished" and row["n_trials"] == 1


def test_store_shows_and_switches(ip: InteractiveShell, tmp_path: Path, store: Path) -> None:
    with capture_output() as captured:
        ip.run_line_magic("dspex", "store")
    assert captured.stdout.strip() == f"Recording into {store}"
    other = tmp_path / "other.duckdb"
    ip.user_ns["other"] = str(other)
    with capture_output() as captured:
        ip.run_line_magic("dspex", "store {other}")  # expanded like any magic line
    assert captured.stdout.strip() == f"Recording into {other}"
    from dspex_lab import recording

    active = recording.active_store()
    assert active is not None and active.path == other
    with capture_output() as captured:
        ip.run_line_magic("dspex", "store --off")
    assert "Recording is off" in captured.stdout
    assert recording.active_store() is None
    with pytest.raises(UsageError, match="not both"):
        ip.run_line_magic("dspex", "store x.duckdb --off")
    with pytest.raises(UsageError, match="takes no cell body"):
        ip.run_cell_magic("dspex", "store", "select 1")


# -- sql --------------------------------------------------------------------------------


def test_sql_binds_notebook_values(ip: InteractiveShell, store: Path) -> None:
    ip.user_ns.update(n=3, word="it's", holder=type("Holder", (), {"value": 2.5})())
    frame = ip.run_cell_magic("dspex", "sql -o df", textwrap.dedent("""\
        select {n} + 1 as a, :word as b, { holder.value } as c,
               '{n} :word' as literal, 7::varchar as cast_, {'k': 1} as struct_,
               [10, 20, 30][2:3] as slice_  -- {nope} :nope
        /* {nope} /* nested */ :nope */
        """))
    assert ip.user_ns["df"] is frame
    row = frame.iloc[0]
    assert (row["a"], row["b"], row["c"], row["literal"], row["cast_"]) \
        == (4, "it's", 2.5, "{n} :word", "7")
    assert row["struct_"] == {"k": 1} and list(row["slice_"]) == [20, 30]


def test_sql_reads_a_functions_locals_first(ip: InteractiveShell, store: Path) -> None:
    ip.user_ns["value"] = "global"
    result, captured = _cell(ip, "def f():\n    value = 41\n"
                                 "    frame = %dspex sql select {value} + 1 as v\n"
                                 "    return frame\n"
                                 "answer = f()")
    assert result.success, captured.stderr
    assert int(ip.user_ns["answer"]["v"].iloc[0]) == 42


def test_sql_injection_attempt_is_a_value(ip: InteractiveShell, store: Path) -> None:
    ip.user_ns["evil"] = "x'; drop table runs; --"
    frame = ip.run_cell_magic("dspex", "sql", "select {evil} as v, :evil as w")
    assert list(frame.iloc[0]) == ["x'; drop table runs; --"] * 2
    # the same through the line form: IPython's own {var} expansion is off for this magic
    line = ip.run_line_magic("dspex", "sql select count(*) as n from runs where name = {evil}")
    assert int(line["n"].iloc[0]) == 0  # the table still exists and nothing matched
    result, _ = _cell(ip, "%dspex sql -o df2 select {evil} as v")
    assert result.error_in_exec is None
    assert ip.user_ns["df2"]["v"].iloc[0] == "x'; drop table runs; --"


def test_sql_errors_are_one_line(ip: InteractiveShell, store: Path) -> None:
    with pytest.raises(UsageError, match=r"\{missing\} \(line 2, column 17\) names no "
                                         r"variable.*'missing'"):
        ip.run_cell_magic("dspex", "sql", "select 1\nwhere 1 = 1 and {missing} = 2")
    with pytest.raises(UsageError, match=r":absent .*names no variable"):
        ip.run_cell_magic("dspex", "sql", "select :absent")
    ip.user_ns["thing"] = 1
    with pytest.raises(UsageError, match=r"thing \(int\) has no attribute 'nope'"):
        ip.run_cell_magic("dspex", "sql", "select {thing.nope}")
    with pytest.raises(UsageError, match=r"mixes \? .*with \{thing\}"):
        ip.run_cell_magic("dspex", "sql", "select ?, {thing}")
    with pytest.raises(UsageError, match="ReadOnlyQueryError"):
        ip.run_cell_magic("dspex", "sql", "delete from runs")
    with pytest.raises(UsageError, match="StoreError"):
        ip.run_cell_magic("dspex", "sql", "select * from no_such_table")
    with pytest.raises(UsageError, match="no query"):
        ip.run_cell_magic("dspex", "sql", "  \n")
    with pytest.raises(UsageError, match="not both"):
        ip.run_cell_magic("dspex", "sql select 1", "select 2")
    with pytest.raises(UsageError, match="-o variable 'a-b'"):
        ip.run_cell_magic("dspex", "sql -o a-b", "select 1")
    result, captured = _cell(ip, "%%dspex sql\nselect {missing}")
    assert isinstance(result.error_in_exec, UsageError)
    assert "Traceback" not in captured.stderr and "UsageError" in captured.stderr


def test_sql_reads_another_store(ip: InteractiveShell, tmp_path: Path, store: Path) -> None:
    other = tmp_path / "other.duckdb"
    dx.configure(store=other)  # creates the file with its schema
    dx.configure(store=store)
    ip.user_ns["path"] = str(other)
    frame = ip.run_cell_magic("dspex", f"sql --store '{other}'", "select count(*) as n "
                              "from runs")
    assert int(frame["n"].iloc[0]) == 0
    table = ip.run_line_magic("dspex", f"runs --store '{other}'")
    assert table.empty and "in_kernel" in table.columns


@pytest.mark.parametrize(("query", "expected", "names"), [
    ("select {a}, :b", "select ?, ?", ["a", "b"]),
    ("select { a . b }", "select ?", ["a.b"]),
    ("select 'x{a}:b' || \"{a}\"", "select 'x{a}:b' || \"{a}\"", []),
    ("select 'it''s {a}'", "select 'it''s {a}'", []),
    ("select E'\\' {a}'", "select E'\\' {a}'", []),
    ("select $$ {a} :b $$, $t$ {a} $t$", "select $$ {a} :b $$, $t$ {a} $t$", []),
    ("select x::int, y::varchar", "select x::int, y::varchar", []),
    ("select struct_pack(a := 1), {'k': v}, {'k':v}", "select struct_pack(a := 1), "
     "{'k': v}, {'k':v}", []),
    ("select l[1:n], l[:n], l[a:b]", "select l[1:n], l[:n], l[a:b]", []),
    ("select 1 -- {a}\n, :b", "select 1 -- {a}\n, ?", ["b"]),
    ("select /* {a} /* :b */ {a} */ 1", "select /* {a} /* :b */ {a} */ 1", []),
    ("where a=:x and b=(:y)", "where a=? and b=(?)", ["x", "y"]),
    ("select {a.}", "select {a.}", []),
])
def test_bind_references(query: str, expected: str, names: list[str]) -> None:
    bound = bind_references(query)
    assert bound.query == expected
    assert [r.name for r in bound.references] == names
    assert bound.native_placeholder is None


def test_bind_references_detects_native_placeholders() -> None:
    assert bind_references("select ?").native_placeholder == "?"
    assert bind_references("select $1").native_placeholder == "$1"
    assert bind_references("select $run, {x}").native_placeholder == "$run"
    assert bind_references("select a$b").native_placeholder is None
    assert resolve(bind_references("select ?"), [{}]) is None  # nothing of ours to bind
    with pytest.raises(SqlReferenceError, match="mixes"):
        resolve(bind_references("select $run, {x}"), [{"x": 1}])


def test_resolve_prefers_local_names_and_binds_runs_by_id() -> None:
    bound = bind_references("select {x}, {x}")
    assert resolve(bound, [{"x": "local"}, {"x": "global"}]) == ["local", "local"]
    assert resolve(bind_references("select {p}"), [{"p": Path("/tmp/a")}]) == ["/tmp/a"]
