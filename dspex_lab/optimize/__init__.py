"""Multi-objective optimization of LM programs: accuracy x cost x latency, on Optuna.

``dx.optimize(program, space, trainset, valset, metric)`` returns a :class:`Run`
at once; the run proposes configurations with Optuna's ask-and-tell interface
(strategies ``auto``, ``grid``, ``random``, ``tpe``, ``nsga2``, ``gp``), rejects
invalid and unaffordable ones before any call, evaluates the rest on growing
slices of the validation set (pruning the hopeless), keeps within its
budgets, and reports every trial on the event bus (and so in the store).
``dx.resume(run_id)`` continues a run from the store. Pareto fronts and exact
hypervolume live in :mod:`._pareto`. The guide is ``docs/optimize.md``.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from dspex_lab.optimize._objectives import STANDARD, Objective
from dspex_lab.optimize._optimizer import optimize, resume
from dspex_lab.optimize._pareto import dominates, hypervolume, non_dominated
from dspex_lab.optimize._run import FrontChanged, Run, TrialInfo, get_run, runs
from dspex_lab.optimize._trial import TrialSlice, evaluate_slice, merge_results

__all__ = [
    "STANDARD",
    "FrontChanged",
    "Objective",
    "Run",
    "TrialInfo",
    "TrialSlice",
    "dominates",
    "evaluate_slice",
    "get_run",
    "hypervolume",
    "merge_results",
    "non_dominated",
    "optimize",
    "resume",
    "runs",
]


class _CallableModule(types.ModuleType):
    """``dx.optimize`` is both this subpackage and the function: Python binds the
    subpackage to ``dspex_lab.optimize`` once it is imported, so the module itself
    forwards calls to :func:`optimize` and ``dx.optimize(...)`` always works."""

    def __call__(self, *args: Any, **kwargs: Any) -> Run:
        return optimize(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
