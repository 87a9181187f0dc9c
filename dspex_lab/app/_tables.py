"""Tables of the dashboard: read-only Tabulator widgets with formats by column name.

Numbers keep their numeric values (so sorting works) and are only *shown* as
dollars, seconds or shares: Tabulator formats them in the browser. Formats are
chosen from the column name, the way the store names things (``cost``,
``spent``, ``uncached_cost``: dollars; ``latency_s``, ``wall_s``, ``*_s``:
seconds; ``accuracy``, ``fidelity``, ``importance``: three decimals).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd
    import panel as pn

__all__ = ["formatters_for", "make_table", "set_rows", "title"]

_DOLLARS = {"type": "money", "symbol": "$", "precision": 6}
_SECONDS = {"type": "money", "symbol": " s", "symbolAfter": True, "precision": 3}
_SHARE = {"type": "money", "symbol": "", "precision": 3}
_BAR = {"type": "progress", "min": 0, "max": 1, "color": "#4c78a8", "legend": True}


def _format(name: str) -> dict[str, Any] | None:
    lowered = name.lower()
    if lowered in ("cost", "spent", "min_cost", "uncached_cost", "cost_per_call",
                   "total_cost", "uncached_cost_per_call") or lowered.endswith("_cost"):
        return _DOLLARS
    if lowered.endswith("_s"):
        return _SECONDS
    if lowered == "importance":
        return _BAR
    if lowered in ("accuracy", "best_accuracy", "fidelity", "accuracy_low", "accuracy_high",
                   "best_mean", "error_rate", "share_of_rows"):
        return _SHARE
    if lowered in ("front", "cache_hit", "will_retry"):
        return {"type": "tickCross", "crossElement": False}
    return None


_TITLES = {"n_trials": "trials", "n_completed": "completed", "n_pruned": "pruned",
           "n_failed": "failed", "n_examples": "examples", "n_settings": "settings",
           "lm_attempts": "LM attempts", "lm_failures": "LM failures", "lm_calls": "LM calls",
           "min_cost": "lowest cost", "best_accuracy": "best accuracy",
           "latency_s": "latency", "duration_s": "duration", "run_id": "run",
           "trial_id": "trial", "accuracy_low": "accuracy low", "accuracy_high": "accuracy high",
           "started_at": "started (UTC)", "ended_at": "ended (UTC)",
           "stop_reason": "stopped because",
           "best_setting": "best setting", "best_mean": "its mean", "error_kind": "error",
           "error_message": "message", "cache_hit": "cached", "prompt_tokens": "prompt tok.",
           "completion_tokens": "completion tok."}


def title(column: str) -> str:
    """A column heading for people (the data keeps the store's column names)."""
    return _TITLES.get(column, column.replace("_", " "))


def formatters_for(columns: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Tabulator formatters for the columns whose names say what they hold."""
    out: dict[str, dict[str, Any]] = {}
    for c in columns:
        f = _format(str(c))
        if f is not None:
            out[str(c)] = f
    return out


def make_table(name: str, *, page_size: int = 20, height: int | None = None,
               selectable: bool = False, **kwargs: Any) -> pn.widgets.Tabulator:
    """An empty read-only table (``name`` also becomes its CSS class, for tests)."""
    import pandas as pd
    import panel as pn

    options: dict[str, Any] = dict(
        disabled=True, show_index=False, pagination="local", page_size=page_size,
        sizing_mode="stretch_width", layout="fit_data_table", selectable=selectable,
        css_classes=[name],
        configuration={"columnDefaults": {"maxWidth": 420, "headerSort": True}})
    if height is not None:
        options["height"] = height
        options.pop("pagination")
    options.update(kwargs)
    return pn.widgets.Tabulator(pd.DataFrame(), **options)  # type: ignore[no-untyped-call]


def set_rows(table: pn.widgets.Tabulator, frame: pd.DataFrame) -> None:
    """Show ``frame`` (JSON-ish objects as text, so every cell renders)."""
    shown = frame.copy()
    for c in shown.columns:
        if shown[c].dtype == object:
            shown[c] = [v if v is None or isinstance(v, str | int | float | bool) else str(v)
                        for v in shown[c]]
    table.formatters = formatters_for(shown.columns)
    table.titles = {str(c): title(str(c)) for c in shown.columns}
    table.value = shown
