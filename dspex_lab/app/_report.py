"""A run as one static HTML page: opens from disk, with no server, script or network.

The page holds the run's summary, its Pareto front and its search progress
(hypervolume after each completed trial) as PNG images embedded in the page,
the progress as a table too, the front's configurations in full, and every
trial. It is what to attach to an issue, mail, or keep next to a paper.

The charts are the notebook's (:mod:`dspex_lab.jupyter.charts`, rendered to
PNG by vl-convert, offline). That module sits in a sibling layer, but it only
builds Altair specifications from plain run data and never imports IPython,
so reusing it keeps one definition of each chart instead of a copy here (the
dashboard and the notebook draw the same pictures).

Everything on the page comes from a copy of the run's data with secrets
blanked (:func:`scrub_run_data`), and the finished text is scrubbed once more.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from dspex_lab.app._scrub import Scrubber

if TYPE_CHECKING:
    from dspex_lab.jupyter._data import RunData

__all__ = ["render_report", "scrub_run_data"]

_STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px;color:#222}
h1{font-size:20px;margin-bottom:4px} h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;font-size:12px;margin:6px 0}
th,td{text-align:left;padding:2px 10px;vertical-align:top;border-bottom:1px solid #eee}
thead th{border-bottom:2px solid #ccc} tr.front td{background:#f3f7ff}
figure{display:inline-block;margin:0 24px 12px 0} figcaption{font-size:12px;color:#666}
img{max-width:100%;height:auto} pre{margin:0;font-size:11px;white-space:pre-wrap}
.muted{color:#888;font-size:11px}
"""


def scrub_run_data(data: RunData, scrubber: Scrubber) -> RunData:
    """A copy of ``data`` with every text and configuration value scrubbed (objective
    values and the front are numbers and stay as they are)."""
    def text(value: str | None) -> str | None:
        return None if value is None else scrubber.text(value)

    trials = [replace(t, params=scrubber.value(t.params), config=scrubber.value(t.config),
                      metrics=scrubber.value(t.metrics), reason=text(t.reason),
                      source=scrubber.text(t.source), trial_id=scrubber.text(t.trial_id))
              for t in data.trials]
    return replace(
        data, run_id=scrubber.text(data.run_id), name=text(data.name),
        stop_reason=text(data.stop_reason), strategy=text(data.strategy),
        strategy_reason=text(data.strategy_reason), trials=trials,
        budget=scrubber.value(data.budget), config=scrubber.value(data.config),
        param_names=tuple(scrubber.text(n) for n in data.param_names),
        param_choices={scrubber.text(k): tuple(scrubber.value(list(v)))
                       for k, v in data.param_choices.items()})


_SCALE = 2.0


def _png(chart: Any) -> tuple[str, int]:
    """The chart as base64 PNG at twice its size (sharp on high-density screens), and its
    width in CSS pixels (read from the PNG header) to show it at."""
    buf = io.BytesIO()
    chart.save(buf, format="png", scale_factor=_SCALE)
    data = buf.getvalue()
    width = int.from_bytes(data[16:20], "big")  # IHDR: the first chunk, width first
    return base64.b64encode(data).decode("ascii"), round(width / _SCALE)


def _table(table_id: str, header: Sequence[str], rows: Sequence[Sequence[Any]],
           row_attrs: Sequence[str] | None = None) -> str:
    """A table whose cells are escaped text, except cells given as ``("html", markup)``."""
    out = [f"<table id='{table_id}'><thead><tr>"
           + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr></thead><tbody>"]
    for i, row in enumerate(rows):
        attrs = row_attrs[i] if row_attrs else ""
        cells = "".join(f"<td>{c[1]}</td>" if isinstance(c, tuple) else
                        f"<td>{html.escape(str(c))}</td>" for c in row)
        out.append(f"<tr{attrs}>{cells}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _summary(data: RunData) -> str:
    from dspex_lab.jupyter.reprs import summary_rows

    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
                   for k, v in summary_rows(data))
    return f"<table id='summary'><tbody>{rows}</tbody></table>"


def _history(data: RunData) -> str:
    from dspex_lab.jupyter.charts import hypervolume_rows

    rows = [[h["completed"], h["trial"], f"{h['elapsed_s']:.1f}", f"{h['hypervolume']:.4g}",
             f"{h['relative']:.1%}"] for h in hypervolume_rows(data)]
    return _table("history", ["completed trials", "trial", "elapsed (s)", "hypervolume",
                              "share of today's"], rows)


def _front(data: RunData) -> str:
    from dspex_lab.jupyter import _format

    names = [o.name for o in data.objectives]
    rows = []
    for t in sorted(data.front_trials(), key=lambda t: t.number):
        config = json.dumps(t.params, indent=1, ensure_ascii=False, default=str)
        rows.append([t.number, *(_format.value(n, t.values.get(n)) for n in names),
                     ("html", f"<pre>{html.escape(config)}</pre>")])
    return _table("front", ["trial", *names, "configuration"], rows)


def _trials(data: RunData) -> str:
    from dspex_lab.jupyter import _format

    names = [o.name for o in data.objectives]
    front = data.front
    ordered = sorted(data.trials, key=lambda t: t.number)
    rows = [[t.number, t.state, _format.config_text(t.params),
             *(_format.value(n, t.values.get(n)) for n in names), f"{t.fidelity:.0%}",
             _format.dollars(t.spent), t.reason or ""] for t in ordered]
    attrs = [f" data-trial='{t.number}' data-state='{html.escape(t.state)}'"
             + (" class='front'" if t.number in front else "") for t in ordered]
    return _table("trials", ["trial", "state", "configuration", *names, "fidelity", "paid",
                             "reason"], rows, attrs)


def render_report(data: RunData, scrubber: Scrubber, *, x: str = "cost",
                  y: str = "accuracy") -> str:
    """The page of a run: ``data`` is scrubbed first, then the finished text again."""
    from dspex_lab import __version__
    from dspex_lab.jupyter.charts import hypervolume_chart, pareto_chart

    clean = scrub_run_data(data, scrubber)
    name = f" ({clean.name})" if clean.name else ""
    title = html.escape(f"{clean.run_id}{name}")
    front_png, front_width = _png(pareto_chart(clean, x, y, width=460, height=320))
    history_png, history_width = _png(hypervolume_chart(clean, width=340, height=320))
    images = {"@@FRONT@@": front_png, "@@HISTORY@@": history_png}
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{title}: dspex_lab report</title><style>{_STYLE}</style></head><body>"
        f"<h1>{title}</h1>"
        f"<p class='muted'>{html.escape(clean.state)}, {len(clean.trials)} trials; "
        "a static report written by dspex_lab (no script, nothing loaded from the "
        "network; API keys and other secrets blanked as ***).</p>"
        + _summary(clean)
        + "<h2>Pareto front and search progress</h2>"
        f"<figure><img id='front-chart' width='{front_width}' alt='Pareto front of the run' "
        "src='data:image/png;base64,@@FRONT@@'><figcaption>The trials on "
        f"{html.escape(x)} and {html.escape(y)}; outlined: on the run's Pareto front over "
        "all its objectives.</figcaption></figure>"
        f"<figure><img id='history-chart' width='{history_width}' "
        "alt='Hypervolume after each completed trial' "
        "src='data:image/png;base64,@@HISTORY@@'><figcaption>Hypervolume after each "
        "completed trial, as a share of the final front's.</figcaption></figure>"
        "<h2>The front's configurations</h2>" + _front(clean)
        + "<h2>Search progress</h2>" + _history(clean)
        + "<h2>Trials</h2>" + _trials(clean)
        + f"<p class='muted'>generated {time.strftime('%Y-%m-%d %H:%M:%S %Z')} by "
          f"dspex_lab {html.escape(__version__)}</p></body></html>")
    page = scrubber.text(page)  # images go in afterwards: base64 is not text to scrub
    for marker, image in images.items():
        page = page.replace(marker, image)
    return page
