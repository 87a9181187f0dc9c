"""The run page: a run's summary, its Pareto front (click a point for its configuration
and sample outputs), the hypervolume over time, variable importance and the trials.

The two charts are the notebook's own (:mod:`dspex_lab.jupyter.charts`), shown by
Panel's Vega pane, which serves vega, vega-lite and vega-embed from the Panel
server itself: the page needs no network. Clicking a point sets the chart's
``pick`` selection; the page reads the trial number from it and asks the store
for that trial's program calls. A click on a row of the trials table does the
same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dspex_lab.app import _html
from dspex_lab.app._tables import make_table, set_rows
from dspex_lab.app._widgets import html, labelled, markdown, vega

if TYPE_CHECKING:
    import pandas as pd
    import panel as pn

    from dspex_lab.app._data import RunDetail, StoreSource

__all__ = ["Loaded", "RunPage"]

_NO_RUNS = ("No runs in this store yet. Run `dspex-lab demo`, or call dx.optimize(...) in a "
            "notebook recording into this file; runs appear here as they start.")
_PICK_HINT = "Click a point of the front (or a row of the trials table) to see its " \
             "configuration and sample outputs."


class RunPage:
    """Widgets of the run page; :meth:`load` reads (any thread), :meth:`show` updates the
    widgets (the session's thread)."""

    def __init__(self, source: StoreSource, run_id: str | None = None) -> None:
        import panel as pn

        self.source = source
        self.run_id = run_id
        self.detail: RunDetail | None = None
        self.picked: int | None = None
        self._updating = False
        self.picker = labelled(pn.widgets.Select, "Run", options={}, width=460,
                                        css_classes=["dx-run-picker"])
        self.picker.param.watch(self._on_pick_run, "value")
        self.summary = html(_html.message_html(_NO_RUNS), sizing_mode="stretch_width",
                                    stylesheets=[_html.STYLE])
        self.x_axis = labelled(pn.widgets.Select, "x", options=["cost"], value="cost", width=150)
        self.y_axis = labelled(pn.widgets.Select, "y", options=["accuracy"], value="accuracy",
                                        width=150)
        for w in (self.x_axis, self.y_axis):
            w.param.watch(self._on_axes, "value")
        self.pareto = _ChartSlot("dx-pareto", on_pick=self._on_point)
        self.hypervolume = _ChartSlot("dx-hypervolume")
        self.trial = html(_html.message_html(_PICK_HINT), sizing_mode="stretch_width",
                                  stylesheets=[_html.STYLE], css_classes=["dx-trial-pane"],
                                  min_width=320)
        self.objective = labelled(pn.widgets.Select, "Objective", options=[], width=180)
        self.objective.param.watch(lambda _e: self._show_importance(), "value")
        self.importance = make_table("dx-importance", page_size=12)
        self.trials = make_table("dx-trials", page_size=25)
        self.trials.on_click(self._on_trial_row)
        self.layout = pn.Column(
            self.picker, self.summary,
            pn.Row(pn.Column(pn.Row(self.x_axis, self.y_axis), self.pareto.layout),
                   pn.Column(self.trial, sizing_mode="stretch_width", max_height=560,
                             scroll=True),
                   sizing_mode="stretch_width"),
            pn.Row(self.hypervolume.layout,
                   pn.Column("### Variable importance",
                             markdown(
                                 "Share of each objective's variance across completed "
                                 "trials explained by a variable's setting (ε², 0–1).",
                                 styles={"color": "#6b7280"}),
                             self.objective, self.importance, sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            "### Trials", self.trials, sizing_mode="stretch_width")

    # -- loading ----------------------------------------------------------------------
    def load(self) -> Loaded:
        """The runs to pick from, the shown run's detail and its charts (reads the store
        and computes the charts: the costly part, off the session's thread)."""
        options = self.source.run_options()
        run_id = self.run_id
        ids = [rid for _, rid in options]
        if run_id not in ids:
            run_id = ids[0] if ids else None
        if run_id is None:
            return Loaded(options, None, None, None, ("", ""))
        detail = self.source.run(run_id)
        axes = _axes([o.name for o in detail.data.objectives], self.x_axis.value,
                     self.y_axis.value)
        pareto, hypervolume = _charts(detail, *axes)
        return Loaded(options, detail, pareto, hypervolume, axes)

    def show(self, loaded: Loaded) -> None:
        detail = loaded.detail
        self._updating = True
        try:
            self.picker.options = dict(loaded.options)
            if detail is not None:
                self.picker.value = detail.data.run_id
        finally:
            self._updating = False
        if detail is None:
            self.detail, self.run_id = None, None
            self.summary.object = _html.message_html(_NO_RUNS)
            self.pareto.clear()
            self.hypervolume.clear()
            return
        changed_run = detail.data.run_id != self.run_id
        self.run_id, self.detail = detail.data.run_id, detail
        if changed_run:
            self.picked = None
            self.trial.object = _html.message_html(_PICK_HINT)
        self.summary.object = _html.run_summary_html(detail)
        names = [o.name for o in detail.data.objectives]
        self._updating = True
        try:
            self.x_axis.options = names
            self.y_axis.options = names
            self.x_axis.value, self.y_axis.value = loaded.axes
            self.objective.options = names
            if self.objective.value not in names:
                self.objective.value = names[0]
        finally:
            self._updating = False
        if loaded.pareto is not None:
            self.pareto.set(loaded.pareto)
        if loaded.hypervolume is not None:
            self.hypervolume.set(loaded.hypervolume)
        self._show_importance()
        set_rows(self.trials, _trials_shown(detail.trials))
        if self.picked is not None and detail.data.by_number(self.picked) is not None:
            self.show_trial(self.picked)

    def open(self, run_id: str) -> None:
        """Show ``run_id`` (synchronously: a user asked for it)."""
        self.run_id = run_id
        self.show(self.load())

    # -- pieces -----------------------------------------------------------------------
    def _show_charts(self) -> None:
        detail = self.detail
        x, y = self.x_axis.value, self.y_axis.value
        if detail is None or x == y:  # an objective against itself says nothing
            return
        pareto, hypervolume = _charts(detail, x, y)
        if pareto is not None:
            self.pareto.set(pareto)
        self.hypervolume.set(hypervolume)

    def _show_importance(self) -> None:
        detail = self.detail
        if detail is None or self._updating:
            return
        frame = detail.importance
        if not frame.empty:
            frame = frame[frame["objective"] == self.objective.value]
            frame = frame[["variable", "importance", "best_setting", "best_mean",
                           "n_settings", "n_trials"]].copy()
            frame["importance"] = frame["importance"].round(3)
        set_rows(self.importance, frame)

    def show_trial(self, number: int) -> None:
        """Show trial ``number``'s configuration, values and sample outputs."""
        detail = self.detail
        if detail is None:
            return
        self.picked = number
        try:
            trial = self.source.trial(detail, number)
        except Exception as exc:  # the store went away meanwhile: say so, keep the page
            self.trial.object = _html.message_html(f"Could not read trial {number}: {exc}",
                                                   "error")
            return
        self.trial.object = _html.trial_html(trial, [o.name for o in detail.data.objectives])

    # -- events -----------------------------------------------------------------------
    def _on_pick_run(self, event: Any) -> None:
        if not self._updating and event.new and event.new != self.run_id:
            self.open(str(event.new))

    def _on_axes(self, _event: Any) -> None:
        if not self._updating:
            self._show_charts()

    def _on_point(self, event: Any) -> None:
        from dspex_lab.jupyter.charts import describe_selection

        number = describe_selection(event.new)
        if number is not None:
            self.show_trial(number)

    def _on_trial_row(self, event: Any) -> None:
        frame = self.trials.value
        if frame is None or event.row is None or not 0 <= event.row < len(frame):
            return
        self.show_trial(int(frame.iloc[event.row]["number"]))


def _trials_shown(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials table: identity first, then parameters, values and bookkeeping."""
    if trials.empty:
        return trials
    drop = [c for c in ("trial_id", "source") if c in trials.columns]
    return trials.drop(columns=drop).rename(
        columns={c: c[6:] for c in trials.columns if c.startswith("param_")
                 and c[6:] not in trials.columns})


@dataclass(frozen=True)
class Loaded:
    """What :meth:`RunPage.load` read and computed."""

    options: list[tuple[str, str]]
    detail: RunDetail | None
    pareto: dict[str, Any] | None
    hypervolume: dict[str, Any] | None
    axes: tuple[str, str]


def _axes(names: list[str], x: str, y: str) -> tuple[str, str]:
    """The chart's axes: the ones chosen if the run has them, else cost against accuracy
    (else its last and first objectives)."""
    if x not in names:
        x = "cost" if "cost" in names else names[-1]
    if y not in names:
        y = "accuracy" if "accuracy" in names else names[0]
    return x, y


def _charts(detail: RunDetail, x: str, y: str) -> tuple[dict[str, Any] | None,
                                                         dict[str, Any]]:
    """The notebook's Pareto chart (None when ``x == y``) and hypervolume chart, as Vega-Lite
    specs (unvalidated: the specs are ours, and validation is a third of the time)."""
    from dspex_lab.jupyter.charts import hypervolume_chart, pareto_chart

    pareto = None if x == y else pareto_chart(detail.data, x=x, y=y, width=480,
                                              height=320).to_dict(validate=False)
    return pareto, hypervolume_chart(detail.data, width=420, height=300).to_dict(
        validate=False)


class _ChartSlot:
    """Where a Vega chart goes. The pane is made with its first chart and then only
    given new specs: a Vega pane created empty and filled later registers its selection
    listener before vega-embed has made the view, which fails in the browser."""

    def __init__(self, name: str, on_pick: Any = None) -> None:
        import panel as pn

        self.name = name
        self.pane: pn.pane.Vega | None = None
        self._on_pick = on_pick
        self._watched: Any = None
        self.layout = pn.Column(min_height=380, min_width=440, css_classes=[f"{name}-slot"])

    def set(self, spec: dict[str, Any]) -> None:

        if self.pane is None:
            self.pane = vega(spec, css_classes=[self.name])
            self.layout.objects = [self.pane]
        else:
            # Panel resets a kept selection to None, which its list parameter refuses:
            # let it make a fresh one instead (watched again below)
            self.pane.selection = None
            self.pane.object = spec
        selection = self.pane.selection
        if self._on_pick is not None and selection is not None and \
                "pick" in selection.param and selection is not self._watched:
            selection.param.watch(self._on_pick, "pick")
            self._watched = selection

    def clear(self) -> None:
        self.pane = None
        self._watched = None
        self.layout.objects = []
