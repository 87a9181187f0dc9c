"""Content-addressed response cache for LM calls.

The key covers everything that determines a reply: the model, the messages,
the request parameters and a sample index (so that several samples of the
same prompt at temperature > 0 are distinct entries). A hit is free and
fast, but it carries the original call's cost and latency, because an
optimizer that saw cached calls as free would favour whatever it happened to
evaluate twice.

The backend is pluggable: :class:`MemoryCache` here; the store provides a
persistent one (entries live in the DuckDB file and are loaded into memory
on first use). The LM layer only sees the :class:`CacheBackend` protocol.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

__all__ = ["CacheBackend", "CachedResponse", "MemoryCache", "cache_key", "get_backend",
           "set_backend"]


@dataclass(frozen=True, slots=True)
class CachedResponse:
    """A stored reply and what producing it originally cost."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    latency_s: float
    model: str
    created_at: float
    finish_reason: str | None = None


class CacheBackend(Protocol):
    """Where cached replies live. Must be safe to call from the LM event loop
    (``get`` must not block on disk; ``put`` may queue)."""

    def get(self, key: str) -> CachedResponse | None: ...

    def put(self, key: str, entry: CachedResponse) -> None: ...

    def clear(self) -> None: ...


class MemoryCache:
    """A process-local cache (a dict behind a lock)."""

    def __init__(self) -> None:
        self._entries: dict[str, CachedResponse] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> CachedResponse | None:
        return self._entries.get(key)

    def put(self, key: str, entry: CachedResponse) -> None:
        with self._lock:
            self._entries[key] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def cache_key(model: str, messages: Any, params: Mapping[str, Any], sample: int) -> str:
    """A stable hex digest of what determines a reply."""
    payload = orjson.dumps([model, messages, params, sample], option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(payload, digest_size=16).hexdigest()


_backend: CacheBackend | None = None


def set_backend(backend: CacheBackend | None) -> None:
    """Install the cache every LM uses (None turns caching off)."""
    global _backend
    _backend = backend


def get_backend() -> CacheBackend | None:
    return _backend
