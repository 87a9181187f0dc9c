"""The writer: records buffered in memory, appended to the file in columnar batches.

Three threads, and nothing on the emitting side touches the disk:

- the bus subscriber thread (``on_events``) only appends each record to a list;
- the *converter* thread takes the buffer every ``flush_rows`` rows or
  ``flush_ms`` after the oldest pending row (or when ``flush()`` asks), at most
  ``_CHUNK_ROWS`` records at a time, and builds one Arrow table per kind of
  row (``_rows``);
- the *committer* thread inserts converted chunks inside one transaction
  while the converter prepares the next one (Python work and DuckDB work
  overlap on two cores), and commits as soon as the converter has nothing
  more due, the transaction reaches ``_TX_ROWS`` rows or has been open for a
  flush interval (``_TX_S`` at most), or another process waits for the file.
  Never one INSERT per row. While DuckDB works, the converter sleeps 0.1 ms
  between columns (the compiled converter: every ``_rows._COMPILED_PAUSE_ROWS``
  rows), so that DuckDB's client, which needs the GIL a few times per
  statement, is not held up by long C-level loops (``Writer._pause``).

Why chunks share a transaction: DuckDB writes a transaction whose WAL would
pass its checkpoint threshold (16 MB, ~20,000 execution rows) straight into
the file at commit, compressed, instead of into the WAL and again at the next
checkpoint (DuckDB alone on the 2-core VM: ~6.5 µs per execution row for one
200,000-row transaction, ~10 µs in 20,000-row transactions). So a burst (an
evaluation replayed, a backlog after the file was busy) is written in
transactions of a few chunks; ``_TX_ROWS`` bounds what DuckDB holds
uncommitted (peak memory), and in the whole pipeline larger transactions
measured no faster. A steady trickle still commits every chunk, so a crash
loses what it did before. Letting go early when a reader waits keeps
cross-process reads as prompt as with small transactions.

Backpressure: at most ``max_queue`` records wait in the buffer and
``_READY_MAX`` converted chunks wait for the committer; beyond that ``on_events`` blocks, the
bus queue fills and ``emit`` blocks. Records of the open transaction stay
referenced until it commits (their Arrow tables are dropped once inserted and
rebuilt only for a retry), so memory stays bounded; nothing is dropped.

Failures: the committer keeps the chunks of a transaction that failed and
retries them with backoff (0.25 s doubling to 5 s; at once when ``flush()`` is
called), after a :class:`StoreWarning` (once per run of failures) and a log
line per attempt. ``flush()`` raises :class:`StoreError` when an attempt made
after it was called fails. Records that cannot be converted at all (a field
of the wrong type that even coercion cannot fix) are counted in
``bad_records`` and logged once; converting them again could never succeed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.store import _rows
from dspex_lab.store._errors import StoreError, StoreWarning
from dspex_lab.store._schema import TABLES, TableSpec

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from dspex_lab.events import Event
    from dspex_lab.store._locking import FileAccess

__all__ = ["SUBSCRIBED_KINDS", "Writer"]

_log = logging.getLogger("dspex_lab.store")

SUBSCRIBED_KINDS = ("lm.completed", "lm.failed", "program.completed", "program.failed",
                    "program.parse_fallback", "run.*", "trial.*", "store.*")

# append streams: LM attempts, program calls, parse fallbacks (-> executions), cache rows
_APPEND = ("lm", "program", "fallback", "lm_cache")
_UPSERT_BY_KIND = {"store.program": "programs", "store.space": "variable_spaces",
                   "store.deployment": "deployments", "store.alert": "alerts"}
_UPSERT = ("runs", "trials", "programs", "variable_spaces", "deployments", "alerts")
_STREAMS = (*_APPEND, "upserts", "clear")
_HOT_STREAMS = {"lm.completed": "lm", "lm.failed": "lm", "program.completed": "program",
                "program.failed": "program"}
_COLUMNS = {name: tuple((c.name, c.kind) for c in TABLES[name].columns) for name in _UPSERT}
_POLL_HELD_S = 0.02
# Records converted at a time: small enough that the first INSERT starts early and the
# two threads overlap, large enough that the per-statement cost stays small.
_CHUNK_ROWS = 20_000
# A transaction stops growing past this many rows (DuckDB holds them uncommitted: peak
# memory ~130 MB in bench/store_write.py, ~210 MB at 122,880) or after one flush interval
# but at most this long (readers in this process wait for it).
_TX_ROWS = 40_960
_TX_S = 3.0
# Converted chunks that may wait for the committer while it has a transaction open or
# commits one (the converter goes on while DuckDB compresses); none while it retries.
# Two: with the compiled converter, converting a chunk (~0.07 s for 20,000 rows) is
# quicker than DuckDB's COMMIT of a transaction (~0.18 s for three chunks), so the
# converter can be two chunks ahead when the next transaction opens (bench/store_write.py:
# +5% against one, ~17 MB more peak memory).
_READY_MAX = 2
# How long the converter sleeps between columns while DuckDB works (Writer._pause): more
# than a thread's wake-up latency, so the waiting thread gets the GIL in that window.
_PAUSE_S = 0.0001


def _cache_table(rows: list[tuple[Any, ...]]) -> pa.Table:
    # a secret a reply happens to contain is blanked like everywhere else in the file
    rows = [(r[0], r[1], r[2] if not isinstance(r[2], str) else _rows.scrub_text(r[2]),
             *r[3:]) for r in rows]
    return _to_arrow(TABLES["lm_cache"], rows)


# stream -> (builder, SELECT over a registered batch); LM attempts and program calls go
# in one INSERT, parse fallbacks in a second one (they look their LM call up)
_EXECUTION_BUILDERS: tuple[tuple[str, Callable[[list[Any]], pa.Table], str], ...] = (
    ("lm", _rows.lm_table, _rows.LM_SELECT),
    ("program", _rows.program_table, _rows.PROGRAM_SELECT),
)


@dataclass
class _Batch:
    """One chunk of records, converted for one INSERT per table.

    The records stay until the transaction holding the chunk commits; ``tables`` and
    ``statements`` exist between conversion and insertion (``converted``), and are built
    again from the records if the transaction has to be retried.
    """

    appends: dict[str, list[Any]]
    upserts: dict[str, dict[str, tuple[Any, ...]]]
    clear_cache: bool
    upto: dict[str, int]                      # counters reached once this batch is durable
    tables: dict[str, pa.Table] = field(default_factory=dict)  # name -> Arrow batch
    statements: list[str] = field(default_factory=list)        # run in order
    rows: dict[str, int] = field(default_factory=dict)  # rows per table it writes
    convert_s: float = 0.0
    converted: bool = False
    full: bool = False  # taken at the size limit: more records were waiting (a backlog)


class Writer:
    """Buffers records and owns every write to one store file (thread-safe)."""

    def __init__(self, access: FileAccess, *, flush_rows: int, flush_ms: int, max_queue: int,
                 session_timeout: float = 10.0, idle_s: float = 1.0) -> None:
        if flush_rows < 1 or flush_ms < 1 or max_queue < flush_rows:
            raise ValueError("need flush_rows >= 1, flush_ms >= 1 and max_queue >= flush_rows")
        self._access = access
        self._flush_rows = flush_rows
        self._flush_s = flush_ms / 1000.0
        self._max_queue = max_queue
        self._batch_cap = max(flush_rows, _CHUNK_ROWS)
        # a transaction stays open one flush interval at most: what a crash can lose is
        # still about one interval plus the write in progress
        self._tx_s = min(_TX_S, self._flush_s)
        self._session_timeout = session_timeout
        self._idle_s = idle_s
        # the producers' hot path takes the plain lock (a C call); waiting and notifying
        # go through the condition built on it
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        # buffer (guarded by _lock); the lists are only ever changed in place, so the hot
        # path can keep a reference to its list per event kind
        self._appends: dict[str, list[Any]] = {t: [] for t in _APPEND}
        self._hot = {kind: self._appends[stream] for kind, stream in _HOT_STREAMS.items()}
        self._upserts: dict[str, dict[str, tuple[Any, ...]]] = {t: {} for t in _UPSERT}
        self._clear_cache = False
        self._pending = 0
        self._oldest: float | None = None
        # progress: items added per stream (append streams: taken + buffered), and items
        # made durable (or dropped)
        self._added = {"upserts": 0, "clear": 0}
        self._done = dict.fromkeys(_STREAMS, 0)
        self._taken = dict.fromkeys(_APPEND, 0)
        self._requests = 0   # flush() calls so far
        self._served = 0     # requests already covered by a taken batch
        # handoff converter -> committer: converted batches waiting, oldest first
        self._ready: deque[_Batch] = deque()
        self._converting = False  # a batch was taken and is not handed off yet
        self._converting_full = False  # ... and it was taken at the size limit
        # the committer takes a handed-off batch at once (it is idle or has a transaction
        # open); False while it opens the file or retries, so that only its batch, the
        # converter's and the buffer are held
        self._accepting = True
        # committer state
        self._attempt = 0
        self._failed_attempt = 0
        self._failures_in_row = 0
        self._last_error: BaseException | None = None
        self._stop = False
        self._duckdb_busy = False
        self._stop_after = 0
        self._gave_up = False
        self._threads: list[threading.Thread] = []
        self._blocked_warned = False
        # statistics
        self.rows_written = dict.fromkeys(("executions", "lm_cache", *_UPSERT), 0)
        self.rows_lost = 0
        self.flushes = 0
        self.failed_flushes = 0
        self.bad_records = 0
        self.last_flush_s = 0.0
        self.max_flush_s = 0.0
        self.convert_s = 0.0  # total time spent converting records to Arrow
        self.write_s = 0.0    # total time spent in successful writes

    # -- producers ---------------------------------------------------------------------------
    def on_events(self, events: list[Event]) -> None:
        """Bus callback for a batch of events (``subscribe(..., batched=True)``): the
        LM attempts and program calls among them are kept under one lock acquisition
        (per batch, not per event: ~1 µs less per row under load); the rest, in order,
        by :meth:`add`. Parse fallbacks still follow their LM attempts (they come
        later in the batch, or in a later one)."""
        hot = self._hot
        others = []
        with self._lock:
            for event in events:
                items = hot.get(event.kind)
                if items is None:
                    others.append(event)
                    continue
                if self._pending >= self._max_queue:
                    self._wait_for_room()
                items.append(event.record)
                self._added_one()
        for event in others:
            self._add_other(event.kind, event.record)

    def add(self, kind: str, record: Any) -> None:
        """Keep one record reported as ``kind``; it is converted in bulk when written.

        Records must not change after they are emitted (the bus contract).
        """
        items = self._hot.get(kind)
        if items is None:
            self._add_other(kind, record)
            return
        # LM attempts and program calls: the hot path (one per call), kept to a lock, an
        # append and a counter; everything else happens on the writer's threads
        with self._lock:
            if self._pending >= self._max_queue:
                self._wait_for_room()
            items.append(record)
            self._pending += 1
            if self._oldest is None or self._pending == self._flush_rows:
                self._wake()

    def _add_other(self, kind: str, record: Any) -> None:
        try:
            if kind == "program.parse_fallback":
                if isinstance(record, Mapping):
                    self._add_append("fallback", dict(record))
            elif kind.startswith("run."):
                self.add_upsert("runs", record)
            elif kind.startswith("trial."):
                self.add_upsert("trials", record)
            elif kind in _UPSERT_BY_KIND:
                self.add_upsert(_UPSERT_BY_KIND[kind], record)
        except Exception as exc:  # a malformed record must not stop recording
            self._bad_record(kind, exc)

    def _wake(self) -> None:
        # caller holds the lock: the first record of a batch starts its flush interval,
        # the flush_rows-th makes it due
        if self._oldest is None:
            self._oldest = time.monotonic()
            if not self._threads:
                self._start_threads()
        self._cond.notify_all()

    def _bad_record(self, kind: str, exc: BaseException) -> None:
        self.bad_records += 1
        if self.bad_records == 1:
            _log.warning("store: could not convert a %s record (%r); further bad records "
                         "are counted in stats()['bad_records']", kind, exc)

    def _wait_for_room(self) -> None:
        # caller holds the lock
        while self._pending >= self._max_queue and not self._stop:
            if not self._blocked_warned:
                self._blocked_warned = True
                _log.info("store: %d records waiting to be written; callers now wait for "
                             "the disk (last error: %r)", self._pending, self._last_error)
            self._cond.wait(0.5)

    def _added_one(self) -> None:
        # caller holds the lock
        self._pending += 1
        if self._oldest is None or self._pending == self._flush_rows:
            self._wake()
        elif not self._threads:
            self._start_threads()

    def _add_append(self, stream: str, item: Any) -> None:
        with self._lock:
            if self._pending >= self._max_queue:
                self._wait_for_room()
            self._appends[stream].append(item)
            self._added_one()

    def add_cache(self, row: tuple[Any, ...]) -> None:
        self._add_append("lm_cache", row)

    def add_upsert(self, table: str, record: Any) -> None:
        key, row = _rows.upsert_row(table, _COLUMNS[table], record)
        with self._lock:
            if self._pending >= self._max_queue:
                self._wait_for_room()
            rows = self._upserts[table]
            fresh = key not in rows
            rows.pop(key, None)  # insertion order = order of the latest update
            rows[key] = row
            self._added["upserts"] += 1
            if fresh:
                self._added_one()
            elif not self._threads:
                self._start_threads()

    def clear_cache(self) -> None:
        """Forget buffered cache rows and delete the table's rows with the next write."""
        with self._lock:
            items = self._appends["lm_cache"]
            dropped = len(items)
            items.clear()
            self._pending -= dropped
            self._done["lm_cache"] += dropped
            self._taken["lm_cache"] += dropped
            self._clear_cache = True
            self._added["clear"] += 1
            if self._oldest is None:
                self._oldest = time.monotonic()
            self._cond.notify_all()
            if not self._threads:
                self._start_threads()

    # -- flushing ----------------------------------------------------------------------------
    def _added_now(self) -> dict[str, int]:
        # caller holds the lock
        added = {s: self._taken[s] + len(self._appends[s]) for s in _APPEND}
        added.update(self._added)
        return added

    def flush(self, timeout: float) -> None:
        """Return once everything added before the call is durable; raise
        :class:`StoreError` if a write attempted meanwhile failed, or on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = self._added_now()
            if self._caught_up(target):
                return
            first_attempt = self._attempt + 1
            self._requests += 1
            if not self._threads:
                self._start_threads()
            self._cond.notify_all()
            while not self._caught_up(target):
                if self._failed_attempt >= first_attempt or self._gave_up:
                    raise StoreError(
                        f"could not write to the store {self._access.path}: "
                        f"{self._last_error}. {self.pending} records are kept in memory and "
                        f"retried.") from self._last_error
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StoreError(
                        f"the store {self._access.path} did not finish writing within "
                        f"{timeout:g} s ({self.pending} records pending)")
                self._cond.wait(remaining)

    def _caught_up(self, target: Mapping[str, int]) -> bool:
        return all(self._done[s] >= n for s, n in target.items())

    @property
    def pending(self) -> int:
        """Records not yet durable (buffered, being converted or being written)."""
        added = self._added_now()
        return sum(added[s] - self._done[s] for s in (*_APPEND, "upserts"))

    def _start_threads(self) -> None:
        # caller holds the lock
        if self._threads or self._stop:
            return
        self._threads = [
            threading.Thread(target=self._convert_loop, name="dspex-store-convert", daemon=True),
            threading.Thread(target=self._commit_loop, name="dspex-store-commit", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        """Stop after one last write attempt of whatever is pending."""
        with self._cond:
            self._stop = True
            self._stop_after = self._attempt + 1
            self._cond.notify_all()
            threads = list(self._threads)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    # -- converter thread --------------------------------------------------------------------
    def _convert_loop(self) -> None:
        _rows.set_pause(self._pause)
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    self._cond.notify_all()
                    return
            self._convert(batch)
            with self._cond:
                while ((len(self._ready) >= _READY_MAX or not self._accepting)
                       and not self._gave_up):
                    self._cond.wait()
                self._converting = False
                if self._gave_up:
                    self._lose([batch])
                    continue
                self._ready.append(batch)
                self._cond.notify_all()

    def _due(self) -> bool:
        # caller holds the lock: whether the buffer should be taken now
        if self._pending <= 0 and not self._clear_cache:
            return False
        assert self._oldest is not None
        return (self._stop or self._requests > self._served
                or self._pending >= self._flush_rows
                or time.monotonic() >= self._oldest + self._flush_s)

    def _next_batch(self) -> _Batch | None:
        # caller holds the lock; waits until a batch is due (None: stopping, nothing left)
        while True:
            if self._gave_up:
                return None
            if self._pending <= 0 and not self._clear_cache:
                self._served = self._requests
                if self._stop:
                    return None
                self._cond.wait()
                continue
            if self._due():
                return self._take()
            assert self._oldest is not None
            self._cond.wait(max(0.0, self._oldest + self._flush_s - time.monotonic()))

    def _take(self) -> _Batch:
        # caller holds the lock
        appends: dict[str, list[Any]] = {}
        upto: dict[str, int] = {}
        total = sum(len(self._appends[s]) for s in _APPEND)
        for stream in _APPEND:
            items = self._appends[stream]
            # at most batch_cap records per batch (the next INSERT starts sooner), shared
            # among the streams in proportion so none of them waits behind another
            take = len(items) if total <= self._batch_cap else \
                -(-len(items) * self._batch_cap // total)
            appends[stream] = items[:take]
            del items[:take]
            self._taken[stream] += len(appends[stream])
            upto[stream] = self._taken[stream]
        upserts = self._upserts
        self._upserts = {t: {} for t in _UPSERT}
        upto["upserts"] = self._added["upserts"]
        upto["clear"] = self._added["clear"]
        batch = _Batch(appends, upserts, self._clear_cache, upto, full=total > self._batch_cap)
        self._converting_full = batch.full
        self._clear_cache = False
        if not batch.full:  # a flush() waits for what is left behind too: take it next
            self._served = self._requests
        self._pending -= sum(map(len, appends.values())) + sum(map(len, upserts.values()))
        self._oldest = time.monotonic() if self._pending else None
        self._converting = True
        self._cond.notify_all()  # room in the buffer
        return batch

    def _convert(self, batch: _Batch) -> None:
        """Build the batch's Arrow tables and statements (Python work, no lock held)."""
        started = time.perf_counter()
        try:
            self._convert_rows(batch)
        finally:
            batch.convert_s += time.perf_counter() - started

    def _convert_rows(self, batch: _Batch) -> None:
        _rows.refresh_secrets()
        batch.tables, batch.statements, batch.rows = {}, [], {}
        selects = []
        executions = 0
        for stream, builder, select in _EXECUTION_BUILDERS:
            table = self._build(batch, stream, builder)
            if table is not None:
                name = f"_dspex_{stream}"
                batch.tables[name] = table
                selects.append(f"({select.format(batch=name)})")
                executions += table.num_rows
        if selects:
            batch.statements.append("INSERT INTO executions BY NAME "
                                    + " UNION ALL BY NAME ".join(selects))
        table = self._build(batch, "fallback", _rows.parse_fallback_table)
        if table is not None:
            batch.tables["_dspex_fallback"] = table
            batch.statements.append("INSERT INTO executions BY NAME " +
                                    _rows.PARSE_FALLBACK_SELECT.format(batch="_dspex_fallback"))
            executions += table.num_rows
        batch.rows["executions"] = executions
        table = self._build(batch, "lm_cache", _cache_table)
        if table is not None:
            batch.tables["_dspex_cache"] = table
            batch.statements.append("INSERT INTO lm_cache BY NAME SELECT * FROM _dspex_cache")
            batch.rows["lm_cache"] = table.num_rows
        for name, upsert_rows in batch.upserts.items():
            if upsert_rows:
                batch.tables[f"_dspex_{name}"] = _to_arrow(TABLES[name],
                                                           list(upsert_rows.values()))
                batch.statements.append(f"INSERT OR REPLACE INTO {name} BY NAME "
                                        f"SELECT * FROM _dspex_{name}")
                batch.rows[name] = len(upsert_rows)
        batch.converted = True

    def _build(self, batch: _Batch, stream: str, builder: Callable[[list[Any]], pa.Table]
               ) -> pa.Table | None:
        """``builder`` over the batch's items of ``stream`` (None for no items); records
        that make it fail are dropped from the batch and counted, once."""
        items = batch.appends[stream]
        if not items:
            return None
        try:
            return builder(items)
        except Exception:
            good = []
            for item in items:
                try:
                    builder([item])
                except Exception as exc:
                    self._bad_record(stream, exc)
                else:
                    good.append(item)
            batch.appends[stream] = good  # a retry converts only these again
            return builder(good) if good else None

    # -- committer thread --------------------------------------------------------------------
    def _commit_loop(self) -> None:
        access = self._access
        try:
            while True:
                with self._cond:
                    if not self._ready:
                        if self._stop and not self._threads[0].is_alive():
                            return
                        # while holding the file, look for waiting readers every 20 ms
                        self._cond.wait(_POLL_HELD_S if access.held else 0.1)
                    group = [self._take_ready()] if self._ready else []
                    self._accepting = not group
                if group:
                    self._commit_with_retries(group)
                    with self._cond:
                        self._accepting = True
                        self._cond.notify_all()
                # outside the lock: letting go checkpoints, producers must not wait
                access.maybe_release(self._idle_s)
                with self._cond:
                    if self._gave_up:
                        return
        finally:
            access.release()

    def _take_ready(self) -> _Batch:
        # caller holds the lock and a batch is ready
        batch = self._ready.popleft()
        self._cond.notify_all()  # the converter may hand over its next batch
        return batch

    def _commit_with_retries(self, group: list[_Batch]) -> None:
        while True:
            with self._cond:
                self._attempt += 1
                attempt = self._attempt
                requests_at_start = self._requests
            started = time.perf_counter()
            try:
                self._write(group)
            except Exception as exc:
                delay = self._failed(group, attempt, exc)
                with self._cond:
                    if self._stop and self._attempt >= self._stop_after:
                        self._gave_up = True
                        self._lose(group)
                        self._cond.notify_all()
                        return
                    deadline = time.monotonic() + delay
                    while (self._requests == requests_at_start and not self._stop
                           and time.monotonic() < deadline):
                        self._cond.wait(deadline - time.monotonic())
                continue
            self._succeeded(group, time.perf_counter() - started)
            return

    def _write(self, group: list[_Batch]) -> None:
        """One transaction: the group's batches, then (appended to ``group``) whatever the
        converter finishes while it is open; see the module docstring for when it ends."""
        if not any(b.statements or b.clear_cache or not b.converted for b in group):
            return
        with self._access.session(write=True, timeout=self._session_timeout,
                                  hold=True) as con:
            with self._duckdb_working():
                con.execute("BEGIN TRANSACTION")
            opened = time.monotonic()
            with self._cond:  # a retry commits what it has; otherwise take more as it comes
                self._accepting = not self._failures_in_row
                self._cond.notify_all()
            rows = 0
            i = 0
            while i < len(group):
                with self._duckdb_working():
                    rows += self._insert(con, group[i])
                i += 1
                if i == len(group):
                    more = self._next_in_transaction(rows, opened)
                    if more is not None:
                        group.append(more)
            # while DuckDB compresses the rows into the file, the converter may hand over
            # its next chunks: they open the next transaction
            with self._duckdb_working():
                con.execute("COMMIT")

    @contextlib.contextmanager
    def _duckdb_working(self) -> Iterator[None]:
        """Mark DuckDB calls on the committer thread: meanwhile the converter pauses
        between columns (see :meth:`_pause`)."""
        self._duckdb_busy = True
        try:
            yield
        finally:
            self._duckdb_busy = False

    def _pause(self) -> None:
        """Called by the converter between columns. DuckDB's Python client takes the GIL
        back a few times per statement (binding the Arrow scans, and after every task to
        check for Ctrl-C) and to return; while the converter runs a C-level loop over a
        column, CPython makes it wait for the 5 ms switch interval and then for the loop
        to end. On the 2-core VM with nothing else running, DuckDB's thread sat 1.2 s of
        its 1.7 s of INSERTs for 200,000 rows waiting for the GIL: the two halves ran one
        after the other. Sleeping here while DuckDB works hands the GIL over within a
        column. Measured at load 2-3: DuckDB's GIL waits in its INSERTs 0.06-0.11 s
        instead of 0.14-0.24 s per 200,000 rows; in a paired run of
        bench/store_write.py, 69,000 instead of 54,000 rows/s at 13.9 instead of
        18.0 µs of CPU per row (fewer futile GIL hand-offs)."""
        if self._duckdb_busy:
            time.sleep(_PAUSE_S)

    def _insert(self, con: duckdb.DuckDBPyConnection, batch: _Batch) -> int:
        """Run one batch's statements; its Arrow tables are dropped afterwards."""
        if not batch.converted:  # a retry: the tables were dropped after the first try
            self._convert(batch)
        for name, table in batch.tables.items():
            con.register(name, table)
        try:
            if batch.clear_cache:
                con.execute("DELETE FROM lm_cache")
            for statement in batch.statements:
                con.execute(statement)
        finally:
            for name in batch.tables:
                con.unregister(name)
        batch.tables, batch.statements, batch.converted = {}, [], False
        return sum(batch.rows.values())

    def _next_in_transaction(self, rows: int, opened: float) -> _Batch | None:
        """The next converted batch for the open transaction, waiting while the converter
        prepares one; None when the transaction should commit now."""
        with self._cond:
            while True:
                if (not self._accepting or self._gave_up or rows >= _TX_ROWS
                        or time.monotonic() - opened >= self._tx_s or not self._backlog(rows)
                        or self._reader_waiting()):
                    return None
                if self._ready:
                    return self._take_ready()
                if not (self._converting or self._due()):
                    return None  # nothing more is coming for now: commit
                self._cond.wait(_POLL_HELD_S)

    def _backlog(self, rows: int) -> bool:
        """Whether records arrive faster than single chunks are written (a burst): only
        then does a transaction take more chunks. A steady trickle commits every chunk,
        so a crash still loses no more than a flush interval and the chunk in hand."""
        # caller holds the lock
        return (rows >= self._batch_cap or self._pending >= self._batch_cap
                or (self._converting and self._converting_full)
                or any(batch.full for batch in self._ready))

    def _reader_waiting(self) -> bool:
        """Whether another process queues for the file (a reader, or a writer): then
        the transaction commits so the writer can let go (see ``_locking``)."""
        return self._access.someone_waiting()

    def _succeeded(self, group: list[_Batch], seconds: float) -> None:
        with self._cond:
            for batch in group:
                for stream, upto in batch.upto.items():
                    self._done[stream] = max(self._done[stream], upto)
                for table, n in batch.rows.items():
                    self.rows_written[table] += n
                self.convert_s += batch.convert_s
                batch.appends = {}  # the records can go now
            self.flushes += 1
            self.write_s += seconds
            self.last_flush_s = seconds
            self.max_flush_s = max(self.max_flush_s, seconds)

            recovered = self._failures_in_row
            self._failures_in_row = 0
            self._blocked_warned = False
            self._cond.notify_all()
        if recovered:
            _log.warning("store: writing to %s works again after %d failed attempts",
                         self._access.path, recovered)

    def _failed(self, group: list[_Batch], attempt: int, exc: BaseException) -> float:
        with self._cond:
            first = self._failures_in_row == 0
            pending = self.pending
        rows = sum(sum(b.rows.values()) for b in group)
        message = (f"dspex_lab could not write {rows} rows to the store "
                   f"{self._access.path}: {exc}. They are kept in memory ({pending} records "
                   f"pending) and retried every few seconds.")
        _log.warning("store: %s", message)
        if first:  # warn before flush() callers can see the failure
            # (warnings turned into errors must not kill the writer)
            with contextlib.suppress(Exception):
                warnings.warn(message, StoreWarning, stacklevel=2)
        with self._cond:
            self._accepting = False  # until the retry has the file: hold no more chunks
            self._failed_attempt = attempt
            self._last_error = exc
            self._failures_in_row += 1
            self.failed_flushes += 1
            delay = min(5.0, 0.25 * 2.0 ** (self._failures_in_row - 1))
            self._cond.notify_all()
        return delay

    def _lose(self, group: list[_Batch]) -> None:
        # caller holds the lock: give up on batches (stopping and writes keep failing)
        for batch in group:
            self.rows_lost += sum(batch.rows.values())
            for stream, upto in batch.upto.items():
                self._done[stream] = max(self._done[stream], upto)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                "pending": self.pending,
                "rows_written": dict(self.rows_written),
                "rows_lost": self.rows_lost,
                "flushes": self.flushes,
                "failed_flushes": self.failed_flushes,
                "failing": self._failures_in_row > 0,
                "last_error": None if self._last_error is None else str(self._last_error),
                "bad_records": self.bad_records,
                "last_flush_s": self.last_flush_s,
                "max_flush_s": self.max_flush_s,
                "flush_interval_s": self._flush_s,
                "convert_s": self.convert_s,
                "write_s": self.write_s,
                "converter": _rows.converter(),
            }


# -- rows -> Arrow (low-volume tables) -------------------------------------------------------

def _to_arrow(spec: TableSpec, rows: list[tuple[Any, ...]]) -> pa.Table:
    import pyarrow as pa

    columns = list(zip(*rows, strict=True))
    arrays = [_array(c.kind, values) for c, values in zip(spec.columns, columns, strict=True)]
    return pa.Table.from_arrays(arrays, names=list(spec.names))


def _array(kind: str, values: tuple[Any, ...]) -> pa.Array:
    import pyarrow as pa

    try:
        return _typed_array(kind, values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        # a record with a wrong type in one field: coerce value by value (NULL if hopeless)
        return _typed_array(kind, tuple(_coerce(kind, v) for v in values))


def _typed_array(kind: str, values: tuple[Any, ...]) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if kind in ("str", "json"):
        return pa.array(values, pa.string())
    if kind == "float":
        return pa.array(values, pa.float64())
    if kind == "int":
        return pa.array(values, pa.int64())
    if kind == "bool":
        return pa.array(values, pa.bool_())
    seconds = pa.array(values, pa.float64())
    micros = pc.multiply(seconds, 1e6).cast(pa.int64(), safe=False)
    return micros.cast(pa.timestamp("us"))


def _coerce(kind: str, value: Any) -> Any:
    if value is None:
        return None
    try:
        if kind in ("str", "json"):
            return value if isinstance(value, str) else _rows.to_json(value)
        if kind in ("float", "ts"):
            return float(value)
        if kind == "int":
            return int(value)
        if kind == "bool":
            return bool(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return None
