"""The persistent LM response cache: what one entry holds, and how it is stored.

The LM layer keeps the cache in memory (a dict loaded once with
``Store.cache_load()``) and persists new entries with ``Store.cache_put``,
which goes through the writer like every other row. The table is
append-only (no index to maintain on every flush); when a key was written
more than once, the newest row wins on load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dspex_lab.lm._cache import CachedResponse

if TYPE_CHECKING:
    import duckdb

__all__ = ["CachedEntry", "cache_row", "load_cache"]


CachedEntry = CachedResponse
"""One cached completion, with what the *original* call cost and how long it took
(a hit is reported at cost 0 and its real latency, but objectives use these).
The LM layer's own record type, so entries pass between the two unchanged."""


def cache_row(key: str, entry: CachedEntry) -> tuple[Any, ...]:
    """A ``lm_cache`` row (column order of the table; the writer blanks secrets in the
    text when it converts the batch)."""
    return (key, entry.model, entry.text, entry.prompt_tokens, entry.completion_tokens,
            entry.cost, entry.latency_s, entry.created_at)


_LOAD_SQL = """
SELECT key, text, prompt_tokens, completion_tokens, cost, latency_s, model,
       epoch_us(created_at) / 1e6 AS created_at
FROM (SELECT DISTINCT ON (key) * FROM lm_cache ORDER BY key, created_at DESC)
"""


def load_cache(con: duckdb.DuckDBPyConnection) -> dict[str, CachedEntry]:
    """Every entry of the attached store's cache (newest row per key)."""
    result: dict[str, CachedEntry] = {}
    cur = con.execute(_LOAD_SQL)
    while True:
        rows = cur.fetchmany(10_000)
        if not rows:
            return result
        for key, text, p_tok, c_tok, cost, latency, model, created in rows:
            result[key] = CachedEntry(text, int(p_tok or 0), int(c_tok or 0), cost,
                                      float(latency or 0.0), model or "", float(created or 0.0))
