"""LM programs: signatures, prompt adapters (modules and evaluation come later)."""

from __future__ import annotations

from dspex_lab.programs.adapters import (
    ADAPTER_NAMES,
    Adapter,
    ChatAdapter,
    JSONAdapter,
    MarkdownAdapter,
    fallback_adapter,
    get_adapter,
)
from dspex_lab.programs.signature import Field, InputField, OutputField, Signature

__all__ = [
    "ADAPTER_NAMES",
    "Adapter",
    "ChatAdapter",
    "Field",
    "InputField",
    "JSONAdapter",
    "MarkdownAdapter",
    "OutputField",
    "Signature",
    "fallback_adapter",
    "get_adapter",
]
