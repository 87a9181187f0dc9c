"""Variables, spaces, constraints and the ``%%dspex`` spec with its static analysis.

- Variables (what may vary): :class:`Categorical`, :class:`Float`, :class:`Int`,
  :class:`Demos`, and the LM-specific constructors :func:`adapter`,
  :func:`module`, :func:`model`, :func:`temperature`, :func:`max_tokens`,
  :func:`instructions`, :func:`demos`.
- :class:`Space` composes variables and :class:`Constraint` expressions: size,
  sampling, grids, validation, and the config for ``program.with_config``.
- :class:`Spec` is the YAML spec (``parse_spec``, ``load_spec``,
  ``Spec.from_python``); ``spec.diagnostics`` lists every problem found before
  anything runs, ``spec.build()`` gives ``(program, space)`` and
  ``spec.analyze()`` the pre-flight :class:`Analysis`.

The language is documented in ``docs/spec.md``.
"""

from __future__ import annotations

from dspex_lab.variables._analysis import Analysis, BudgetExceededError, Estimate
from dspex_lab.variables._constraints import Constraint, ConstraintError
from dspex_lab.variables._diagnostics import KINDS, Diagnostic, SpecError
from dspex_lab.variables._estimate import ConfigEstimate, ModelInfo, count_tokens, model_info
from dspex_lab.variables._space import InvalidConfigError, Space
from dspex_lab.variables._spec import Budget, DatasetRef, Spec, load_spec, parse_spec
from dspex_lab.variables._strategy import STRATEGIES, StrategyChoice, choose_strategy
from dspex_lab.variables._variable import (
    UNSET,
    Categorical,
    Demos,
    Float,
    Int,
    Variable,
    adapter,
    demos,
    instructions,
    max_tokens,
    model,
    module,
    temperature,
)

__all__ = [
    "KINDS",
    "STRATEGIES",
    "UNSET",
    "Analysis",
    "Budget",
    "BudgetExceededError",
    "Categorical",
    "ConfigEstimate",
    "Constraint",
    "ConstraintError",
    "DatasetRef",
    "Demos",
    "Diagnostic",
    "Estimate",
    "Float",
    "Int",
    "InvalidConfigError",
    "ModelInfo",
    "Space",
    "Spec",
    "SpecError",
    "StrategyChoice",
    "Variable",
    "adapter",
    "choose_strategy",
    "count_tokens",
    "demos",
    "instructions",
    "load_spec",
    "max_tokens",
    "model",
    "model_info",
    "module",
    "parse_spec",
    "temperature",
]
