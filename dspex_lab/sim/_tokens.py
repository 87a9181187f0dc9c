"""The simulator's tokenizer: one token per word run or punctuation character.

Real tokenizers are irrelevant here; what matters is that counts are
deterministic, cheap, documented and grow with text length, so the prompt and
completion sizes (and so cost and latency) respond to demos, reasoning and
format the way real ones do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["MESSAGE_OVERHEAD", "count_tokens", "prompt_tokens", "truncate_to_tokens"]

_TOKEN = re.compile(r"\w+|[^\w\s]")

MESSAGE_OVERHEAD = 3
"""Tokens charged per chat message on top of its content (role and separators)."""


def count_tokens(text: str) -> int:
    """Number of matches of ``\\w+|[^\\w\\s]`` in ``text``."""
    return len(_TOKEN.findall(text))


_LONG = 64
_MAX_CACHED = 4096
_long_counts: dict[str, int] = {}


def _count_cached(text: str) -> int:
    """Token count, memoised for long texts: a program resends the same system message
    and demos with every request, so counting them once saves most of the work."""
    if len(text) < _LONG:
        return len(_TOKEN.findall(text))
    n = _long_counts.get(text)
    if n is None:
        if len(_long_counts) >= _MAX_CACHED:
            _long_counts.clear()
        n = _long_counts[text] = len(_TOKEN.findall(text))
    return n


def prompt_tokens(contents: Iterable[str]) -> int:
    """Tokens of a messages list: each content's tokens plus :data:`MESSAGE_OVERHEAD`."""
    return sum(_count_cached(c) + MESSAGE_OVERHEAD for c in contents)


def truncate_to_tokens(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut right after its ``limit``-th token, and whether anything was cut.

    Returns the text unchanged when it has at most ``limit`` tokens.
    """
    for count, match in enumerate(_TOKEN.finditer(text), start=1):
        if count == limit:
            if _TOKEN.search(text, match.end()) is None:
                return text, False
            return text[: match.end()], True
    return text, False
