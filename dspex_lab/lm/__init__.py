"""The LM layer: models, transports, prices, and the background loop.

Knows nothing of programs, optimizers, widgets or the store; it reports every
attempt on :mod:`dspex_lab.events`.
"""

from __future__ import annotations

from dspex_lab.lm._builtin_models import BUILTIN_MODELS, BuiltinModel
from dspex_lab.lm._lm import LM, Messages
from dspex_lab.lm._pricing import ModelPrice, UnknownPriceWarning, lookup_price, set_price
from dspex_lab.lm._providers import OPENAI_COMPATIBLE, ProviderInfo
from dspex_lab.lm._retry import RetryPolicy
from dspex_lab.lm._runner import get_loop, run_sync, submit
from dspex_lab.lm._types import LMCallRecord, LMResponse, Usage

__all__ = [
    "BUILTIN_MODELS",
    "LM",
    "OPENAI_COMPATIBLE",
    "BuiltinModel",
    "LMCallRecord",
    "LMResponse",
    "Messages",
    "ModelPrice",
    "ProviderInfo",
    "RetryPolicy",
    "UnknownPriceWarning",
    "Usage",
    "get_loop",
    "lookup_price",
    "run_sync",
    "set_price",
    "submit",
]
