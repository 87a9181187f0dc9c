"""The dashboard's small HTML fragments: run summaries, a trial's details, a row.

Plain functions returning text, so they are tested without Panel. Every value is
escaped: configurations, prompts and model outputs are user data, and Panel's
HTML pane renders what it is given. ``data-*`` attributes carry the numbers the
fragment shows, for tests and for anyone scripting the page.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from dspex_lab.jupyter._format import dollars, duration, value

if TYPE_CHECKING:
    from dspex_lab.app._data import RunDetail, TrialDetail

__all__ = ["STYLE", "execution_html", "header_html", "message_html", "run_summary_html",
           "shown", "trial_html"]

STYLE = """
.dx-muted { color: #6b7280; }
.dx-kv { border-collapse: collapse; font-size: 13px; }
.dx-kv th { text-align: left; padding: 1px 12px 1px 0; color: #374151; font-weight: 600;
            vertical-align: top; white-space: nowrap; }
.dx-kv td { padding: 1px 8px 1px 0; vertical-align: top; }
.dx-pre { white-space: pre-wrap; word-break: break-word; background: #f6f8fa;
          border-radius: 4px; padding: 6px 8px; margin: 2px 0 8px 0; font-size: 12px;
          max-height: 220px; overflow: auto; }
.dx-badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
            background: #eef2ff; color: #3730a3; margin-left: 6px; }
.dx-state-running { background: #ecfdf5; color: #065f46; }
.dx-state-failed { background: #fef2f2; color: #991b1b; }
.dx-stats { display: flex; flex-wrap: wrap; gap: 18px; font-size: 13px; }
.dx-stats b { display: block; font-size: 17px; }
"""

_SAMPLE_CHARS = 800


def _e(v: Any) -> str:
    return html.escape(str(v))


def _json_text(v: Any, limit: int = _SAMPLE_CHARS) -> str:
    if isinstance(v, str):
        with contextlib.suppress(ValueError):
            v = json.loads(v)
    text = v if isinstance(v, str) else json.dumps(v, indent=2, ensure_ascii=False,
                                                   default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def shown(name: str, v: Any) -> str:
    """An objective's value for people; per-example dollars keep three significant
    digits without an exponent (``$0.0000687``)."""
    if name == "cost" and isinstance(v, int | float) and not isinstance(v, bool) and \
            math.isfinite(v) and 0 < abs(v) < 0.01:
        digits = 2 - math.floor(math.log10(abs(v)))
        return f"${v:.{digits}f}"
    return value(name, v)


def _kv(rows: Iterable[tuple[str, Any]]) -> str:
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table class='dx-kv'>{body}</table>"


def header_html(title: str, store: str, role: str, status: str) -> str:
    """The top bar: title, the store file, the viewer's role and the refresh status."""
    return (f"<div style='display:flex;align-items:baseline;gap:14px;flex-wrap:wrap'>"
            f"<span style='font-size:22px;font-weight:700'>{_e(title)}</span>"
            f"<span class='dx-muted' title='the store file this dashboard reads'>"
            f"{_e(store)}</span><span class='dx-badge'>{_e(role)}</span>"
            f"<span class='dx-muted dx-status' style='margin-left:auto'>{_e(status)}</span>"
            f"</div>")


def message_html(text: str, kind: str = "info") -> str:
    """An empty state or a notice (``kind``: info, warning, error)."""
    colors = {"info": ("#f3f4f6", "#374151"), "warning": ("#fffbeb", "#92400e"),
              "error": ("#fef2f2", "#991b1b")}
    bg, fg = colors.get(kind, colors["info"])
    return (f"<div class='dx-message dx-{_e(kind)}' style='background:{bg};color:{fg};"
            f"padding:8px 12px;border-radius:6px;font-size:14px'>{_e(text)}</div>")


def run_summary_html(detail: RunDetail) -> str:
    """The run page's header: state, strategy, trial counts, front size, spend, status."""
    d = detail.data
    c = detail.convergence
    completed = len(d.completed())
    front = len(d.front)
    by_state: dict[str, int] = {}
    for t in d.trials:
        by_state[t.state] = by_state.get(t.state, 0) + 1
    scores = [v for t in d.completed()
              if isinstance(v := t.values.get("accuracy"), int | float)]
    best = max(scores, default=None)
    stats = [
        ("trials", f"{len(d.trials)}" + (f" of {d.max_trials}" if d.max_trials else "")),
        ("completed", completed), ("pruned", by_state.get("pruned", 0)),
        ("failed", by_state.get("failed", 0)), ("on the Pareto front", front),
        ("best accuracy", value("accuracy", best)), ("spent", dollars(d.spent)),
        ("LM calls", f"{d.lm_calls:,}"), ("elapsed", duration(d.elapsed_s())),
    ]
    state_class = f"dx-state-{d.state}" if d.state in ("running", "failed") else ""
    name = f"{_e(d.name)} · " if d.name else ""
    status = c.get("status")
    objectives = ", ".join(f"{o.name} ({'max' if o.maximize else 'min'})"
                           for o in d.objectives)
    lines = [
        f"<div class='dx-run-summary' data-run='{_e(d.run_id)}' data-state='{_e(d.state)}' "
        f"data-trials='{len(d.trials)}' data-completed='{completed}' data-front='{front}'>",
        f"<div style='font-size:18px;font-weight:600'>{name}{_e(d.run_id)}"
        f"<span class='dx-badge {state_class}'>{_e(d.state)}</span>"
        + (f"<span class='dx-badge'>{_e(status)}</span>" if status else "") + "</div>",
        f"<div class='dx-muted' style='font-size:13px;margin:2px 0 8px 0'>strategy "
        f"{_e(d.strategy or '—')}"
        + (f" ({_e(d.strategy_reason)})" if d.strategy_reason else "")
        + f" · objectives {_e(objectives)}"
        + (f" · {_e(d.stop_reason)}" if d.stop_reason else "") + "</div>",
        "<div class='dx-stats'>" + "".join(
            f"<div><b>{_e(v)}</b><span class='dx-muted'>{_e(k)}</span></div>"
            for k, v in stats) + "</div></div>"]
    return "".join(lines)


def trial_html(t: TrialDetail, objectives: Sequence[str]) -> str:
    """A trial's configuration, objective values and sample program calls."""
    front = ("<span class='dx-badge'>on the Pareto front</span>" if t.on_front else "")
    head = (f"<div class='dx-trial' data-trial='{t.number}' data-front='{int(t.on_front)}'>"
            f"<div style='font-size:16px;font-weight:600'>Trial {t.number}"
            f"<span class='dx-badge'>{_e(t.state)}</span>{front}</div>")
    values = [(f"{name} per example" if name in ("cost", "latency_s") else name,
               shown(name, t.values.get(name))) for name in objectives]
    ci = t.metrics.get("accuracy_ci")
    if isinstance(ci, list | tuple) and len(ci) == 2 and all(
            isinstance(x, int | float) for x in ci):
        values.append(("accuracy 95% CI", f"{ci[0]:.3f} – {ci[1]:.3f}"))
    values += [("fidelity", f"{t.fidelity:.0%} of {t.n_examples} examples"),
               ("paid", dollars(t.spent))]
    if t.reason:
        values.append(("reason", t.reason))
    config = [(k, v if isinstance(v, str) else json.dumps(v, default=str))
              for k, v in t.params.items()]
    parts = [head, "<h4 style='margin:8px 0 2px 0'>Objectives</h4>", _kv(values),
             "<h4 style='margin:8px 0 2px 0'>Configuration</h4>",
             _kv(config) if config else "<span class='dx-muted'>(no parameters)</span>",
             f"<h4 style='margin:8px 0 2px 0'>Sample outputs "
             f"<span class='dx-muted' style='font-weight:400'>({len(t.samples)} shown)"
             f"</span></h4>"]
    if t.samples.empty:
        parts.append("<span class='dx-muted'>No program calls of this trial are in the "
                     "store.</span>")
    for i, (_, row) in enumerate(t.samples.iterrows(), 1):
        parts.append(f"<div class='dx-sample'><div class='dx-muted'>call {i}</div>"
                     f"<div>inputs</div><div class='dx-pre'>{_e(_json_text(row['inputs']))}"
                     f"</div>")
        error = row.get("error_kind")
        if isinstance(error, str) and error:
            parts.append(f"<div style='color:#991b1b'>error {_e(error)}: "
                         f"{_e(row.get('error_message') or '')}</div>")
        else:
            parts.append(f"<div>outputs</div><div class='dx-pre'>"
                         f"{_e(_json_text(row['outputs']))}</div>")
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def execution_html(row: Mapping[str, Any]) -> str:
    """Every column of one execution row; JSON columns pretty-printed."""
    simple = [(k, v) for k, v in row.items()
              if k not in ("inputs", "outputs", "params", "tags") and v is not None]
    parts = [f"<div class='dx-execution' data-id='{_e(row.get('id', ''))}'>", _kv(simple)]
    for key in ("inputs", "outputs", "params", "tags"):
        if row.get(key) is not None:
            parts.append(f"<div>{key}</div><div class='dx-pre'>"
                         f"{_e(_json_text(row[key], 20_000))}</div>")
    parts.append("</div>")
    return "".join(parts)
