"""Counts of requests served, per model and per outcome, safe to read from another thread."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

__all__ = ["OUTCOMES", "Stats"]

OUTCOMES: tuple[str, ...] = ("ok", "429", "500", "hang", "truncated", "error")
"""``error`` counts requests refused with a 4xx (bad JSON, unknown model, unsupported JSON mode)."""


class Stats:
    """Thread-safe counters; :meth:`snapshot` is the JSON served at ``GET /_sim/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, model: str, outcome: str) -> None:
        with self._lock:
            self._counts[model, outcome] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[str, Any]:
        """``{"total", <outcome>: n..., "by_model": {model: {"total", <outcome>: n...}}}``."""
        with self._lock:
            counts = dict(self._counts)
        out: dict[str, Any] = {"total": 0, **dict.fromkeys(OUTCOMES, 0), "by_model": {}}
        for (model, outcome), n in sorted(counts.items()):
            per = out["by_model"].setdefault(model, {"total": 0, **dict.fromkeys(OUTCOMES, 0)})
            per[outcome] += n
            per["total"] += n
            out[outcome] += n
            out["total"] += n
        return out
