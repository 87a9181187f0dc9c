"""Altair charts of a run: its Pareto front and its hypervolume over time, and files of them.

- :func:`pareto_chart`: every completed trial on two objectives; the run's Pareto
  front (over *all* its objectives) drawn large and outlined, and the trade-off
  curve of the two objectives shown as a dashed staircase; pruned (and failed,
  when they have values) trials faded, in their own shapes; tooltips with the
  configuration and the values. Clicking a point selects it (the ``pick``
  selection, which the run monitor reads).
- :func:`hypervolume_chart`: how much of today's front the search had found after
  each completed trial.
- :func:`save_chart`: ``.png``, ``.svg`` or ``.html`` through vl-convert, offline:
  the HTML embeds vega, vega-lite and vega-embed (no CDN).
- :func:`run_figures`: both charts as one static image, for notebooks read where
  widgets and JavaScript do not run (GitHub, nbviewer, exported PDFs).
- :func:`static_report`: a self-contained HTML page of a run.

Each chart reads its rows from a *named dataset* (``trials``, ``hypervolume``),
so a live chart can swap the rows without rebuilding the chart: that is how the
run monitor updates (see :mod:`dspex_lab.jupyter.monitor`). Everything accepts
a :class:`~dspex_lab.optimize.Run`, a run id (a run of this kernel, else the
store's record) or, for the Pareto chart, a ``run.trials``-shaped DataFrame.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import altair as alt

from dspex_lab.jupyter import _format
from dspex_lab.jupyter._data import (
    DEFAULT_OBJECTIVES,
    FrontTracker,
    ObjectiveAxis,
    RunData,
    as_run_data,
)
from dspex_lab.optimize import TrialInfo

if TYPE_CHECKING:
    import pandas as pd
    from IPython.display import SVG, Image

__all__ = ["hypervolume_chart", "pareto_chart", "run_figures", "save_chart", "static_report"]

TRIALS = "trials"
HYPERVOLUME = "hypervolume"
PICK = "pick"
"""Names of the two datasets and of the point selection (the monitor relies on them)."""

_C = TypeVar("_C", alt.Chart, alt.LayerChart)

STATES = ("completed", "pruned", "failed")
_SHAPES = ("circle", "triangle-up", "cross")
_NUMERIC_COLUMNS = ("spent", "lm_calls", "n_examples", "duration_s", "fidelity")
_TITLES = {"cost": "cost ($ per example)", "latency_s": "latency (s per example)",
           "spent": "dollars paid", "duration_s": "trial duration (s)"}
_ALIASES = {"latency": "latency_s", "dollars": "cost", "price": "cost"}


# -- rows -------------------------------------------------------------------------------

def field_name(name: str) -> str:
    """A Vega-Lite-safe field name (``.`` and ``[`` mean nested access there)."""
    return re.sub(r"[^0-9A-Za-z_]", "_", name)


def _param_fields(names: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in names:
        key = base = "param_" + field_name(name)
        i = 2
        while key in used:
            key, i = f"{base}_{i}", i + 1
        used.add(key)
        out[name] = key
    return out


def _plain(v: Any) -> Any:
    """A JSON scalar for the chart (lists and dicts become their JSON text)."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    return json.dumps(v, default=str)


def _resolve(name: str, data: RunData, default: str | None = None) -> str:
    """The column an axis name means. ``default``: the parameter's default, which falls
    back to the first objective of the same direction when the run lacks it (a run
    optimizing accuracy and latency only still gets a chart)."""
    names = {o.name for o in data.objectives} | set(_NUMERIC_COLUMNS)
    if name in names:
        return name
    alias = _ALIASES.get(name)
    if alias in names:
        return alias
    if name == default:
        maximize = name == "accuracy"
        for o in data.objectives:
            if o.maximize == maximize:
                return o.name
    raise ValueError(f"{name!r} is not an objective or numeric column of run {data.run_id}; "
                     f"choose from {', '.join(sorted(names))}")


def _maximize(name: str, data: RunData) -> bool:
    for o in data.objectives:
        if o.name == name:
            return o.maximize
    return False


def _trial_value(t: TrialInfo, name: str) -> float | None:
    v = t.values.get(name) if name not in _NUMERIC_COLUMNS else getattr(t, name, None)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


class ParetoLayout:
    """What a Pareto chart shows (axes, colour, fields), fixed when the chart is made, so
    later rows for the same chart only fill in values."""

    def __init__(self, data: RunData, x: str, y: str, color: str | None,
                 show_incomplete: bool) -> None:
        self.x, self.y = _resolve(x, data, "cost"), _resolve(y, data, "accuracy")
        self.x_max, self.y_max = _maximize(self.x, data), _maximize(self.y, data)
        params = list(data.param_names)
        for t in data.trials:
            params.extend(k for k in t.params if k not in params)
        self.params = _param_fields(params)
        self.objectives = [o.name for o in data.objectives]
        self.show_incomplete = show_incomplete
        if color is None:
            color = "model" if "model" in self.params else "state"
        if color.startswith("param_") and color[6:] in self.params:
            color = color[6:]
        # a fixed domain keeps each value's colour when new values appear in a live chart
        self.color_domain: list[Any] | None = None
        if color == "state":
            self.color_field, self.color_title = "state", "state"
            self.color_domain = list(STATES)
        elif color in self.params:
            self.color_field, self.color_title = self.params[color], color
            seen = [t.params.get(color) for t in data.trials if color in t.params]
            declared = list(data.param_choices.get(color, ()))
            domain = [_plain(v) for v in [*declared, *seen]]
            self.color_domain = list(dict.fromkeys(v for v in domain if v is not None))
        else:
            raise ValueError(f"color {color!r} is not a variable of run {data.run_id}; "
                             f"choose from {', '.join(['state', *self.params])}")
        self.value_fields = {name: field_name(name) for name in
                             dict.fromkeys([*self.objectives, self.x, self.y])}

    def rows(self, data: RunData) -> list[dict[str, Any]]:
        """One JSON-ready row per plotted trial (completed, and pruned/failed ones with
        values when ``show_incomplete``), with ``front`` (on the run's Pareto front) and
        ``frontier`` (on the two plotted objectives' trade-off curve)."""
        front = data.front
        keep = STATES if self.show_incomplete else ("completed",)
        rows: list[dict[str, Any]] = []
        plotted: list[tuple[tuple[float, float], int]] = []
        for t in data.trials:
            if t.state not in keep:
                continue
            xv, yv = _trial_value(t, self.x), _trial_value(t, self.y)
            if xv is None or yv is None:
                continue
            row: dict[str, Any] = {
                "number": t.number, "state": t.state, "source": t.source,
                "fidelity": round(t.fidelity, 4), "reason": t.reason or "",
                "front": t.number in front, "frontier": False,
                "config": _format.config_text(t.params)}
            for name, key in self.value_fields.items():
                row[key] = _trial_value(t, name)
            for name, key in self.params.items():
                row[key] = _plain(t.params.get(name))
            rows.append(row)
            if t.state == "completed":
                plotted.append(((-xv if self.x_max else xv, -yv if self.y_max else yv),
                                len(rows) - 1))
        for index in _frontier([point for point, _ in plotted]):
            rows[plotted[index][1]]["frontier"] = True
        return rows

    def tooltip(self) -> list[alt.Tooltip]:
        tips = [alt.Tooltip("number:Q", title="trial"), alt.Tooltip("state:N")]
        for name, key in self.value_fields.items():
            fmt = "$.3~g" if name == "cost" else ".4~g"
            tips.append(alt.Tooltip(f"{key}:Q", title=name, format=fmt))
        tips += [alt.Tooltip(f"{key}:N", title=name) for name, key in self.params.items()]
        tips += [alt.Tooltip("fidelity:Q", format=".0%"), alt.Tooltip("front:N",
                                                                      title="on the front"),
                 alt.Tooltip("reason:N")]
        return tips


def _frontier(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the 2-D points no other point dominates (minimizing both; equal points
    are all kept), by one sweep in (x, y) order: O(n log n) on every redraw, where the
    pairwise test would cost a monitor of a few hundred trials most of a core."""
    order = sorted(range(len(points)), key=lambda i: points[i])
    keep: list[int] = []
    best = math.inf  # the lowest y of the distinct points seen so far (all with x <= this x)
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and points[order[j]] == points[order[i]]:
            j += 1
        y = points[order[i]][1]
        if y < best:
            keep.extend(order[i:j])
        best = min(best, y)
        i = j
    return keep


def _axis(name: str, key: str, maximize: bool, log: bool) -> dict[str, Any]:
    arrow = "↑ better" if maximize else "↓ better"
    title = f"{_TITLES.get(name, name)} ({arrow})"
    fmt = "$.2~g" if name in ("cost", "spent") else "~g"
    scale = alt.Scale(type="log") if log else alt.Scale(zero=False, nice=True)
    return {"shorthand": f"{key}:Q", "title": title, "scale": scale, "axis": alt.Axis(format=fmt)}


def pareto_layers(layout: ParetoLayout, *, log_x: bool = False, width: int = 420,
                  height: int = 300) -> alt.LayerChart:
    """The Pareto chart without its data (it reads the named dataset ``trials``)."""
    pick = alt.selection_point(name=PICK, fields=["number"], on="click", clear="dblclick")
    base = alt.Chart(alt.NamedData(name=TRIALS))
    xk, yk = layout.value_fields[layout.x], layout.value_fields[layout.y]
    x = alt.X(**_axis(layout.x, xk, layout.x_max, log_x))
    y = alt.Y(**_axis(layout.y, yk, layout.y_max, False))
    points = base.mark_point(filled=True).encode(
        x=x, y=y,
        color=alt.Color(f"{layout.color_field}:N", title=layout.color_title,
                        scale=alt.Scale(domain=layout.color_domain) if layout.color_domain
                        else alt.Undefined),
        shape=alt.Shape("state:N", title="state",
                        scale=alt.Scale(domain=list(STATES), range=list(_SHAPES))),
        size=alt.when("datum.front").then(alt.value(150)).otherwise(alt.value(55)),
        opacity=alt.when("datum.state == 'completed'").then(alt.value(0.95))
        .otherwise(alt.value(0.35)),
        stroke=alt.when(pick, empty=False).then(alt.value("#e4572e"))
        .when("datum.front").then(alt.value("#222222")).otherwise(alt.value("transparent")),
        strokeWidth=alt.when(pick, empty=False).then(alt.value(3))
        .when("datum.front").then(alt.value(1.5)).otherwise(alt.value(0)),
        tooltip=layout.tooltip(),
    ).add_params(pick)
    # the staircase bounding what the two plotted objectives can reach together
    line = base.transform_filter("datum.frontier").mark_line(
        interpolate="step-before" if layout.x_max else "step-after",
        color="#666666", strokeDash=[4, 3], strokeWidth=1.2).encode(
        x=alt.X(f"{xk}:Q"), y=alt.Y(f"{yk}:Q"), order=alt.Order(f"{xk}:Q"))
    chart = alt.layer(line, points).properties(
        width=width, height=height,
        title=alt.TitleParams("Pareto front", subtitle=[
            "outlined: on the run's front (all objectives); dashed: the trade-off of "
            "these two"], anchor="start", fontSize=13, subtitleFontSize=10))
    return cast(alt.LayerChart, chart)


def _frame_number(rec: Mapping[Any, Any], key: str, default: float = 0.0) -> float:
    v = rec.get(key)
    if v is None or isinstance(v, bool) or not isinstance(v, int | float) or (
            isinstance(v, float) and math.isnan(v)):
        return default
    return float(v)


def _trials_from_frame(frame: pd.DataFrame) -> RunData:
    """A ``run.trials``-shaped DataFrame as RunData (directions: accuracy up, the rest down)."""
    names = [o for o in DEFAULT_OBJECTIVES if o.name in frame.columns]
    extra = [c for c in frame.columns if c not in {o.name for o in names} and c not in (
        "number", "state", "reason", "source", "accuracy_low", "accuracy_high", "trial_id",
        *_NUMERIC_COLUMNS) and not c.startswith("param_")]
    objectives = tuple(names) + tuple(
        ObjectiveAxis(c, False) for c in extra
        if str(frame[c].dtype).startswith(("float", "int")))
    trials = []
    for i, rec in enumerate(frame.to_dict("records")):
        trials.append(TrialInfo(
            number=int(rec.get("number", i)), trial_id=str(rec.get("trial_id", i)),
            params={str(k)[6:]: v for k, v in rec.items() if str(k).startswith("param_")},
            config={}, state=str(rec.get("state", "completed")),
            values={o.name: (None if math.isnan(v := _frame_number(rec, o.name, math.nan))
                             else v) for o in objectives},
            reason=rec.get("reason") if isinstance(rec.get("reason"), str) else None,
            fidelity=_frame_number(rec, "fidelity", 1.0), spent=_frame_number(rec, "spent"),
            lm_calls=int(_frame_number(rec, "lm_calls")),
            n_examples=int(_frame_number(rec, "n_examples")),
            ended_at=float(i), source=str(rec.get("source") or "sampler")))
    tracker = FrontTracker(objectives)
    tracker.update(trials)
    return RunData(run_id="(table)", name=None, state="finished", stop_reason=None,
                   strategy=None, strategy_reason=None, objectives=objectives, trials=trials,
                   tracker=tracker, spent=sum(t.spent for t in trials),
                   lm_calls=sum(t.lm_calls for t in trials), budget={}, max_trials=None,
                   started_at=0.0, ended_at=float(len(trials)), live=False)


def _data(run_or_trials: Any) -> RunData:
    import pandas as pd

    if isinstance(run_or_trials, pd.DataFrame):
        return _trials_from_frame(run_or_trials)
    return as_run_data(run_or_trials)


# -- public charts ------------------------------------------------------------------------

def pareto_chart(run_or_trials: Any, x: str = "cost", y: str = "accuracy",
                 color: str | None = None, *, show_incomplete: bool = True,
                 log_x: bool = False, width: int = 420, height: int = 300) -> alt.LayerChart:
    """The run's trials on two objectives (``x``, ``y``: objective names such as
    ``cost``, ``accuracy``, ``latency_s``, or ``spent``/``duration_s``), coloured by a
    variable (``color``: default ``model`` when it varies, else the trial state).

    The run's Pareto front over all its objectives is drawn large and outlined; the
    dashed staircase joins the trials no other trial beats on *these two* objectives.
    ``show_incomplete``: also pruned trials (at the fidelity they reached) and failed ones
    that have values, faded and in their own shapes."""
    data = _data(run_or_trials)
    layout = ParetoLayout(data, x, y, color, show_incomplete)
    chart = pareto_layers(layout, log_x=log_x, width=width, height=height)
    return _carrying(chart, TRIALS, layout.rows(data))


def _carrying(chart: _C, name: str, rows: list[dict[str, Any]]) -> _C:
    """``chart`` with its rows inline under the dataset name its layers read.

    Inline and named rather than in a top-level ``datasets`` entry: Vega still gets a
    dataset called ``name`` (the dashboard and the browser tests read it by name), and
    the chart stays a valid part of a bigger one (``pareto_chart(run) |
    hypervolume_chart(run)``), where a ``datasets`` entry is only allowed at the top."""
    chart.data = alt.InlineData(values=rows, name=name)
    for layer in getattr(chart, "layer", None) or ():
        layer.data = alt.Undefined  # every layer reads the chart's rows
    return chart


def hypervolume_rows(data: RunData) -> list[dict[str, Any]]:
    """Hypervolume after each completed trial, raw and as a share of today's."""
    history = data.tracker.history(data.started_at)
    top = max((h["hypervolume"] for h in history), default=0.0)
    return [{"completed": h["completed"], "trial": h["trial"],
             "elapsed_s": round(h["elapsed_s"], 3), "hypervolume": h["hypervolume"],
             "relative": h["hypervolume"] / top if top > 0 else 0.0} for h in history]


def hypervolume_layers(*, width: int = 300, height: int = 300) -> alt.Chart:
    """The hypervolume chart without its data (it reads the named dataset ``hypervolume``)."""
    chart = alt.Chart(alt.NamedData(name=HYPERVOLUME)).mark_line(
        interpolate="step-after", point=True, color="#4c78a8").encode(
        x=alt.X("completed:Q", title="completed trials", axis=alt.Axis(tickMinStep=1)),
        y=alt.Y("relative:Q", title="hypervolume (share of today's)",
                scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format=".0%")),
        tooltip=[alt.Tooltip("completed:Q", title="completed"),
                 alt.Tooltip("trial:Q", title="trial"),
                 alt.Tooltip("elapsed_s:Q", title="elapsed (s)", format=".1f"),
                 alt.Tooltip("hypervolume:Q", format=".4~g"),
                 alt.Tooltip("relative:Q", title="share", format=".1%")],
    ).properties(width=width, height=height, title=alt.TitleParams(
        "Search progress", subtitle=["hypervolume of the front against today's "
                                     "reference point"], anchor="start", fontSize=13,
        subtitleFontSize=10))
    return cast(alt.Chart, chart)


def hypervolume_chart(run: Any, *, width: int = 300, height: int = 300) -> alt.Chart:
    """How much of today's front the search had found after each completed trial (the
    hypervolume, all against today's reference point, as a share of today's)."""
    data = as_run_data(run)
    return _carrying(hypervolume_layers(width=width, height=height), HYPERVOLUME,
                     hypervolume_rows(data))


def figure(run: Any, x: str = "cost", y: str = "accuracy", color: str | None = None, *,
           show_incomplete: bool = True) -> alt.HConcatChart:
    """Both charts side by side, one top-level spec (what :func:`run_figures` renders)."""
    data = _data(run)
    layout = ParetoLayout(data, x, y, color, show_incomplete)
    return alt.hconcat(pareto_layers(layout), hypervolume_layers()).properties(
        datasets={TRIALS: layout.rows(data), HYPERVOLUME: hypervolume_rows(data)},
        title=alt.TitleParams(_run_title(data), anchor="start", fontSize=14))


def _run_title(data: RunData) -> str:
    name = f" ({data.name})" if data.name else ""
    return f"{data.run_id}{name}: {data.state}, {len(data.trials)} trials"


# -- files and static images --------------------------------------------------------------

def save_chart(chart: Any, path: str | Path, *, scale: float = 2.0) -> Path:
    """Write ``chart`` (an Altair chart or a ``JupyterChart``) to ``.png``, ``.svg`` or
    ``.html``, without network access: images are rendered by vl-convert, and the HTML
    page carries vega, vega-lite and vega-embed inline (no CDN script)."""
    target = Path(path)
    chart = getattr(chart, "chart", None) or chart
    suffix = target.suffix.lower()
    if suffix == ".html":
        chart.save(str(target), format="html", inline=True)
    elif suffix == ".png":
        chart.save(str(target), format="png", scale_factor=scale)
    elif suffix == ".svg":
        chart.save(str(target), format="svg")
    else:
        raise ValueError(f"save_chart writes .png, .svg or .html, not {target.suffix!r}")
    return target


def run_figures(run: Any, format: str = "png", *, x: str = "cost", y: str = "accuracy",
                color: str | None = None, scale: float = 2.0) -> Image | SVG:
    """The Pareto and hypervolume charts as a static image (``png``: an
    ``IPython.display.Image``; ``svg``: an ``IPython.display.SVG``).

    Widgets and JavaScript do not run where notebooks are *read* (GitHub, nbviewer, a
    PDF export): end a notebook with ``run_figures(run)`` and the saved output shows the
    result there."""
    from IPython.display import SVG, Image

    chart = figure(run, x, y, color)
    if format == "png":
        buf = io.BytesIO()
        chart.save(buf, format="png", scale_factor=scale)
        return Image(data=buf.getvalue(), format="png")  # type: ignore[no-untyped-call]
    if format == "svg":
        text = io.StringIO()
        chart.save(text, format="svg")
        return SVG(data=text.getvalue())  # type: ignore[no-untyped-call]
    raise ValueError(f"format is 'png' or 'svg', not {format!r}")


def static_report(run: Any, path: str | Path | None = None, *, x: str = "cost",
                  y: str = "accuracy") -> str:
    """A self-contained HTML page of a run (summary, the charts as an embedded PNG, the
    front and the trials): no script, no network; written to ``path`` when given."""
    from dspex_lab.jupyter.reprs import summary_rows

    data = as_run_data(run)
    buf = io.BytesIO()
    figure(data, x, y).save(buf, format="png", scale_factor=1.5)
    image = base64.b64encode(buf.getvalue()).decode("ascii")
    names = [o.name for o in data.objectives]
    front = sorted(data.front_trials(), key=lambda t: t.number)
    front_rows = [[t.number, _format.config_text(t.params),
                   *(_format.value(n, t.values.get(n)) for n in names)] for t in front]
    trial_rows = [[t.number, t.state, _format.config_text(t.params),
                   *(_format.value(n, t.values.get(n)) for n in names),
                   f"{t.fidelity:.0%}", _format.dollars(t.spent), t.reason or ""]
                  for t in sorted(data.trials, key=lambda t: t.number)]
    title = html.escape(_run_title(data))
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body style='font-family:sans-serif'>"
        f"<h2>{title}</h2>"
        + _format.html_table(summary_rows(data), vertical=True)
        + f"<p><img alt='Pareto front and hypervolume' style='max-width:100%' "
          f"src='data:image/png;base64,{image}'></p>"
        + "<h3>Pareto front</h3>"
        + _format.html_table(front_rows, ["trial", "configuration", *names])
        + "<h3>Trials</h3>"
        + _format.html_table(trial_rows, ["trial", "state", "configuration", *names,
                                          "fidelity", "paid", "reason"])
        + f"<p style='color:#888'>generated {time.strftime('%Y-%m-%d %H:%M:%S')}</p>"
        "</body></html>")
    if path is not None:
        Path(path).write_text(page, encoding="utf-8")
    return page


def describe_selection(value: Any) -> int | None:
    """The trial number a ``pick`` selection value names (None when nothing is picked).

    Accepts what ``JupyterChart.selections.pick.value`` holds (``[{"number": 3}]``) and
    the raw Vega signal (``{"vlPoint": {"or": [{"number": 3}]}}``)."""
    if isinstance(value, Mapping):
        value = value.get("vlPoint", {}).get("or", []) if "vlPoint" in value else [value]
    if not isinstance(value, list) or not value:
        return None
    first = value[-1]
    number = first.get("number") if isinstance(first, Mapping) else None
    if isinstance(number, list):
        number = number[-1] if number else None
    return int(number) if isinstance(number, int | float) else None
