"""The notebook layer: ``%%dspex`` magics, the run monitor widget, charts, rich displays.

Only this layer imports IPython, ipywidgets and Altair (each lazily): magics and
widgets are thin shells over the library, and everything they do is possible
from Python. ``%load_ext dspex_lab`` calls :func:`load_ipython_extension`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%dspex`` / ``%%dspex`` magics (cheap: nothing heavy is imported)."""
    from dspex_lab.jupyter.magics import register

    register(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from dspex_lab.jupyter.magics import unregister

    unregister(ipython)
