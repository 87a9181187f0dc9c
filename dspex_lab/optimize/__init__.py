"""Multi-objective optimization (issue 5; in progress).

Today: Pareto fronts and exact hypervolume (:mod:`dspex_lab.optimize._pareto`),
the measuring stick the optimizer and its quality benchmark will use.
"""

from __future__ import annotations

from dspex_lab.optimize._pareto import dominates, hypervolume, non_dominated

__all__ = ["dominates", "hypervolume", "non_dominated"]
