"""The runs list, the executions browser and the SQL console.

Each page has ``load()`` (reads the store; safe on any thread, touches no widget
but reads their values) and ``show(loaded)`` (updates the widgets on the
session's thread), so the dashboard can read off the event loop and apply the
result on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dspex_lab.app import _html
from dspex_lab.app._data import (
    ANY,
    ERRORS_ONLY,
    MAX_ROWS,
    NO_ERRORS,
    ExecutionFilter,
    ExecutionOptions,
    QueryResult,
    StoreSource,
)
from dspex_lab.app._tables import make_table, set_rows
from dspex_lab.app._widgets import button, html, labelled, markdown

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DEFAULT_QUERY", "ExecutionsPage", "RunsPage", "SqlPage"]

DEFAULT_QUERY = ("select model, count(*) as calls, sum(cost) as dollars,\n"
                 "       avg(latency_s) as latency_s\n"
                 "from executions where kind = 'lm'\ngroup by model order by dollars desc")

_RUN_COLUMNS = ["name", "run_id", "state", "strategy", "n_trials", "n_completed", "n_pruned",
                "n_failed", "best_accuracy", "min_cost", "spent", "lm_attempts",
                "lm_failures", "started_at", "ended_at", "stop_reason"]


class RunsPage:
    """Every run, newest first; clicking a row opens its run page."""

    def __init__(self, source: StoreSource, open_run: Callable[[str], None]) -> None:
        import panel as pn

        self.source = source
        self._open_run = open_run
        self.empty = html("", sizing_mode="stretch_width", stylesheets=[_html.STYLE],
                                  visible=False)
        self.table = make_table("dx-runs", page_size=25)
        self.table.on_click(self._on_click)
        self.layout = pn.Column(
            markdown("Every optimization run recorded in the store, newest first. "
                             "Click a run to open its page.", styles={"color": "#6b7280"}),
            self.empty, self.table, sizing_mode="stretch_width")

    def load(self) -> pd.DataFrame:
        return self.source.runs()

    def show(self, runs: pd.DataFrame) -> None:
        if runs.empty:
            self.empty.object = _html.message_html(
                "No runs yet — run `dspex-lab demo` to make one, or call dx.optimize(...) "
                "in a notebook recording into this store.")
            self.empty.visible = True
        else:
            self.empty.visible = False
        set_rows(self.table, runs[[c for c in _RUN_COLUMNS if c in runs.columns]])

    def _on_click(self, event: Any) -> None:
        frame = self.table.value
        if frame is not None and event.row is not None and 0 <= event.row < len(frame):
            self._open_run(str(frame.iloc[event.row]["run_id"]))


class ExecutionsPage:
    """Executions filtered by run, model, error kind and row kind, and searched by text
    (inputs, outputs, error messages); a click on a row shows all of it."""

    def __init__(self, source: StoreSource) -> None:
        import panel as pn

        self.source = source
        self._updating = False
        self.run = labelled(pn.widgets.Select, "Run", options={"any run": ANY}, width=320)
        self.model = labelled(pn.widgets.Select, "Model", options={"any model": ANY}, width=170)
        self.error = labelled(pn.widgets.Select, "Error", options={"any outcome": ANY}, width=170)
        self.kind = labelled(pn.widgets.Select, "Row kind", options={"any kind": ANY}, width=150)
        self.text = labelled(pn.widgets.TextInput, "Search text", placeholder="in inputs, outputs, "
                                         "errors…", width=260, css_classes=["dx-search"])
        self.limit = labelled(pn.widgets.IntInput, "Rows", value=200, start=1, end=MAX_ROWS,
                                         width=90)
        for w in (self.run, self.model, self.error, self.kind, self.text, self.limit):
            w.param.watch(self._on_filter, "value")
        self.count = html("", css_classes=["dx-count"])
        self.table = make_table("dx-executions", page_size=25)
        self.table.on_click(self._on_click)
        self.detail = html("", sizing_mode="stretch_width", stylesheets=[_html.STYLE])
        self.layout = pn.Column(
            pn.Row(self.run, self.model, self.error, self.kind, self.text, self.limit),
            self.count, self.table, self.detail, sizing_mode="stretch_width")

    def filter(self) -> ExecutionFilter:
        return ExecutionFilter(run_id=self.run.value or ANY, model=self.model.value or ANY,
                               error=self.error.value or ANY, kind=self.kind.value or ANY,
                               text=self.text.value or "", limit=int(self.limit.value or 200))

    def load(self) -> tuple[ExecutionOptions, pd.DataFrame, int, ExecutionFilter]:
        f = self.filter()
        rows, total = self.source.executions(f)
        return self.source.execution_options(), rows, total, f

    def show(self, loaded: tuple[ExecutionOptions, pd.DataFrame, int, ExecutionFilter]
             ) -> None:
        options, rows, total, _f = loaded
        self._updating = True
        try:
            self.run.options = {"any run": ANY, **dict(options.runs)}
            self.model.options = {"any model": ANY, **{m: m for m in options.models}}
            self.error.options = {"any outcome": ANY, "failed (any error)": ERRORS_ONLY,
                                  "succeeded": NO_ERRORS,
                                  **{k: k for k in options.error_kinds}}
            self.kind.options = {"any kind": ANY, **{k: k for k in options.kinds}}
        finally:
            self._updating = False
        shown = len(rows)
        self.count.object = (
            f"<span class='dx-muted' data-total='{total}' data-shown='{shown}'>"
            f"{total:,} matching row{'s' if total != 1 else ''}"
            + (f", the newest {shown:,} shown" if shown < total else "") + "</span>")
        set_rows(self.table, rows)

    def refresh_now(self) -> None:
        self.show(self.load())

    def _on_filter(self, _event: Any) -> None:
        if not self._updating:
            self.refresh_now()

    def _on_click(self, event: Any) -> None:
        frame = self.table.value
        if frame is None or event.row is None or not 0 <= event.row < len(frame):
            return
        try:
            row = self.source.execution(str(frame.iloc[event.row]["id"]))
        except Exception as exc:
            self.detail.object = _html.message_html(f"Could not read the row: {exc}", "error")
            return
        self.detail.object = _html.execution_html(row)


class SqlPage:
    """A read-only SQL console over the store: one statement, results capped at
    :data:`MAX_ROWS` rows; refused or failing statements show the store's message."""

    def __init__(self, source: StoreSource, *, read_only: bool = True) -> None:
        import panel as pn

        self.source = source
        self.read_only = read_only
        self.last: QueryResult | None = None
        self.editor = labelled(
            pn.widgets.TextAreaInput,
            "SQL (read-only: one SELECT, DESCRIBE, SHOW, EXPLAIN or read-only PRAGMA)",
            value=DEFAULT_QUERY, height=140, sizing_mode="stretch_width",
            css_classes=["dx-sql-editor"])
        self.run_button = button("Run query", width=120, css_classes=["dx-sql-run"])
        self.run_button.on_click(lambda _e: self.run())
        self.status = html("", sizing_mode="stretch_width", stylesheets=[_html.STYLE],
                                   css_classes=["dx-sql-status"])
        self.table = make_table("dx-sql-result", page_size=25)
        help_text = (
            "Tables: `executions`, `runs`, `trials`, `programs`, `variable_spaces`, "
            "`lm_cache`, `deployments`, `alerts`. Named queries: `run_summary`, "
            "`best_trade_offs_of('<run>')`, `variable_importance_of('<run>')`, "
            "`cost_efficiency`, `convergence_status`, `failures_by_kind`, "
            "`current_performance`. Statements that change data are refused. At most "
            f"{MAX_ROWS:,} rows are shown.")
        self.layout = pn.Column(
            markdown(help_text, styles={"color": "#6b7280"}),
            self.editor, self.run_button, self.status, self.table,
            sizing_mode="stretch_width")

    def run(self, text: str | None = None) -> QueryResult:
        """Run ``text`` (default: the editor's text) and show the result."""
        if text is None:
            text = self.editor.value_input or self.editor.value or ""
        else:
            self.editor.value = text
        result = self.source.query(text)
        self.show(result)
        return result

    def show(self, result: QueryResult) -> None:
        self.last = result
        if not result.ok or result.frame is None:
            self.status.object = _html.message_html(result.error or "no result", "error")
            set_rows(self.table, _empty())
            return
        n = len(result.frame)
        note = f" (cut at {MAX_ROWS:,}: add a LIMIT or aggregate)" if result.truncated else ""
        self.status.object = (
            f"<span class='dx-muted dx-sql-rows' data-rows='{n}' "
            f"data-truncated='{int(result.truncated)}'>{n:,} row{'s' if n != 1 else ''}"
            f"{note} in {result.elapsed_s * 1000:.0f} ms</span>")
        set_rows(self.table, result.frame)


def _empty() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame()
