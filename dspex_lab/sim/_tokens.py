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


def prompt_tokens(contents: Iterable[str]) -> int:
    """Tokens of a messages list: each content's tokens plus :data:`MESSAGE_OVERHEAD`."""
    return sum(count_tokens(c) + MESSAGE_OVERHEAD for c in contents)


def truncate_to_tokens(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut right after its ``limit``-th token, and its token count.

    Returns the text unchanged when it has at most ``limit`` tokens.
    """
    count = 0
    for match in _TOKEN.finditer(text):
        count += 1
        if count == limit:
            return text[: match.end()], count
    return text, count
