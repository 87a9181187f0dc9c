"""The Panel dashboard over a store, ``dspex-lab serve``, and exported apps.

- :func:`build_dashboard` — the runs list, a run page (Pareto front with click-through
  to a trial's configuration and sample outputs, hypervolume over time, variable
  importance, trials), an executions browser and a read-only SQL console, refreshed
  live while another process records into the same file.
- :func:`serve` — one dashboard per browser session on 127.0.0.1 by default;
  anything but loopback needs an :class:`AuthPolicy` (Panel's basic auth or OAuth).
- :func:`export_app` / :func:`export_report` — a standalone app or report of some
  runs (see :mod:`dspex_lab.app._export`).

Only this layer imports Panel and Bokeh, and only when one of these is used:
``import dspex_lab.app`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "AuthPolicy": "dspex_lab.app._auth",
    "UnsafeBindError": "dspex_lab.app._auth",
    "Dashboard": "dspex_lab.app._dashboard",
    "build_dashboard": "dspex_lab.app._dashboard",
    "StoreMissingError": "dspex_lab.app._serve",
    "serve": "dspex_lab.app._serve",
    "export_app": "dspex_lab.app._export",
    "export_report": "dspex_lab.app._export",
}
"""Imported on first use: Panel takes seconds to import."""

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dspex_lab.app' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
