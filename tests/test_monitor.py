"""The run monitor on real runs against the simulator, asserted on its plain-Python state.

Live updates (points grow, redraws rate-limited and sent as data, not as new
specs), the Stop button, clicking a point, re-attaching, ``for_run`` from the
store, and unsubscribing. The ``browser`` test renders the monitor's chart in
headless Chromium with every network request refused.
"""

from __future__ import annotations

import html
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab import events
from dspex_lab.optimize import Run

V = dx.variables


@pytest.fixture()
def store(tmp_path: Path, sim_url: str) -> Path:
    path = tmp_path / "x.duckdb"
    dx.configure(store=path)
    return path


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    """Pay the first monitor's one-time costs (Altair import, the bundled chart module)
    before any run starts, so the runs are not over before their monitor exists."""
    import pandas

    from dspex_lab.jupyter._offline import offline_chart_class
    from dspex_lab.jupyter.charts import pareto_chart

    offline_chart_class()
    pareto_chart(pandas.DataFrame({"number": [0], "state": ["completed"], "cost": [0.1],
                                   "accuracy": [0.5]})).to_dict()


def _run(trials: int, *, concurrency: int = 1, rows: int = 10, dollars: float | None = None,
         **kwargs: Any) -> Run:
    space = dx.Space([V.module(["predict", "cot"]),
                      V.model(["sim/tiny", "sim/small", "sim/medium"]), V.temperature(0.0, 1.0)])
    return dx.optimize(dx.Predict("question -> answer", model="sim/small"), space,
                       valset=dx.datasets.load("sim-math").val[:rows],
                       budget=dx.Budget(trials=trials, dollars=dollars), strategy="random",
                       seed=3,
                       concurrency=concurrency, warm_start=False, pruning=False, **kwargs)


def _tiny_run() -> Run:
    space = dx.Space([V.module(["predict", "cot"]), V.model(["sim/tiny", "sim/small"])])
    return dx.optimize(dx.Predict("question -> answer", model="sim/small"), space,
                       valset=dx.datasets.load("sim-math").val[:10],
                       budget=dx.Budget(trials=4)).wait(60)


def _plotted(run: Run) -> set[int]:
    return {t.number for t in run.trial_list()
            if t.state in ("completed", "pruned", "failed")
            and t.values.get("cost") is not None and t.values.get("accuracy") is not None}


def _click(monitor: Any, number: int) -> None:
    """What the front end does when a point is clicked: the ``pick`` selection's Vega
    signal and store (the value format was checked in Chromium, see the browser test)."""
    monitor.pareto._vl_selections = {"pick": {
        "value": {"number": [number], "vlPoint": {"or": [{"number": number}]}},
        "store": [{"unit": "", "fields": [{"type": "E", "field": "number"}],
                   "values": [number]}]}}


def test_points_grow_live_and_redraws_are_coalesced(store: Path) -> None:
    from dspex_lab.jupyter.monitor import RunMonitor

    run = _run(20, rows=20)
    monitor = RunMonitor(run)
    specs: list[Any] = []
    pushes: list[Any] = []
    monitor.pareto.observe(lambda c: specs.append(c["new"]), names=["spec"])
    monitor.pareto.observe(lambda c: pushes.append(c["new"]), names=["_py_to_js_updates"])
    seen = [monitor.n_points]
    while not run.done:
        seen.append(monitor.n_points)
        time.sleep(0.02)
    assert monitor.wait(30)
    seen.append(monitor.n_points)
    started = monitor.update_times[0]
    duration = monitor.update_times[-1] - started

    # the points grew with the run (several live pushes) and ended with every trial
    assert seen == sorted(seen) and seen[0] < seen[-1]
    assert monitor.n_points == len(_plotted(run)) == 20
    counts = [len(p[0]["value"]) for p in pushes]
    assert len(counts) >= 2 and counts == sorted(counts) and counts[0] < 20, counts
    # coalesced: far fewer redraws than events, never more than one per interval
    assert monitor.events >= 2 * 20 + 2  # each trial's start and end, the run's
    assert monitor.updates * 3 <= monitor.events, (monitor.updates, monitor.events)
    gaps = [b - a for a, b in zip(monitor.update_times, monitor.update_times[1:],
                                  strict=False)]
    assert all(g >= 0.9 * monitor.interval for g in gaps), gaps
    assert monitor.updates <= duration / monitor.interval + 2
    # live updates are data changes of the named dataset; the spec changes once, at the end
    assert pushes and all(p[0]["name"] == "trials" and p[0]["namespace"] == "data"
                          for p in pushes)
    assert len(specs) == 1
    assert {r["number"] for r in pushes[-1][0]["value"]} == _plotted(run)
    assert {r["number"] for r in specs[0]["datasets"]["trials"]} == _plotted(run)
    # done: unsubscribed, the button says so, the progress names the budget
    assert not monitor.attached and monitor.subscription is None
    assert monitor.stop_button.disabled and monitor.stop_button.description == "Done"
    assert monitor.progress_text.startswith("20 of 20 trials")


def test_the_stop_button_stops_the_run(store: Path) -> None:
    from dspex_lab.jupyter.monitor import RunMonitor

    run = _run(500, concurrency=2, dollars=50.0)
    monitor = RunMonitor(run)
    deadline = time.monotonic() + 30
    while not run.completed() and time.monotonic() < deadline:
        time.sleep(0.02)
    monitor.redraw()
    # progress against both budgets, and a forecast
    assert " of 500 trials" in monitor.progress_text
    assert "of $50.0000 spent" in monitor.progress_text and "ETA ~" in monitor.progress_text
    assert monitor.dollar_bar.layout.display != "none" and monitor.dollar_bar.max == 50.0
    assert not monitor.stop_button.disabled
    monitor.stop_button.click()
    assert monitor.stop_button.disabled
    run.wait(30)
    assert run.state == "stopped" and run.stop_reason == "stopped by the user"
    assert monitor.wait(10)
    assert monitor.stop_button.description == "Stopped"
    assert "stopped by the user" in monitor.status.value
    assert monitor.n_points == len(_plotted(run)) < 500


def test_clicking_a_point_shows_its_configuration_and_outputs(store: Path) -> None:
    from dspex_lab.jupyter.monitor import RunMonitor

    run = _tiny_run()
    monitor = RunMonitor(run)
    trial = sorted(run.front_trials(), key=lambda t: t.number)[-1]
    _click(monitor, trial.number)
    assert monitor.selected == trial.number
    assert monitor.pareto.selections.pick.value == [{"number": trial.number}]
    details = monitor.details_html
    assert f"trial {trial.number}" in details
    for name, value in trial.params.items():
        assert f">{name}</th>" in details and f">{value}</td>" in details
    assert "on the front" in details and "sample outputs" in details
    answers = dx.sql("select outputs from executions where trial_id = ? and kind = 'program'",
                     [trial.trial_id])["outputs"]
    # the shown outputs are this trial's: compare answer values (the JSON's spacing may
    # differ between the table and the query's text)
    values = [v for a in answers if a and (v := json.loads(a).get("answer")) is not None]
    assert any(f"&quot;answer&quot;: &quot;{html.escape(str(v))}&quot;" in details
               or f"&quot;answer&quot;:&quot;{html.escape(str(v))}&quot;" in details
               for v in values), (details[-600:], values)
    # a double click (or a re-render) empties the selection: the details stay
    monitor.pareto._vl_selections = {"pick": {"value": None, "store": []}}
    assert monitor.selected == trial.number and monitor.details_html == details
    assert "not in run" in monitor.show_trial(999)


def test_reattaching_to_a_finished_run_and_for_run_from_the_store(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dspex_lab.jupyter.monitor import RunMonitor
    from dspex_lab.optimize import _run as run_module

    run = _run(6, concurrency=2).wait(60)
    again = RunMonitor(run)  # e.g. the cell re-run after the end
    assert again.n_points == len(_plotted(run)) == 6
    assert not again.attached and again.subscription is None
    assert RunMonitor.for_run(run.run_id)._data.live

    # a later kernel: the run is not in this process any more, only in the store
    monkeypatch.delitem(run_module._REGISTRY, run.run_id)
    stored = RunMonitor.for_run(run.run_id)
    assert not stored._data.live and stored.n_points == 6
    assert {r["number"] for r in stored.pareto.spec["datasets"]["trials"]} == _plotted(run)
    assert stored.stop_button.disabled and "from the store" in stored.header.value
    assert stored._data.front == {t.number for t in run.front_trials()}
    assert stored.progress_text.startswith("6 of 6 trials")
    number = next(iter(stored._data.front))
    _click(stored, number)
    assert "sample outputs" in stored.details_html
    stored.refresh()
    assert stored.n_points == 6
    with pytest.raises(dx.DspexError, match="no run"):
        RunMonitor.for_run("run-nope")


def test_a_newer_monitor_takes_over_and_close_unsubscribes(store: Path) -> None:
    from dspex_lab.jupyter.monitor import RunMonitor

    run = _run(500)
    first = RunMonitor(run)
    sub = first.subscription
    assert first.attached and sub in events.BUS.subscriptions
    second = RunMonitor(run)  # re-running the cell
    assert not first.attached and first.subscription is None
    assert sub not in events.BUS.subscriptions and "detached" in first.status.value
    assert second.attached and second.subscription in events.BUS.subscriptions
    thread = second._thread
    live = second.subscription
    second.close()
    assert live not in events.BUS.subscriptions and second.subscription is None
    assert thread is not None and not thread.is_alive()
    run.stop()
    run.wait(30)


def test_monitor_charts_need_no_network() -> None:
    import altair as alt

    from dspex_lab.jupyter._offline import REMOTE_IMPORT, offline_chart_class

    chart_class = offline_chart_class()
    assert not REMOTE_IMPORT.search(chart_class._esm)
    assert "setDataValue" in chart_class._esm  # the in-place data update path
    # the user's own charts are left as they were
    assert REMOTE_IMPORT.search(alt.JupyterChart._esm)


def test_the_html_fallback_for_readers_without_widgets(store: Path) -> None:
    from dspex_lab.jupyter.monitor import RunMonitor

    run = _tiny_run()
    bundle = RunMonitor(run)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert run.run_id in bundle["text/html"] and "front" in bundle["text/html"]


_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

_RENDER = """
async ([src, state, updates]) => {
  const url = URL.createObjectURL(new Blob([src], {type: 'text/javascript'}));
  const mod = await import(url);
  const handlers = {};
  const model = {
    state, get(k) { return this.state[k]; }, set(k, v) { this.state[k] = v; },
    on(evt, cb) { (handlers[evt] = handlers[evt] || []).push(cb); }, off() {},
    save_changes() {},
  };
  window.__model = model;
  const el = document.getElementById('root');
  await mod.default.render({model, el});
  const count = () => el.querySelectorAll('g.mark-symbol.role-mark path').length;
  const before = count();
  el.querySelector('svg').setAttribute('data-first', 'yes');
  for (const update of updates) {
    model.set('_py_to_js_updates', update);
    for (const cb of handlers['change:_py_to_js_updates'] || []) await cb(update);
  }
  await new Promise(r => setTimeout(r, 100));
  return {before, after: count(), same: el.querySelector('svg').getAttribute('data-first')};
}
"""


@pytest.mark.browser
@pytest.mark.skipif(_CHROMIUM is None, reason="needs a system Chromium")
def test_the_live_chart_renders_offline_and_updates_in_place(store: Path) -> None:
    """The monitor's own widget state and data pushes, run by the bundled module in
    Chromium: it renders with every request refused, a push changes the points without a
    new view, and a click produces the selection the monitor reads."""
    sync_api = pytest.importorskip("playwright.sync_api")
    from dspex_lab.jupyter.monitor import RunMonitor

    run = _run(8)
    monitor = RunMonitor(run)
    pushes: list[Any] = []
    monitor.pareto.observe(lambda c: pushes.append(c["new"]), names=["_py_to_js_updates"])
    state = {k: getattr(monitor.pareto, k) for k in (
        "spec", "debounce_wait", "max_wait", "_vl_selections", "_params", "_js_watch_plan")}
    state["embed_options"] = {"renderer": "svg", "actions": False}
    first = len(state["spec"]["datasets"]["trials"])
    assert monitor.wait(60)
    assert pushes and monitor.n_points == 8
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page()
            page.on("request", lambda r: requests.append(r.url))
            page.route("**/*", lambda route: route.abort())
            page.set_content("<html><body><div id='root'></div></body></html>")
            result = page.evaluate(_RENDER, [monitor.pareto._esm, state, pushes])
            assert result == {"before": first, "after": 8, "same": "yes"}, result
            spots = [(r["cost"], r["accuracy"]) for r in monitor._rows]
            index = next(i for i, spot in enumerate(spots) if spots.count(spot) == 1)
            target = monitor._rows[index]["number"]
            box = page.locator("g.mark-symbol.role-mark path").nth(index).bounding_box()
            assert box is not None
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            page.wait_for_timeout(300)
            selections = page.evaluate("() => window.__model.state._vl_selections")
        finally:
            browser.close()
    assert requests == []
    monitor.pareto._vl_selections = selections  # what the kernel receives from the view
    assert monitor.selected == target
