"""The writer: records buffered in memory, appended to the file in columnar batches.

Three threads, and nothing on the emitting side touches the disk:

- the bus subscriber thread (``on_event``) only appends each record to a list;
- the *converter* thread takes the buffer every ``flush_rows`` rows or
  ``flush_ms`` after the oldest pending row (or when ``flush()`` asks) and
  builds one Arrow table per kind of row (``_rows``);
- the *committer* thread writes a converted batch in one transaction inside a
  short file session (``_locking``), while the converter prepares the next
  one: Python work and DuckDB work overlap on two cores. Never one INSERT
  per row.

Backpressure: at most ``max_queue`` records wait in the buffer and one
converted batch waits for the committer; beyond that ``on_event`` blocks,
the bus queue fills and ``emit`` blocks. Memory stays bounded; nothing is
dropped.

Failures: the committer keeps a batch whose write failed and retries it with
backoff (0.25 s doubling to 5 s; at once when ``flush()`` is called), after a
:class:`StoreWarning` (once per run of failures) and a log line per attempt.
``flush()`` raises :class:`StoreError` when an attempt made after it was
called fails. Records that cannot be converted at all (a field of the wrong
type that even coercion cannot fix) are counted in ``bad_records`` and logged
once; converting them again could never succeed.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.store import _rows
from dspex_lab.store._errors import StoreError, StoreWarning
from dspex_lab.store._schema import TABLES, TableSpec

if TYPE_CHECKING:
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
    appends: dict[str, list[Any]]
    upserts: dict[str, dict[str, tuple[Any, ...]]]
    clear_cache: bool
    upto: dict[str, int]                      # counters reached once this batch is durable
    tables: dict[str, pa.Table] = field(default_factory=dict)  # name -> Arrow batch
    statements: list[str] = field(default_factory=list)        # run in order
    rows: dict[str, int] = field(default_factory=dict)  # rows per table it writes
    convert_s: float = 0.0


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
        self._batch_cap = max(flush_rows, 20_000)
        self._session_timeout = session_timeout
        self._idle_s = idle_s
        self._cond = threading.Condition(threading.Lock())
        # buffer (guarded by _cond)
        self._appends: dict[str, list[Any]] = {t: [] for t in _APPEND}
        self._upserts: dict[str, dict[str, tuple[Any, ...]]] = {t: {} for t in _UPSERT}
        self._clear_cache = False
        self._pending = 0
        self._oldest: float | None = None
        # progress: per stream, items added and items made durable (or dropped)
        self._added = dict.fromkeys(_STREAMS, 0)
        self._done = dict.fromkeys(_STREAMS, 0)
        self._taken = dict.fromkeys(_APPEND, 0)
        self._requests = 0   # flush() calls so far
        self._served = 0     # requests already covered by a taken batch
        # handoff converter -> committer (one batch at most)
        self._ready: _Batch | None = None
        self._committing = False
        # committer state
        self._attempt = 0
        self._failed_attempt = 0
        self._failures_in_row = 0
        self._last_error: BaseException | None = None
        self._stop = False
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
    def on_event(self, event: Event) -> None:
        """Bus callback (see :meth:`add`)."""
        self.add(event.kind, event.record)

    def add(self, kind: str, record: Any) -> None:
        """Keep one record reported as ``kind``; it is converted in bulk when written.

        Records must not change after they are emitted (the bus contract).
        """
        stream = _HOT_STREAMS.get(kind)
        if stream is not None:  # LM attempts and program calls: the hot path, kept short
            with self._cond:
                if self._pending >= self._max_queue:
                    self._wait_for_room()
                self._appends[stream].append(record)
                self._added[stream] += 1
                self._pending += 1
                if self._oldest is None:
                    self._oldest = time.monotonic()
                    self._cond.notify_all()
                    if not self._threads:
                        self._start_threads()
                elif self._pending == self._flush_rows:
                    self._cond.notify_all()
            return
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

    def _bad_record(self, kind: str, exc: BaseException) -> None:
        self.bad_records += 1
        if self.bad_records == 1:
            _log.warning("store: could not convert a %s record (%r); further bad records "
                         "are counted in stats()['bad_records']", kind, exc)

    def _wait_for_room(self) -> None:
        # caller holds self._cond
        while self._pending >= self._max_queue and not self._stop:
            if not self._blocked_warned:
                self._blocked_warned = True
                _log.info("store: %d records waiting to be written; callers now wait for "
                             "the disk (last error: %r)", self._pending, self._last_error)
            self._cond.wait(0.5)

    def _added_one(self, stream: str) -> None:
        # caller holds self._cond
        self._added[stream] += 1
        self._pending += 1
        if self._oldest is None:
            self._oldest = time.monotonic()
            self._cond.notify_all()
        elif self._pending == self._flush_rows:
            self._cond.notify_all()

    def _add_append(self, stream: str, item: Any) -> None:
        with self._cond:
            if self._pending >= self._max_queue:
                self._wait_for_room()
            self._appends[stream].append(item)
            self._added_one(stream)
            if not self._threads:
                self._start_threads()

    def add_cache(self, row: tuple[Any, ...]) -> None:
        self._add_append("lm_cache", row)

    def add_upsert(self, table: str, record: Any) -> None:
        key, row = _rows.upsert_row(table, _COLUMNS[table], record)
        with self._cond:
            if self._pending >= self._max_queue:
                self._wait_for_room()
            rows = self._upserts[table]
            fresh = key not in rows
            rows.pop(key, None)  # insertion order = order of the latest update
            rows[key] = row
            if fresh:
                self._added_one("upserts")
            else:
                self._added["upserts"] += 1
            if not self._threads:
                self._start_threads()

    def clear_cache(self) -> None:
        """Forget buffered cache rows and delete the table's rows with the next write."""
        with self._cond:
            dropped = len(self._appends["lm_cache"])
            self._appends["lm_cache"] = []
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
    def flush(self, timeout: float) -> None:
        """Return once everything added before the call is durable; raise
        :class:`StoreError` if a write attempted meanwhile failed, or on timeout."""
        deadline = time.monotonic() + timeout
        with self._cond:
            target = dict(self._added)
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
        return sum(self._added[s] - self._done[s] for s in (*_APPEND, "upserts"))

    def _start_threads(self) -> None:
        # caller holds self._cond
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
        while True:
            with self._cond:
                batch = self._next_batch()
                if batch is None:
                    self._cond.notify_all()
                    return
            self._convert(batch)
            with self._cond:
                while self._ready is not None and not self._gave_up:
                    self._cond.wait()
                if self._gave_up:
                    self._lose(batch)
                    continue
                self._ready = batch
                self._cond.notify_all()

    def _next_batch(self) -> _Batch | None:
        # caller holds self._cond; waits until a batch is due (None: stopping, nothing left)
        while True:
            if self._gave_up:
                return None
            has_work = self._pending > 0 or self._clear_cache
            if not has_work:
                self._served = self._requests
                if self._stop:
                    return None
                self._cond.wait()
                continue
            now = time.monotonic()
            assert self._oldest is not None
            if (self._stop or self._requests > self._served
                    or self._pending >= self._flush_rows
                    or now >= self._oldest + self._flush_s):
                return self._take()
            self._cond.wait(max(0.0, self._oldest + self._flush_s - now))

    def _take(self) -> _Batch:
        # caller holds self._cond
        appends: dict[str, list[Any]] = {}
        upto: dict[str, int] = {}
        total = sum(len(self._appends[s]) for s in _APPEND)
        for stream in _APPEND:
            items = self._appends[stream]
            # at most batch_cap records per batch (a session holds the file that long),
            # shared among the streams in proportion so none of them waits behind another
            take = len(items) if total <= self._batch_cap else \
                -(-len(items) * self._batch_cap // total)
            if take < len(items):
                appends[stream] = items[:take]
                self._appends[stream] = items[take:]
            else:
                appends[stream] = items
                self._appends[stream] = []
            self._taken[stream] += len(appends[stream])
            upto[stream] = self._taken[stream]
        upserts = self._upserts
        self._upserts = {t: {} for t in _UPSERT}
        upto["upserts"] = self._added["upserts"]
        upto["clear"] = self._added["clear"]
        batch = _Batch(appends, upserts, self._clear_cache, upto)
        self._clear_cache = False
        self._served = self._requests
        self._pending -= sum(map(len, appends.values())) + sum(map(len, upserts.values()))
        self._oldest = time.monotonic() if self._pending else None
        self._cond.notify_all()  # room in the buffer
        return batch

    def _convert(self, batch: _Batch) -> None:
        """Build the batch's Arrow tables and statements (Python work, no lock held)."""
        started = time.perf_counter()
        try:
            self._convert_rows(batch)
        finally:
            batch.convert_s = time.perf_counter() - started

    def _convert_rows(self, batch: _Batch) -> None:
        _rows.refresh_secrets()
        selects = []
        executions = 0
        for stream, builder, select in _EXECUTION_BUILDERS:
            table = self._build(stream, builder, batch.appends[stream])
            if table is not None:
                name = f"_dspex_{stream}"
                batch.tables[name] = table
                selects.append(f"({select.format(batch=name)})")
                executions += table.num_rows
        if selects:
            batch.statements.append("INSERT INTO executions BY NAME "
                                    + " UNION ALL BY NAME ".join(selects))
        table = self._build("fallback", _rows.parse_fallback_table, batch.appends["fallback"])
        if table is not None:
            batch.tables["_dspex_fallback"] = table
            batch.statements.append("INSERT INTO executions BY NAME " +
                                    _rows.PARSE_FALLBACK_SELECT.format(batch="_dspex_fallback"))
            executions += table.num_rows
        batch.rows["executions"] = executions
        table = self._build("lm_cache", _cache_table, batch.appends["lm_cache"])
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
        # the records are no longer needed once converted
        batch.appends = {stream: [] for stream in batch.appends}

    def _build(self, stream: str, builder: Callable[[list[Any]], pa.Table], items: list[Any]
               ) -> pa.Table | None:
        """``builder(items)`` (None for no items); records that make it fail are dropped
        and counted."""
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
            return builder(good) if good else None

    # -- committer thread --------------------------------------------------------------------
    def _commit_loop(self) -> None:
        access = self._access
        try:
            while True:
                with self._cond:
                    if self._ready is None:
                        if self._stop and not self._threads[0].is_alive():
                            return
                        # while holding the file, look for waiting readers every 20 ms
                        self._cond.wait(_POLL_HELD_S if access.held else 0.1)
                    batch = self._ready
                    self._committing = batch is not None
                if batch is None:
                    # outside the lock: letting go checkpoints, producers must not wait
                    access.maybe_release(self._idle_s)
                    continue
                self._commit_with_retries(batch)
                access.maybe_release(self._idle_s)
                with self._cond:
                    self._ready = None
                    self._committing = False
                    self._cond.notify_all()
                    if self._gave_up:
                        return
        finally:
            access.release()

    def _commit_with_retries(self, batch: _Batch) -> None:
        while True:
            with self._cond:
                self._attempt += 1
                attempt = self._attempt
                requests_at_start = self._requests
            started = time.perf_counter()
            try:
                self._write(batch)
            except Exception as exc:
                delay = self._failed(batch, attempt, exc)
                with self._cond:
                    if self._stop and self._attempt >= self._stop_after:
                        self._gave_up = True
                        self._lose(batch)
                        self._cond.notify_all()
                        return
                    deadline = time.monotonic() + delay
                    while (self._requests == requests_at_start and not self._stop
                           and time.monotonic() < deadline):
                        self._cond.wait(deadline - time.monotonic())
                continue
            self._succeeded(batch, time.perf_counter() - started)
            return

    def _write(self, batch: _Batch) -> None:
        if not batch.statements and not batch.clear_cache:
            return
        with self._access.session(write=True, timeout=self._session_timeout,
                                  hold=True) as con:
            for name, table in batch.tables.items():
                con.register(name, table)
            try:
                con.execute("BEGIN TRANSACTION")
                if batch.clear_cache:
                    con.execute("DELETE FROM lm_cache")
                for statement in batch.statements:
                    con.execute(statement)
                con.execute("COMMIT")
            finally:
                for name in batch.tables:
                    con.unregister(name)

    def _succeeded(self, batch: _Batch, seconds: float) -> None:
        with self._cond:
            for stream, upto in batch.upto.items():
                self._done[stream] = max(self._done[stream], upto)
            for table, n in batch.rows.items():
                self.rows_written[table] += n
            self.flushes += 1
            self.convert_s += batch.convert_s
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

    def _failed(self, batch: _Batch, attempt: int, exc: BaseException) -> float:
        with self._cond:
            first = self._failures_in_row == 0
            pending = self.pending
        message = (f"dspex_lab could not write {sum(batch.rows.values())} rows to the store "
                   f"{self._access.path}: {exc}. They are kept in memory ({pending} records "
                   f"pending) and retried every few seconds.")
        _log.warning("store: %s", message)
        if first:  # warn before flush() callers can see the failure
            # (warnings turned into errors must not kill the writer)
            with contextlib.suppress(Exception):
                warnings.warn(message, StoreWarning, stacklevel=2)
        with self._cond:
            self._failed_attempt = attempt
            self._last_error = exc
            self._failures_in_row += 1
            self.failed_flushes += 1
            delay = min(5.0, 0.25 * 2.0 ** (self._failures_in_row - 1))
            self._cond.notify_all()
        return delay

    def _lose(self, batch: _Batch) -> None:
        # caller holds self._cond: give up on a batch (stopping and writes keep failing)
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
