"""The notebook layer: ``%%dspex`` magics, the run monitor widget, charts, rich displays.

Only this layer imports IPython, ipywidgets and Altair (each lazily): magics and
widgets are thin shells over the library, and everything they do is possible
from Python. ``%load_ext dspex_lab`` calls :func:`load_ipython_extension`.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "RunMonitor": "dspex_lab.jupyter.monitor",
    "SpaceBuilder": "dspex_lab.jupyter.builder",
    "pareto_chart": "dspex_lab.jupyter.charts",
    "hypervolume_chart": "dspex_lab.jupyter.charts",
    "save_chart": "dspex_lab.jupyter.charts",
    "run_figures": "dspex_lab.jupyter.charts",
    "static_report": "dspex_lab.jupyter.charts",
    "compare_runs": "dspex_lab.jupyter.reprs",
}
"""Imported on first use: ``%load_ext dspex_lab`` must not pay for Altair or ipywidgets."""

__all__ = sorted(["load_ipython_extension", "unload_ipython_extension", *_LAZY])


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'dspex_lab.jupyter' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%dspex`` / ``%%dspex`` magics (cheap: nothing heavy is imported)."""
    from dspex_lab.jupyter.magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from dspex_lab.jupyter.magics import unregister

    unregister(ipython)
