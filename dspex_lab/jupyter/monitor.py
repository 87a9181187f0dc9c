"""``RunMonitor``: a live view of an optimization run in the notebook.

What it shows: progress (trials done of the budget, dollars spent of the
budget, elapsed, ETA), the Pareto chart and the hypervolume curve (Altair
``JupyterChart``, bundled so that no CDN is needed), the last trials, a Stop
button, and, for a clicked point, the trial's configuration and a few of its
outputs read from the store.

How it stays cheap while a run reports dozens of events a second:

- Events (``run.subscribe``, on the bus's own thread) only count and mark the
  view *dirty*. A single timer thread per monitor wakes every ``interval``
  (0.25 s: at most four redraws a second) and redraws only when something
  changed; a burst of a hundred events costs one redraw.
- A redraw never rebuilds a chart: the charts read named datasets, and the new
  rows are sent to the existing Vega view as a data change (JupyterChart's
  ``_py_to_js_updates`` channel, which replaces a dataset's tuples in place, so
  axes, legends and the selected point stay as they are). Unchanged rows are not
  sent at all. Only when the run ends is the chart's spec replaced once, so a
  view opened later (a re-displayed output) starts from the final data.
- The front and the hypervolume history are kept incrementally
  (:class:`~dspex_lab.jupyter._data.FrontTracker`): a redraw costs the trials
  that completed since the last one, not the whole run.

Lifecycle: the subscription and the timer end when the run finishes (after a
final redraw), on :meth:`RunMonitor.close`, or when a newer monitor attaches to
the same run (re-running a cell would otherwise leave the old one listening).
``RunMonitor.for_run(run_id)`` follows a run of this kernel live, and shows any
other run from the store's ``runs``/``trials`` tables (``refresh()`` re-reads).

Plain-Python state for tests and scripts: ``n_points``, ``updates``,
``update_times``, ``last_update_s``, ``events``, ``selected``, ``details_html``,
``table_html``, ``progress_text``, ``attached``.
"""

from __future__ import annotations

import html
import json
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets  # type: ignore[import-untyped]

from dspex_lab.jupyter import _format
from dspex_lab.jupyter._data import FrontTracker, RunData, from_run, from_store, sample_outputs
from dspex_lab.jupyter._offline import offline_chart_class
from dspex_lab.jupyter.charts import (
    HYPERVOLUME,
    PICK,
    TRIALS,
    ParetoLayout,
    describe_selection,
    hypervolume_layers,
    hypervolume_rows,
    pareto_layers,
)

if TYPE_CHECKING:
    from dspex_lab.events import Event, Subscription
    from dspex_lab.optimize import Run

__all__ = ["RunMonitor"]

PARETO_SIZE = (340, 250)
HYPERVOLUME_SIZE = (240, 250)
"""Plot sizes (pixels; legends and axes come on top): both fit a default JupyterLab
notebook side by side."""

_MAX_FAILURES = 20
"""Consecutive failed redraws after which a monitor gives up (and says why)."""

_LIVE: dict[str, weakref.WeakSet[RunMonitor]] = {}
_LIVE_LOCK = threading.Lock()


class RunMonitor(widgets.VBox):  # type: ignore[misc]
    """A live view of an optimization run (an ipywidgets ``VBox``).

    ``RunMonitor(run)`` for a run of this kernel; ``RunMonitor.for_run(run_id)`` for any
    run (live if this kernel runs it, else read from the store). ``x``/``y``/``color``:
    the Pareto chart's axes and colour (see :func:`~dspex_lab.jupyter.charts.pareto_chart`);
    ``table_rows``: how many recent trials the table lists; ``interval``: seconds between
    redraws at most (0.25: four a second); ``samples``: outputs shown for a clicked trial.
    """

    def __init__(self, run: Run | RunData, *, x: str = "cost", y: str = "accuracy",
                 color: str | None = None, table_rows: int = 10, interval: float = 0.25,
                 samples: int = 3, store: Any = None) -> None:
        import pandas  # noqa: F401  # first imported here, never half-way on the timer thread

        from dspex_lab.optimize import Run

        self._run: Run | None = run if isinstance(run, Run) else None
        self._store = store
        self._tracker: FrontTracker | None = None
        self._lock = threading.RLock()
        data = self._snapshot() if self._run is not None else run
        assert isinstance(data, RunData)
        self._data = data
        self.run_id = data.run_id
        self.interval = float(interval)
        self.table_rows = int(table_rows)
        self.samples = int(samples)
        self._layout = ParetoLayout(data, x, y, color, show_incomplete=True)

        # plain state (what tests and scripts read)
        self.events = 0
        self.updates = 0
        self.ticks = 0
        self.update_times: list[float] = []
        self.last_update_s: float | None = None
        self.redraw_s = 0.0
        self.n_points = 0
        self.selected: int | None = None
        self.details_html = ""
        self.table_html = ""
        self.progress_text = ""
        self.attached = False
        self.max_trials = data.max_trials
        self._rows: list[dict[str, Any]] = self._layout.rows(data)
        self._hv_rows: list[dict[str, Any]] = hypervolume_rows(data)
        self._final_spec_sent = False

        # widgets
        chart_class = offline_chart_class()
        embed = {"actions": {"export": True, "source": False, "compiled": False,
                             "editor": False}}
        self.pareto = chart_class(self._pareto_spec(), embed_options=embed)
        self.hypervolume = chart_class(self._hypervolume_spec(), embed_options=embed)
        self.header = widgets.HTML()
        self.trial_bar = widgets.IntProgress(min=0, max=1, value=0, description="trials",
                                             layout=widgets.Layout(width="300px"))
        self.dollar_bar = widgets.FloatProgress(min=0.0, max=1.0, value=0.0,
                                                description="dollars",
                                                layout=widgets.Layout(width="300px"))
        self.progress = widgets.HTML()
        self.stop_button = widgets.Button(description="Stop", icon="stop",
                                          button_style="danger",
                                          tooltip="start no new trial; trials in flight "
                                                  "finish their current slice")
        self.status = widgets.HTML()
        self.table = widgets.HTML()
        self.details = widgets.HTML(value="<i style='color:#888'>click a point to see its "
                                          "configuration and outputs</i>")
        self.stop_button.on_click(lambda _button: self.stop())
        self.pareto.observe(self._on_selection, names=["_vl_selections"])
        super().__init__([
            self.header,
            widgets.HBox([widgets.VBox([self.trial_bar, self.dollar_bar]), self.progress]),
            widgets.HBox([self.pareto, self.hypervolume]),
            widgets.HBox([self.stop_button, self.status]),
            self.table, self.details])

        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscription: Subscription | None = None
        self._render_labels(data)
        self._mark_update()
        if self._run is not None and not data.done:  # the snapshot's state, not the run's
            self._attach(self._run)                   # now: an end in between is replayed
        else:
            self._finalize(data)

    # -- construction -----------------------------------------------------------------
    @classmethod
    def for_run(cls, run_id: str, *, store: Any = None, **options: Any) -> RunMonitor:
        """A monitor for any run: followed live when this kernel runs it, else built from
        the store (``store``: a path or Store; default the one being recorded into)."""
        from dspex_lab.optimize import get_run

        live = get_run(run_id)
        if live is not None:
            return cls(live, store=store, **options)
        return cls(from_store(run_id, store), store=store, **options)

    def _snapshot(self) -> RunData:
        if self._run is None:
            return self._data
        if self._tracker is None:
            from dspex_lab.jupyter._data import ObjectiveAxis

            self._tracker = FrontTracker([ObjectiveAxis(o.name, o.maximize)
                                          for o in self._run.objectives])
        return from_run(self._run, self._tracker)

    def _attach(self, run: Run) -> None:
        with _LIVE_LOCK:
            older = list(_LIVE.get(run.run_id, ()))
            _LIVE.setdefault(run.run_id, weakref.WeakSet()).add(self)
        for monitor in older:
            if monitor is not self:
                monitor.detach("a newer monitor follows this run")
        self.attached = True
        self._subscription = run.subscribe(self._on_event, name=f"monitor-{run.run_id}")
        self._thread = threading.Thread(target=self._loop, name=f"dspex-monitor-{run.run_id}",
                                        daemon=True)
        self._thread.start()

    # -- events and the redraw loop ---------------------------------------------------
    def _on_event(self, event: Event) -> None:
        """Bus thread: count, remember what the run says, mark dirty (no drawing here)."""
        self.events += 1
        if event.kind == "run.started":
            config = getattr(event.record, "config", None) or {}
            if config.get("max_trials") is not None:
                self.max_trials = int(config["max_trials"])
        self._dirty.set()

    def _loop(self) -> None:
        """Timer thread: at most one redraw per ``interval``, and only when dirty."""
        last_tick = time.monotonic()
        failures = 0
        while not self._closing.wait(self.interval):
            if self._dirty.is_set():
                self._dirty.clear()
                try:
                    data = self.redraw()
                except Exception as exc:  # a display bug must not kill the monitor
                    failures += 1
                    self.status.value = (f"<span style='color:#b00020'>monitor error: "
                                         f"{html.escape(repr(exc))}</span>")
                    if failures >= _MAX_FAILURES:
                        break
                    self._dirty.set()  # try again next time: the run's end must be drawn
                    continue
                failures = 0
                last_tick = time.monotonic()
                if data.done:
                    break
            elif time.monotonic() - last_tick >= 1.0 and not self._data.done:
                last_tick = time.monotonic()
                self._tick()
        self._release()

    def redraw(self) -> RunData:
        """Re-read the run and update every part of the view that changed (normally
        called by the timer thread; callable directly)."""
        with self._lock:
            start = time.perf_counter()
            data = self._snapshot()
            self._data = data
            rows = self._layout.rows(data)
            hv_rows = hypervolume_rows(data)
            if rows != self._rows:
                self._rows = rows
                self.n_points = len(rows)
                self.pareto._py_to_js_updates = [
                    {"namespace": "data", "name": TRIALS, "scope": [], "value": rows}]
            if hv_rows != self._hv_rows:
                self._hv_rows = hv_rows
                self.hypervolume._py_to_js_updates = [
                    {"namespace": "data", "name": HYPERVOLUME, "scope": [], "value": hv_rows}]
            self._render_labels(data)
            if data.done:
                self._finalize(data)
            self.redraw_s += time.perf_counter() - start
            self._mark_update()
            return data

    def _mark_update(self) -> None:
        now = time.monotonic()
        self.updates += 1
        self.update_times.append(now)
        self.last_update_s = now
        self.n_points = len(self._rows)

    def _tick(self) -> None:
        """Once a second while running: the clock and the ETA (labels only)."""
        with self._lock:
            self.ticks += 1
            self._render_progress(self._data)

    def refresh(self) -> None:
        """Re-read the run (for a run shown from the store: another process may still be
        writing it) and redraw."""
        if self._run is None:
            self._data = from_store(self.run_id, self._store)
            self._final_spec_sent = False
        self.redraw()

    # -- labels -----------------------------------------------------------------------
    def _render_labels(self, data: RunData) -> None:
        name = f" ({html.escape(data.name)})" if data.name else ""
        where = "" if data.live else " <span style='color:#888'>(from the store)</span>"
        self.header.value = (f"<b>{html.escape(data.run_id)}</b>{name} · strategy "
                             f"<code>{html.escape(data.strategy or '?')}</code> · "
                             f"{html.escape(data.state)}{where}")
        self._render_progress(data)
        self._render_table(data)
        self._render_status(data)

    def _render_progress(self, data: RunData) -> None:
        now = time.time()
        done = sum(t.state != "running" for t in data.trials)
        running = len(data.trials) - done
        total = self.max_trials if self.max_trials is not None else data.max_trials
        self.trial_bar.max = max(1, total or len(data.trials) or 1)
        self.trial_bar.value = min(done, self.trial_bar.max)
        limit = data.budget.get("dollars")
        if limit:
            self.dollar_bar.max = float(limit)
            self.dollar_bar.value = min(float(data.spent), float(limit))
            self.dollar_bar.layout.display = None
        else:
            self.dollar_bar.layout.display = "none"
        parts = [f"{done}{f' of {total}' if total else ''} trials"
                 + (f" ({running} running)" if running else ""),
                 _format.dollars(data.spent) + (f" of {_format.dollars(float(limit))}"
                                                if limit else "") + " spent",
                 f"{_format.duration(data.elapsed_s(now))} elapsed"]
        eta = self._eta(data, done, total, now)
        if eta is not None:
            parts.append(f"ETA ~{_format.duration(eta)}")
        self.progress_text = " · ".join(parts)
        self.progress.value = (f"<div style='padding:4px 8px'>"
                               f"{html.escape(self.progress_text)}</div>")

    @staticmethod
    def _eta(data: RunData, done: int, total: int | None, now: float) -> float | None:
        """Seconds left: the soonest of the trial, time and dollar budgets' own forecasts."""
        if data.done:
            return None
        elapsed = data.elapsed_s(now)
        forecasts = []
        if total and done:
            forecasts.append(elapsed / done * max(0, total - done))
        limits = [v for v in (data.budget.get("seconds"),
                              None if data.budget.get("minutes") is None
                              else float(data.budget["minutes"]) * 60) if v is not None]
        if limits:
            forecasts.append(max(0.0, min(limits) - elapsed))
        dollars = data.budget.get("dollars")
        if dollars and data.spent > 0:
            forecasts.append(elapsed / data.spent * max(0.0, float(dollars) - data.spent))
        return min(forecasts) if forecasts else None

    def _render_table(self, data: RunData) -> None:
        names = [o.name for o in data.objectives]
        recent = sorted(data.trials, key=lambda t: t.number, reverse=True)[: self.table_rows]
        rows = [[t.number, t.state, _format.config_text(t.params),
                 *(_format.value(n, t.values.get(n)) for n in names),
                 f"{t.fidelity:.0%}", _format.dollars(t.spent), t.reason or ""]
                for t in recent]
        self.table_html = _format.html_table(
            rows, ["trial", "state", "configuration", *names, "fidelity", "paid", "reason"])
        title = (f"<div style='font-weight:bold;margin-top:6px'>last {len(rows)} of "
                 f"{len(data.trials)} trials</div>")
        self.table.value = title + self.table_html

    def _render_status(self, data: RunData) -> None:
        if data.done:
            why = f": {html.escape(data.stop_reason)}" if data.stop_reason else ""
            self.status.value = f"<div style='padding:6px'>{html.escape(data.state)}{why}</div>"
        elif self._run is not None and self._run.stop_requested:
            self.status.value = ("<div style='padding:6px'>stopping: trials in flight finish "
                                 "their current slice</div>")
        elif self.attached:
            self.status.value = ""  # running normally (clears an earlier redraw error)

    def _finalize(self, data: RunData) -> None:
        """The run is over (or not live here): no Stop, and the charts' specs carry the
        final rows so a view opened later starts from them (one full render, once)."""
        self.stop_button.disabled = True
        if data.live:
            self.stop_button.description = "Stopped" if data.state == "stopped" else "Done"
        else:
            self.stop_button.description = "Stop"
            self.stop_button.tooltip = "this run is not running in this kernel"
            if not data.done:
                self.status.value = ("<div style='padding:6px;color:#a15c00'>the store says "
                                     "running: another process, or a kernel that ended "
                                     "(dx.resume(run_id) continues it); refresh() "
                                     "re-reads</div>")
        if not self._final_spec_sent and data.live:
            self._final_spec_sent = True
            self.pareto.spec = self._pareto_spec().to_dict(validate=False)
            self.hypervolume.spec = self._hypervolume_spec().to_dict(validate=False)

    def _pareto_spec(self) -> Any:
        return pareto_layers(self._layout, width=PARETO_SIZE[0], height=PARETO_SIZE[1]
                             ).properties(datasets={TRIALS: self._rows})

    def _hypervolume_spec(self) -> Any:
        return hypervolume_layers(width=HYPERVOLUME_SIZE[0], height=HYPERVOLUME_SIZE[1]
                                  ).properties(datasets={HYPERVOLUME: self._hv_rows})

    # -- interaction ------------------------------------------------------------------
    def stop(self) -> None:
        """Stop the run (the Stop button): no new trial starts, trials in flight finish
        their current slice."""
        if self._run is None:
            return
        self._run.stop()
        self.stop_button.disabled = True
        self.stop_button.description = "Stopping…"
        self._render_status(self._data)
        self._dirty.set()

    def _on_selection(self, change: dict[str, Any]) -> None:
        """A click on a point (the front end updates the ``pick`` selection)."""
        picked = (change.get("new") or {}).get(PICK) or {}
        number = describe_selection(picked.get("value"))
        if number is not None:  # an emptied selection (double click, re-render) keeps it
            self.show_trial(number)

    def show_trial(self, number: int) -> str:
        """Show trial ``number``'s configuration, values and a few outputs; returns the HTML."""
        with self._lock:
            data = self._data
        trial = data.by_number(number)
        if trial is None:
            self.details.value = self.details_html = (
                f"<i>trial {number} is not in run {html.escape(data.run_id)}</i>")
            return self.details_html
        self.selected = number
        names = [o.name for o in data.objectives]
        facts = [("state", trial.state + (f" ({trial.reason})" if trial.reason else "")),
                 ("fidelity", f"{trial.fidelity:.0%} ({trial.n_examples} examples)"),
                 *((n, _format.value(n, trial.values.get(n))) for n in names),
                 ("on the front", "yes" if number in data.front else "no"),
                 ("LM calls", str(trial.lm_calls)), ("paid", _format.dollars(trial.spent)),
                 ("source", trial.source)]
        ci = trial.metrics.get("accuracy_ci")
        if ci:
            facts.insert(2, ("accuracy 95% interval", f"{ci[0]:.3f} – {ci[1]:.3f}"))
        config = json.dumps(trial.config or trial.params, indent=1, default=str)
        parts = [f"<div style='font-weight:bold;margin-top:6px'>trial {number}</div>",
                 "<div style='display:flex;gap:24px'>",
                 "<div><div style='color:#555'>configuration</div>",
                 _format.html_table(list(trial.params.items()), vertical=True), "</div>",
                 "<div><div style='color:#555'>result</div>",
                 _format.html_table(facts, vertical=True), "</div></div>",
                 f"<details><summary>program config (for <code>with_config</code>)</summary>"
                 f"<pre style='font-size:11px'>{html.escape(config)}</pre></details>",
                 self._samples_html(trial.trial_id)]
        self.details_html = "".join(parts)
        self.details.value = self.details_html
        return self.details_html

    def _samples_html(self, trial_id: str) -> str:
        try:
            frame = sample_outputs(trial_id, self.samples, store=self._store)
        except Exception as exc:  # recording off, or another process holds the file
            return (f"<div style='color:#888'>no outputs: {html.escape(str(exc)[:200])}"
                    f"</div>")
        if frame.empty:
            return "<div style='color:#888'>no recorded outputs for this trial</div>"
        rows = []
        for rec in frame.to_dict("records"):
            out = rec.get("outputs")
            kind = rec.get("error_kind")
            if isinstance(kind, str) and kind:  # a missing value may come back as NaN
                message = rec.get("error_message")
                out = f"[{kind}] {message if isinstance(message, str) else ''}"
            rows.append([_clip(rec.get("inputs")), _clip(out)])
        return ("<div style='color:#555;margin-top:4px'>sample outputs</div>"
                + _format.html_table(rows, ["inputs", "outputs"]))

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the monitor has drawn the run's end and let go of it (True), or
        ``timeout`` seconds passed (False). Scripts and tests; a notebook never needs it."""
        thread = self._thread
        if thread is None:
            return True
        thread.join(timeout)
        return not thread.is_alive()

    # -- ending -------------------------------------------------------------------------
    def detach(self, reason: str | None = None) -> None:
        """Stop following the run (the view keeps its last state)."""
        self._closing.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self._release()
        if reason:
            self.status.value = (f"<div style='padding:6px;color:#888'>detached: "
                                 f"{html.escape(reason)}</div>")

    def _release(self) -> None:
        sub, self._subscription = self._subscription, None
        if sub is not None:
            sub.close()
        self.attached = False
        with _LIVE_LOCK:
            live = _LIVE.get(self.run_id)
            if live is not None:
                live.discard(self)
                if not live:
                    _LIVE.pop(self.run_id, None)

    @property
    def subscription(self) -> Subscription | None:
        """The live event subscription (None once detached, closed or finished)."""
        return self._subscription

    def close(self) -> None:
        """Unsubscribe, stop the timer and close the widgets."""
        self.detach()
        stack = list(self.children)
        while stack:  # every widget of the view, containers included
            child = stack.pop()
            stack.extend(getattr(child, "children", ()))
            child.close()
        super().close()

    # -- display --------------------------------------------------------------------------
    def __repr__(self) -> str:
        data = self._data
        return (f"<RunMonitor {data.run_id} {data.state}: {len(data.trials)} trials, "
                f"front {len(data.front)}{', live' if self.attached else ''}>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widget, plus an HTML summary for where widgets do not render (GitHub,
        nbviewer): it shows the run as it was when displayed."""
        from dspex_lab.jupyter.reprs import summary_rows

        bundle = super()._repr_mimebundle_(**kwargs)
        if isinstance(bundle, dict):
            note = ("<div style='color:#888;font-size:12px'>live monitor (a widget); "
                    "<code>run_figures(run)</code> draws a static image</div>")
            bundle["text/html"] = _format.html_table(summary_rows(self._data),
                                                     vertical=True) + note
        return bundle


def _clip(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
