"""Charts, static images and run comparisons, on real runs against the simulator.

The Pareto chart's data must hold exactly the completed trials with the run's own
front marked; files must be valid and offline; the incremental front tracker must
agree with ``Run.front_trials()`` and ``Run.hypervolume_history()``; a run read back
from the store must draw the same rows as the live one.
"""

from __future__ import annotations

import random
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

import dspex_lab as dx
from dspex_lab.optimize import Run, dominates

V = dx.variables


@pytest.fixture()
def store(tmp_path: Path, sim_url: str) -> Path:
    path = tmp_path / "x.duckdb"
    dx.configure(store=path)
    return path


def _tiny_run(trials: int = 4, **kwargs: Any) -> Run:
    space = dx.Space([V.module(["predict", "cot"]), V.model(["sim/tiny", "sim/small"])])
    run = dx.optimize(dx.Predict("question -> answer", model="sim/small"), space,
                      valset=dx.datasets.load("sim-math").val[:10],
                      budget=dx.Budget(trials=trials), **kwargs)
    return run.wait(60)


def _wider_run(trials: int = 12, seed: int = 1) -> Run:
    space = dx.Space([V.module(["predict", "cot"]),
                      V.model(["sim/tiny", "sim/small", "sim/medium"]), V.temperature(0.0, 1.0)])
    run = dx.optimize(dx.Predict("question -> answer", model="sim/small"), space,
                      valset=dx.datasets.load("sim-math").val[:20],
                      budget=dx.Budget(trials=trials), strategy="random", seed=seed,
                      warm_start=False)
    return run.wait(60)


def _rows(spec: dict[str, Any], name: str = "trials") -> list[dict[str, Any]]:
    """The rows a standalone chart carries (inline, under the dataset name it reads)."""
    assert spec["data"]["name"] == name, spec["data"].get("name")
    rows: list[dict[str, Any]] = spec["data"]["values"]
    return rows


def test_the_pareto_chart_holds_the_completed_trials_and_marks_the_front(store: Path) -> None:
    from dspex_lab.jupyter.charts import pareto_chart

    run = _tiny_run()
    spec = pareto_chart(run).to_dict()
    rows = _rows(spec)
    completed = {t.number: t for t in run.completed()}
    assert completed and {r["number"] for r in rows if r["state"] == "completed"} == set(
        completed)
    assert {r["number"] for r in rows if r["front"]} == {t.number for t in run.front_trials()}
    for r in rows:
        t = completed[r["number"]]
        assert r["cost"] == pytest.approx(t.values["cost"])
        assert r["accuracy"] == pytest.approx(t.values["accuracy"])
        assert r["param_model"] == t.params["model"] and r["param_module"] == t.params["module"]
    # the dashed staircase: exactly the trials no other beats on cost and accuracy both
    points = {n: (t.values["cost"], -t.values["accuracy"]) for n, t in completed.items()}
    frontier = {n for n, p in points.items()
                if not any(dominates(q, p) for m, q in points.items() if m != n)}
    assert {r["number"] for r in rows if r["frontier"]} == frontier
    # tooltips name the variables and the values; a click selects by trial number
    layer = spec["layer"][1]
    tips = {t.get("title", t["field"]) for t in layer["encoding"]["tooltip"]}
    assert {"model", "module", "cost", "accuracy", "latency_s", "trial"} <= tips
    assert spec["params"][0]["name"] == "pick"  # Altair hoists a layer's params
    assert spec["params"][0]["select"]["fields"] == ["number"]
    assert spec["params"][0]["views"] == [layer["name"]]
    assert spec["layer"][0]["transform"] == [{"filter": "datum.frontier"}]
    # colours by model, over the space's declared models: stable as trials arrive
    assert layer["encoding"]["color"]["field"] == "param_model"
    assert layer["encoding"]["color"]["scale"]["domain"] == ["sim/tiny", "sim/small"]


def test_the_trials_dataset_is_a_top_level_vega_dataset(store: Path) -> None:
    """The monitor replaces the rows of the Vega dataset ``trials`` in place; that only
    works if Vega-Lite compiles the named dataset to a top-level Vega dataset."""
    import vl_convert as vlc

    from dspex_lab.jupyter.charts import hypervolume_chart, pareto_chart

    run = _tiny_run()
    for chart, name in ((pareto_chart(run), "trials"), (hypervolume_chart(run), "hypervolume")):
        vega = vlc.vegalite_to_vega(chart.to_dict())
        data = {d["name"]: d for d in vega["data"]}
        assert name in data and "values" in data[name], list(data)


def test_the_two_charts_combine_into_one_valid_figure(store: Path) -> None:
    """``pareto_chart(run) | hypervolume_chart(run)`` (and ``&``, ``alt.hconcat``) is a
    valid Vega-Lite spec whose datasets keep their names and rows."""
    import altair as alt
    import vl_convert as vlc

    from dspex_lab.jupyter.charts import hypervolume_chart, pareto_chart

    run = _tiny_run()
    expected = {"trials": len(_rows(pareto_chart(run).to_dict())),
                "hypervolume": len(_rows(hypervolume_chart(run).to_dict(), "hypervolume"))}
    for combined in (pareto_chart(run) | hypervolume_chart(run),
                     pareto_chart(run) & hypervolume_chart(run),
                     alt.hconcat(pareto_chart(run), hypervolume_chart(run))):
        spec = combined.to_dict()  # validates against the Vega-Lite schema
        vega = vlc.vegalite_to_vega(spec)
        data = {d["name"]: d for d in vega["data"]}
        assert {name: len(data[name]["values"]) for name in expected} == expected


def test_pruned_trials_are_optional_and_drawn_apart(store: Path) -> None:
    from dspex_lab.jupyter.charts import pareto_chart

    run = _wider_run(8)
    table = run.trials
    front = {t.number for t in run.front_trials()}
    victim = next(n for n in table["number"] if n not in front)
    table.loc[table["number"] == victim, "state"] = "pruned"
    table.loc[table["number"] == victim, "fidelity"] = 0.2
    spec = pareto_chart(table).to_dict()
    rows = {r["number"]: r for r in _rows(spec)}
    assert rows[victim]["state"] == "pruned" and not rows[victim]["front"]
    assert not rows[victim]["frontier"]
    shape = spec["layer"][1]["encoding"]["shape"]
    assert shape["scale"] == {"domain": ["completed", "pruned", "failed"],
                              "range": ["circle", "triangle-up", "cross"]}
    assert spec["layer"][1]["encoding"]["opacity"]["condition"][0]["test"] == \
        "datum.state == 'completed'"
    hidden = _rows(pareto_chart(table, show_incomplete=False).to_dict())
    assert victim not in {r["number"] for r in hidden}
    assert {r["number"] for r in hidden} == {n for n, r in rows.items()
                                             if r["state"] == "completed"}
    assert len(hidden) < len(rows)


def test_the_frontier_sweep_equals_the_pairwise_definition() -> None:
    from dspex_lab.jupyter.charts import _frontier

    rng = random.Random(7)
    for _ in range(300):
        n = rng.randint(0, 30)
        grid = rng.choice([3, 10, 1000])  # small grids make ties and duplicates common
        points = [(float(rng.randrange(grid)), float(rng.randrange(grid))) for _ in range(n)]
        expected = {i for i, p in enumerate(points)
                    if not any(dominates(q, p) for q in points)}
        assert set(_frontier(points)) == expected, points


def test_axes_and_colour_are_checked(store: Path) -> None:
    from dspex_lab.jupyter.charts import pareto_chart

    run = _tiny_run()
    spec = pareto_chart(run, x="latency", y="accuracy", color="module").to_dict()
    enc = spec["layer"][1]["encoding"]
    assert enc["x"]["field"] == "latency_s" and enc["color"]["field"] == "param_module"
    with pytest.raises(ValueError, match="not an objective"):
        pareto_chart(run, x="speed")
    # a run without a cost objective: the default axis falls back to one it has
    fast = _tiny_run(objectives=["accuracy", "latency_s"])
    enc = pareto_chart(fast).to_dict()["layer"][1]["encoding"]
    assert enc["x"]["field"] == "latency_s" and enc["y"]["field"] == "accuracy"
    with pytest.raises(ValueError, match="not a variable"):
        pareto_chart(run, color="adapter")


def test_png_svg_and_html_files_are_valid_and_offline(store: Path, tmp_path: Path) -> None:
    from dspex_lab.jupyter.charts import hypervolume_chart, pareto_chart, save_chart

    run = _tiny_run()
    chart = pareto_chart(run)
    png = save_chart(chart, tmp_path / "front.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = save_chart(hypervolume_chart(run), tmp_path / "hv.svg")
    root = ET.fromstring(svg.read_text())
    assert root.tag.endswith("svg")
    page = save_chart(chart, tmp_path / "front.html").read_text()
    scripts = re.findall(r"<script\b[^>]*>", page)
    assert scripts and not any("src=" in s for s in scripts), scripts
    assert not re.search(r"""src=["']https?://""", page)
    assert "vegaEmbed(" in page and len(page) > 300_000  # the libraries are inline
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.html"):
        save_chart(chart, tmp_path / "front.pdf")


def test_run_figures_and_the_static_report(store: Path, tmp_path: Path) -> None:
    from IPython.display import SVG, Image

    from dspex_lab.jupyter.charts import run_figures, static_report

    run = _tiny_run()
    image = run_figures(run)
    assert isinstance(image, Image) and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    vector = run_figures(run.run_id, format="svg")
    assert isinstance(vector, SVG) and "<svg" in vector.data
    page = static_report(run, tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text() == page
    assert "data:image/png;base64," in page and "<script" not in page
    assert run.run_id in page and "Pareto front" in page


def test_the_hypervolume_chart_follows_the_runs_history(store: Path) -> None:
    from dspex_lab.jupyter.charts import hypervolume_chart

    run = _wider_run(10)
    rows = _rows(hypervolume_chart(run).to_dict(), "hypervolume")
    history = run.hypervolume_history()
    assert [r["trial"] for r in rows] == list(history["trial"])
    assert [r["hypervolume"] for r in rows] == pytest.approx(list(history["hypervolume"]))
    assert rows[-1]["relative"] == pytest.approx(1.0)


def test_the_incremental_tracker_agrees_with_the_run_in_any_arrival_order(
        store: Path) -> None:
    from dspex_lab.jupyter._data import FrontTracker, ObjectiveAxis

    run = _wider_run(14, seed=5)
    history = run.hypervolume_history()
    objectives = [ObjectiveAxis(o.name, o.maximize) for o in run.objectives]
    trials = run.trial_list()
    rng = random.Random(0)
    for _ in range(5):
        order = list(trials)
        rng.shuffle(order)
        tracker = FrontTracker(objectives)
        while order:  # batches, as a monitor sees them
            k = rng.randint(1, 4)
            batch, order = order[:k], order[k:]
            tracker.update(batch)
            tracker.history(run.started_at)
        # a trial seen twice changes nothing
        assert not tracker.update(trials)
        assert tracker.front == {t.number for t in run.front_trials()}
        got = tracker.history(run.started_at)
        assert [g["trial"] for g in got] == list(history["trial"])
        assert [g["hypervolume"] for g in got] == pytest.approx(list(history["hypervolume"]))
        assert tracker.hypervolume() == pytest.approx(run.hypervolume())


def test_a_run_read_back_from_the_store_draws_the_same(store: Path) -> None:
    from dspex_lab.jupyter._data import from_run, from_store
    from dspex_lab.jupyter.charts import ParetoLayout, hypervolume_rows

    run = _wider_run(8)
    live, stored = from_run(run), from_store(run.run_id)
    assert not stored.live and stored.state == run.state
    assert stored.spent == pytest.approx(run.spent) and stored.lm_calls == run.lm_calls
    assert stored.max_trials == 8
    layout = ParetoLayout(live, "cost", "accuracy", None, True)
    a, b = layout.rows(live), layout.rows(stored)
    assert [r["number"] for r in a] == [r["number"] for r in b]
    for x, y in zip(a, b, strict=True):
        assert x["front"] == y["front"] and x["config"] == y["config"]
        assert x["cost"] == pytest.approx(y["cost"])
    assert [r["hypervolume"] for r in hypervolume_rows(live)] == pytest.approx(
        [r["hypervolume"] for r in hypervolume_rows(stored)], rel=1e-6)


def test_compare_runs_side_by_side(store: Path) -> None:
    from dspex_lab.jupyter.reprs import RunComparison, compare_runs

    a = _tiny_run(strategy="grid")
    b = _wider_run(6)
    table = compare_runs(a, b.run_id)
    assert isinstance(table, RunComparison)
    frame = table.frame
    assert list(frame["run"]) == [a.run_id, b.run_id]
    assert list(frame["strategy"]) == ["grid", "random"]
    assert list(frame["front"]) == [len(a.front_trials()), len(b.front_trials())]
    assert list(frame["spent"]) == pytest.approx([a.spent, b.spent])
    best_b = max(t.values["accuracy"] or 0.0 for t in b.completed())
    assert frame["best accuracy"][1] == pytest.approx(best_b)
    cheapest = min(a.front_trials(), key=lambda t: t.values["cost"] or 0.0)
    assert frame["cheapest cost"][0] == pytest.approx(cheapest.values["cost"])
    # one reference point for both: the same run twice measures the same
    twice = compare_runs(a, a).frame["hypervolume"]
    assert twice[0] == pytest.approx(twice[1]) and twice[0] > 0
    page = table._repr_html_()
    assert a.run_id in page and b.run_id in page and "<table" in page
    with pytest.raises(ValueError):
        compare_runs()


def test_importing_the_notebook_layer_loads_no_heavy_library() -> None:
    code = ("import sys, dspex_lab, dspex_lab.jupyter; "
            "print(sorted(m for m in ('altair', 'ipywidgets', 'IPython', 'vl_convert', "
            "'anywidget') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
