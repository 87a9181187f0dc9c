"""Small, dependency-free formatting shared by the monitor, reports and comparisons.

Everything returns text; HTML helpers escape every value they are given, since
configurations and model outputs are user data.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["config_text", "dollars", "duration", "html_table", "value"]


def dollars(amount: float | None) -> str:
    """``$0.0123``; tiny amounts (per-example costs) keep two significant digits."""
    if amount is None or (isinstance(amount, float) and math.isnan(amount)):
        return "—"
    if amount == 0 or abs(amount) >= 0.001:
        return f"${amount:,.4f}"
    return f"${amount:.2g}"


def duration(seconds: float | None) -> str:
    """``0:42``, ``12:03``, ``1:02:03``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def value(name: str, v: Any) -> str:
    """An objective or column value for people: dollars for cost, seconds for latency."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, bool) or not isinstance(v, int | float):
        return str(v)
    if name in ("cost", "spent"):
        return dollars(float(v))
    if name.startswith("latency") or name.endswith("_s"):
        return f"{v:.3g} s"
    if name in ("accuracy", "fidelity"):
        return f"{v:.3f}"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def config_text(params: Mapping[str, Any], limit: int = 60) -> str:
    """``model=sim/tiny, module=cot``; long values (demo index lists, instructions) cut."""
    parts = []
    for k, v in params.items():
        shown = v if isinstance(v, str) else json.dumps(v, default=str)
        if len(shown) > limit:
            shown = shown[: limit - 1] + "…"
        parts.append(f"{k}={shown}")
    return ", ".join(parts)


def html_table(rows: Iterable[Sequence[Any]], header: Sequence[str] | None = None,
               *, vertical: bool = False) -> str:
    """A plain HTML table (values escaped). ``vertical``: first cell of a row is a header."""
    cell = "text-align:left;padding:1px 8px;vertical-align:top"
    out = ["<table style='border-collapse:collapse;font-size:12px'>"]
    if header:
        out.append("<thead><tr>" + "".join(f"<th style='{cell}'>{html.escape(str(h))}</th>"
                                           for h in header) + "</tr></thead>")
    out.append("<tbody>")
    for row in rows:
        cells = []
        for i, v in enumerate(row):
            tag = "th" if vertical and i == 0 else "td"
            cells.append(f"<{tag} style='{cell}'>{html.escape(str(v))}</{tag}>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)
