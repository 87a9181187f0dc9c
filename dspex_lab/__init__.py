"""dspex_lab: build LLM programs and tune them on accuracy, cost and latency.

``import dspex_lab as dx`` is cheap: every public name below is imported on
first use (aiohttp, pandas and litellm are heavy), so loading the package in a
notebook costs milliseconds.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    # LM layer
    "LM": "dspex_lab.lm",
    "LMResponse": "dspex_lab.lm",
    "set_price": "dspex_lab.lm",
    # settings and recording
    "configure": "dspex_lab.settings",
    "context": "dspex_lab.settings",
    "sql": "dspex_lab.recording",
    "Store": "dspex_lab.store",
    # programs
    "Signature": "dspex_lab.programs.signature",
    "InputField": "dspex_lab.programs.signature",
    "OutputField": "dspex_lab.programs.signature",
    "Module": "dspex_lab.programs.module",
    "Predict": "dspex_lab.programs.predictors",
    "ChainOfThought": "dspex_lab.programs.predictors",
    "ProgramOfThought": "dspex_lab.programs.predictors",
    "program": "dspex_lab.programs.function_program",
    "Prediction": "dspex_lab.programs.prediction",
    "evaluate": "dspex_lab.programs.evaluate",
    "aevaluate": "dspex_lab.programs.evaluate",
    "EvaluationResult": "dspex_lab.programs.evaluate",
    "exact_match": "dspex_lab.programs.metrics",
    "normalized_match": "dspex_lab.programs.metrics",
    "token_f1": "dspex_lab.programs.metrics",
    "numeric_tolerance": "dspex_lab.programs.metrics",
    # variables, spaces, constraints, the spec
    "Space": "dspex_lab.variables",
    "Spec": "dspex_lab.variables",
    "parse_spec": "dspex_lab.variables",
    "load_spec": "dspex_lab.variables",
    "Categorical": "dspex_lab.variables",
    "Float": "dspex_lab.variables",
    "Int": "dspex_lab.variables",
    "Demos": "dspex_lab.variables",
    "Constraint": "dspex_lab.variables",
    "Diagnostic": "dspex_lab.variables",
    "Analysis": "dspex_lab.variables",
    "SpecError": "dspex_lab.variables",
    "BudgetExceededError": "dspex_lab.variables",
    "Budget": "dspex_lab.variables",
    # optimization
    "optimize": "dspex_lab.optimize",
    "resume": "dspex_lab.optimize",
    "Run": "dspex_lab.optimize",
    "Objective": "dspex_lab.optimize",
    # dashboards, exported apps and reports (app/)
    "export_app": "dspex_lab.app",
    "export_report": "dspex_lab.app",
    # errors
    "DspexError": "dspex_lab.errors",
    "DspexWarning": "dspex_lab.errors",
    "ConfigurationError": "dspex_lab.errors",
    "MissingAPIKeyError": "dspex_lab.errors",
    "SignatureError": "dspex_lab.errors",
    "DatasetError": "dspex_lab.errors",
    "LMError": "dspex_lab.errors",
    "ParseError": "dspex_lab.errors",
    "SandboxError": "dspex_lab.errors",
    "EvaluationAborted": "dspex_lab.errors",
}
# public submodules
_SUBMODULES = ("app", "cache", "datasets", "events", "metrics", "errors", "variables")
_SUBMODULE_PATHS = {"metrics": "dspex_lab.programs.metrics"}

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


_recording_installed = False


def __getattr__(name: str) -> Any:
    global _recording_installed
    if not _recording_installed:
        # recording is on by default; this only registers a hook (the store
        # opens right before the first LM call)
        _recording_installed = True
        importlib.import_module("dspex_lab.recording").install()
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULE_PATHS.get(name, f"dspex_lab.{name}"))
    else:
        raise AttributeError(f"module 'dspex_lab' has no attribute {name!r}")
    globals()[name] = value
    return value


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext dspex_lab``: register the ``%dspex`` / ``%%dspex`` magics."""
    importlib.import_module("dspex_lab.jupyter").load_ipython_extension(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    importlib.import_module("dspex_lab.jupyter").unload_ipython_extension(ipython)


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from dspex_lab import cache as cache
    from dspex_lab import datasets as datasets
    from dspex_lab import errors as errors
    from dspex_lab import events as events
    from dspex_lab import variables as variables
    from dspex_lab.errors import ConfigurationError as ConfigurationError
    from dspex_lab.errors import DatasetError as DatasetError
    from dspex_lab.errors import DspexError as DspexError
    from dspex_lab.errors import DspexWarning as DspexWarning
    from dspex_lab.errors import EvaluationAborted as EvaluationAborted
    from dspex_lab.errors import LMError as LMError
    from dspex_lab.errors import MissingAPIKeyError as MissingAPIKeyError
    from dspex_lab.errors import ParseError as ParseError
    from dspex_lab.errors import SandboxError as SandboxError
    from dspex_lab.errors import SignatureError as SignatureError
    from dspex_lab.lm import LM as LM
    from dspex_lab.lm import LMResponse as LMResponse
    from dspex_lab.lm import set_price as set_price
    from dspex_lab.optimize import Objective as Objective
    from dspex_lab.optimize import Run as Run
    from dspex_lab.optimize import optimize as optimize
    from dspex_lab.optimize import resume as resume
    from dspex_lab.programs import metrics as metrics
    from dspex_lab.programs.evaluate import EvaluationResult as EvaluationResult
    from dspex_lab.programs.evaluate import aevaluate as aevaluate
    from dspex_lab.programs.evaluate import evaluate as evaluate
    from dspex_lab.programs.function_program import program as program
    from dspex_lab.programs.metrics import exact_match as exact_match
    from dspex_lab.programs.metrics import normalized_match as normalized_match
    from dspex_lab.programs.metrics import numeric_tolerance as numeric_tolerance
    from dspex_lab.programs.metrics import token_f1 as token_f1
    from dspex_lab.programs.module import Module as Module
    from dspex_lab.programs.prediction import Prediction as Prediction
    from dspex_lab.programs.predictors import ChainOfThought as ChainOfThought
    from dspex_lab.programs.predictors import Predict as Predict
    from dspex_lab.programs.predictors import ProgramOfThought as ProgramOfThought
    from dspex_lab.programs.signature import InputField as InputField
    from dspex_lab.programs.signature import OutputField as OutputField
    from dspex_lab.programs.signature import Signature as Signature
    from dspex_lab.recording import sql as sql
    from dspex_lab.settings import configure as configure
    from dspex_lab.settings import context as context
    from dspex_lab.store import Store as Store
    from dspex_lab.variables import Analysis as Analysis
    from dspex_lab.variables import Budget as Budget
    from dspex_lab.variables import BudgetExceededError as BudgetExceededError
    from dspex_lab.variables import Categorical as Categorical
    from dspex_lab.variables import Constraint as Constraint
    from dspex_lab.variables import Demos as Demos
    from dspex_lab.variables import Diagnostic as Diagnostic
    from dspex_lab.variables import Float as Float
    from dspex_lab.variables import Int as Int
    from dspex_lab.variables import Space as Space
    from dspex_lab.variables import Spec as Spec
    from dspex_lab.variables import SpecError as SpecError
    from dspex_lab.variables import load_spec as load_spec
    from dspex_lab.variables import parse_spec as parse_spec
