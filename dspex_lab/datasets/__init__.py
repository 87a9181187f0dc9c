"""Built-in, deterministic datasets for trying programs without any download.

``load("sim-math")``, ``load("sim-lookup")`` and ``load("sim-sentiment")``
each give 300 train / 200 val / 200 test rows generated from a fixed seed,
with a stable ``id`` per row and a ``difficulty`` the simulator's quality
function uses. ``load("local-qa")`` has the same shape but is made for the
real local model (``local/smollm2``): one-word questions it can answer.
They are pure data: this package imports nothing from ``programs`` or ``sim``.
"""

from __future__ import annotations

from dspex_lab.datasets._dataset import SPLIT_SIZES, Dataset, Item, Row
from dspex_lab.datasets._registry import find_item, items, load, names

__all__ = ["SPLIT_SIZES", "Dataset", "Item", "Row", "find_item", "items", "load", "names"]
