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
    # settings
    "configure": "dspex_lab.settings",
    "context": "dspex_lab.settings",
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
_SUBMODULES = ("datasets", "events", "metrics", "errors")
_SUBMODULE_PATHS = {"metrics": "dspex_lab.programs.metrics"}

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(_SUBMODULE_PATHS.get(name, f"dspex_lab.{name}"))
    else:
        raise AttributeError(f"module 'dspex_lab' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from dspex_lab import datasets, errors, events
    from dspex_lab.errors import (
        ConfigurationError,
        DatasetError,
        DspexError,
        DspexWarning,
        EvaluationAborted,
        LMError,
        MissingAPIKeyError,
        ParseError,
        SandboxError,
        SignatureError,
    )
    from dspex_lab.lm import LM, LMResponse, set_price
    from dspex_lab.programs import metrics
    from dspex_lab.programs.evaluate import EvaluationResult, aevaluate, evaluate
    from dspex_lab.programs.function_program import program
    from dspex_lab.programs.metrics import (
        exact_match,
        normalized_match,
        numeric_tolerance,
        token_f1,
    )
    from dspex_lab.programs.module import Module
    from dspex_lab.programs.prediction import Prediction
    from dspex_lab.programs.predictors import ChainOfThought, Predict, ProgramOfThought
    from dspex_lab.programs.signature import InputField, OutputField, Signature
    from dspex_lab.settings import configure, context
