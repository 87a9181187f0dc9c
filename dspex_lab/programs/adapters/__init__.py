"""Prompt adapters: how a signature becomes chat messages and a reply becomes values.

Three formats, named as in docs/internals/prompt-protocol.md: ``chat``
(``[[ ## field ## ]]`` markers), ``json`` (one JSON object) and ``markdown``
(``## field`` headings). :func:`get_adapter` maps a name to an adapter and
:func:`fallback_adapter` names the format to retry with after a parse failure.
"""

from __future__ import annotations

from dspex_lab.errors import ConfigurationError
from dspex_lab.programs.adapters._base import Adapter
from dspex_lab.programs.adapters.chat import ChatAdapter
from dspex_lab.programs.adapters.json_adapter import JSONAdapter
from dspex_lab.programs.adapters.markdown import MarkdownAdapter

__all__ = [
    "ADAPTER_NAMES",
    "Adapter",
    "ChatAdapter",
    "JSONAdapter",
    "MarkdownAdapter",
    "fallback_adapter",
    "get_adapter",
]

ADAPTER_NAMES: tuple[str, ...] = ("chat", "json", "markdown")

_ADAPTERS: dict[str, type[Adapter]] = {
    "chat": ChatAdapter,
    "json": JSONAdapter,
    "markdown": MarkdownAdapter,
}
# After a parse failure, retry in a format that fails differently: markers and
# JSON objects are the two formats models follow best.
_FALLBACKS: dict[str, str] = {"chat": "json", "json": "chat", "markdown": "chat"}


def _check_name(name: str) -> str:
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in _ADAPTERS:
        valid = ", ".join(repr(n) for n in ADAPTER_NAMES)
        raise ConfigurationError(f"unknown adapter {name!r}; valid names are {valid}")
    return key


def get_adapter(name: str) -> Adapter:
    """The adapter called ``name`` (``"chat"``, ``"json"`` or ``"markdown"``).

    Adapters are stateless, so a fresh instance is as good as a shared one.
    """
    return _ADAPTERS[_check_name(name)]()


def fallback_adapter(name: str) -> str:
    """The adapter name to retry with after ``name`` failed to parse a reply."""
    return _FALLBACKS[_check_name(name)]
