"""``Store``: the recording side (writer + bus subscription) plus everything that reads."""

from __future__ import annotations

import atexit
import logging
import os
import threading
import warnings
from typing import Any

from dspex_lab.store._cache import CachedEntry, cache_row
from dspex_lab.store._errors import StoreError, StoreWarning
from dspex_lab.store._locking import CATALOG, FileAccess
from dspex_lab.store._migrations import migrate
from dspex_lab.store._query import _Reading, resolve_path
from dspex_lab.store._writer import SUBSCRIBED_KINDS, Writer

__all__ = ["Store", "open_store"]

_log = logging.getLogger("dspex_lab.store")


class Store(_Reading):
    """One DuckDB file holding every execution, run, trial and cached LM response.

    Opening creates the file (and its directory) if needed and migrates an older
    schema; a file written by a newer dspex_lab is refused. ``attach()`` starts
    recording what the event bus reports; ``flush()`` makes everything emitted
    so far durable; ``close()`` (also run at exit) flushes and stops.

    Thread-safe. While it records, the store keeps the file attached between
    flushes and lets go as soon as another process asks for it through the
    store's lock files (``StoreReader``, ``dspex-lab sql``, another recording
    process) or after a second without writes; see ``docs/store.md``.

    Args:
        path: the DuckDB file.
        flush_rows: write when this many rows are pending...
        flush_ms: ...or this long after the oldest pending row arrived; also the
            most a crash can lose (plus the flush in progress). ``flush()``, and
            every query this process makes through the store, writes everything
            pending at once. A flush has a fixed cost (~30 ms of CPU on a busy
            2-core machine, whatever its size): at 1,000 LM calls/s, flushing
            every 200 ms instead of 1 s cost 127 µs more CPU per call, ~15% of
            what the call itself costs, hence the default.
        max_queue: records waiting at most; beyond, emitters wait (backpressure).
        timeout: how long an operation waits for the file when another process
            holds it, in seconds.
    """

    def __init__(self, path: str | os.PathLike[str], *, flush_rows: int = 5000,
                 flush_ms: int = 1000, max_queue: int = 200_000, timeout: float = 10.0
                 ) -> None:
        resolved = resolve_path(path)
        if resolved.is_dir():
            raise StoreError(f"the store path {resolved} is a directory; give a file name "
                             f"such as {resolved / 'dspex.duckdb'}")
        resolved.parent.mkdir(parents=True, exist_ok=True)
        self._access = FileAccess(resolved)
        self._read_timeout = timeout
        self._lock = threading.Lock()
        self._subscription: Any = None
        self._closed = False
        self.schema_version_found, self.schema_version = self._open(timeout)
        self._writer = Writer(self._access, flush_rows=flush_rows, flush_ms=flush_ms,
                              max_queue=max_queue, session_timeout=timeout)
        self._max_queue = max_queue
        atexit.register(self._at_exit)

    def _open(self, timeout: float) -> tuple[int, int]:
        from dspex_lab import __version__

        with self._access.session(write=True, timeout=timeout) as con:
            return migrate(con, CATALOG, str(self._access.path), __version__)

    # -- recording ---------------------------------------------------------------------------
    def attach(self) -> None:
        """Record every LM call, program call, run and trial reported on the event bus."""
        from dspex_lab import events

        with self._lock:
            self._check_open()
            if self._subscription is None:
                self._subscription = events.subscribe(
                    self._writer.on_events, SUBSCRIBED_KINDS, overflow="block",
                    maxsize=min(self._max_queue, 20_000), name="store", batched=True)

    def detach(self) -> None:
        """Stop recording (events already received are still written)."""
        with self._lock:
            sub, self._subscription = self._subscription, None
        if sub is not None:
            sub.close()

    def record(self, kind: str, record: Any) -> None:
        """Queue one record as if it had been emitted on the bus as ``kind``
        (``"lm.completed"``, ``"program.failed"``, ``"trial.completed"``, ...).

        For records that do not travel on this process's bus (replays, other
        workers); everything on the bus is recorded by :meth:`attach`.
        """
        self._check_open()
        self._writer.add(kind, record)

    @property
    def attached(self) -> bool:
        return self._subscription is not None

    def flush(self, timeout: float = 30) -> None:
        """Make everything emitted before this call durable.

        Raises :class:`StoreError` if a write attempted meanwhile failed (the rows
        stay queued and are retried) or if ``timeout`` seconds pass.
        """
        sub = self._subscription
        if sub is not None and not sub.flush(timeout):
            raise StoreError(f"the store's event queue did not drain within {timeout:g} s")
        self._writer.flush(timeout)

    def close(self, timeout: float = 30) -> None:
        """Flush, stop recording and release the file. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        atexit.unregister(self._at_exit)
        self.detach()
        try:
            self._writer.flush(timeout)
        except StoreError as exc:
            lost = self._writer.pending
            message = f"closing the store lost {lost} rows that could not be written: {exc}"
            _log.error("store: %s", message)
            warnings.warn(message, StoreWarning, stacklevel=2)
        finally:
            self._writer.stop(timeout=5.0)
            self._access.close()

    def _at_exit(self) -> None:
        try:
            self.close(timeout=10)
        except Exception as exc:  # at exit there is nobody left to raise to
            _log.error("store: closing at exit failed: %r", exc)

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the store {self.path} is closed")

    def stats(self) -> dict[str, Any]:
        """Writer counters: rows written per table, pending rows, flushes, failures."""
        return self._writer.stats()

    def _before_read(self) -> None:
        # What this process recorded so far is visible to its own queries (a
        # query right after an evaluation must count all of it); only a writer
        # stuck for the whole read timeout lets a query read without it, loudly.
        if not self._closed and (self.attached or self._writer.pending):
            try:
                self.flush(self._read_timeout)
            except StoreError as exc:
                _log.warning("store: reading without %d unwritten records: %s",
                             self._writer.pending, exc)

    # -- cache ------------------------------------------------------------------------------
    def cache_put(self, key: str, entry: CachedEntry) -> None:
        """Persist one cache entry (queued through the writer)."""
        self._check_open()
        self._writer.add_cache(cache_row(key, entry))

    def cache_clear(self) -> None:
        """Delete every persisted cache entry (durable when this returns)."""
        self._check_open()
        self._writer.clear_cache()
        self._writer.flush(self._read_timeout * 3)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("recording" if self.attached else "open")
        return f"Store({str(self.path)!r}, {state})"


def open_store(path: str | os.PathLike[str] | None = None, **options: Any) -> Store:
    """A :class:`Store` at ``path``, else ``$DSPEX_STORE``, else ``./dspex.duckdb``."""
    return Store(resolve_path(path), **options)
