"""What the dashboard shows, read from the store: plain data, no Panel.

Every page of the dashboard asks a :class:`StoreSource` and gets DataFrames and
small dataclasses back, so the pages only lay things out and this module can be
tested without a browser or a server.

The store file may be written by a notebook in another process while the
dashboard reads it, so everything goes through the store's cross-process path
(:class:`~dspex_lab.store.StoreReader`, see ``docs/store.md``): one private
DuckDB instance per source, the file attached read-only for the length of one
query and detached at once, the lock files telling a recording process to step
aside meanwhile. Nothing holds the file between refreshes. When *this* process
is the one recording into the file (a dashboard opened in the notebook that runs
the optimization), reads go through its own :class:`~dspex_lab.store.Store`
instead: DuckDB refuses to attach a file read-only next to a read-write
attachment of the same process.

Live refresh costs one cheap query (:meth:`StoreSource.fingerprint`: row counts
and order-independent hashes of the runs' and trials' states); pages reload only
when it changes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dspex_lab.store import StoreError, StoreReader, resolve_path

if TYPE_CHECKING:
    import pandas as pd

    from dspex_lab.jupyter._data import RunData

__all__ = [
    "ANY",
    "ERRORS_ONLY",
    "MAX_ROWS",
    "NO_ERRORS",
    "ExecutionFilter",
    "ExecutionOptions",
    "QueryResult",
    "RunDetail",
    "StoreSource",
    "TrialDetail",
    "default_store_path",
    "shared_source",
]

MAX_ROWS = 1000
"""Rows a table of the dashboard shows at most (the SQL console says when it cut)."""

ANY = ""
ERRORS_ONLY = "(any error)"
NO_ERRORS = "(no error)"
"""Special values of the executions browser's error filter."""

_FINGERPRINT = """
SELECT (SELECT count(*) FROM runs) AS runs,
       (SELECT coalesce(sum(hash(run_id, state, ended_at, stop_reason)), 0) FROM runs)
           AS runs_hash,
       (SELECT count(*) FROM trials) AS trials,
       (SELECT coalesce(sum(hash(trial_id, state, ended_at)), 0) FROM trials) AS trials_hash,
       (SELECT count(*) FROM executions) AS executions
"""

_EXECUTION_COLUMNS = (
    "started_at, kind, run_id, trial_id, module, model, adapter, error_kind, attempt, "
    "cache_hit, latency_s, cost, prompt_tokens, completion_tokens, "
    "left(inputs::VARCHAR, 300) AS inputs, left(outputs::VARCHAR, 300) AS outputs, "
    "error_message, id")

_SEARCHED = ("concat_ws(' ', inputs::VARCHAR, outputs::VARCHAR, error_message, module, "
             "model)")


def default_store_path() -> Path:
    """The store a dashboard opened with ``store=None`` reads: the file this process
    records into if it records, else ``$DSPEX_STORE``, else ``./dspex.duckdb``."""
    from dspex_lab import recording

    current = recording.current_store()  # never open a default store to find its path
    if current is not None:
        return current.path
    return resolve_path(None)


@dataclass(frozen=True)
class QueryResult:
    """The outcome of one SQL console query: rows (at most ``max_rows``) or an error
    message meant for people (never a traceback)."""

    query: str
    frame: pd.DataFrame | None = None
    truncated: bool = False
    error: str | None = None
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class RunDetail:
    """Everything the run page shows of one run."""

    data: RunData
    trials: pd.DataFrame
    importance: pd.DataFrame
    convergence: dict[str, Any]


@dataclass(frozen=True)
class TrialDetail:
    """A trial as the front's click shows it: its configuration, values and a few of its
    program calls (inputs, outputs, errors)."""

    run_id: str
    number: int
    trial_id: str
    state: str
    params: dict[str, Any]
    values: dict[str, float | None]
    metrics: dict[str, Any]
    on_front: bool
    fidelity: float
    n_examples: int
    spent: float
    reason: str | None
    samples: pd.DataFrame


@dataclass(frozen=True)
class ExecutionFilter:
    """The executions browser's filters (``ANY`` / empty: no filter on that column)."""

    run_id: str = ANY
    model: str = ANY
    error: str = ANY
    kind: str = ANY
    text: str = ""
    limit: int = 200


@dataclass(frozen=True)
class ExecutionOptions:
    """The values the executions browser's filters offer."""

    runs: list[tuple[str, str]] = field(default_factory=list)  # (label, run_id)
    models: list[str] = field(default_factory=list)
    error_kinds: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)


class StoreSource:
    """The dashboard's read-only view of one store file.

    Thread-safe (the store's file access serializes queries). ``exists()`` is False
    until something has been recorded at ``path``; every reading method then raises
    :class:`~dspex_lab.store.StoreError` with a message saying how to create one.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 timeout: float = 10.0) -> None:
        self.path = resolve_path(path) if path is not None else default_store_path()
        self._timeout = timeout
        self._own: StoreReader | None = None
        self._lock = threading.Lock()

    # -- plumbing ---------------------------------------------------------------------
    def exists(self) -> bool:
        return self.path.is_file()

    def missing_message(self) -> str:
        return (f"No store at {self.path} yet. Create one with `dspex-lab demo` (an offline "
                f"optimization on the built-in simulator), or record from Python with "
                f"dx.configure(store={str(self.path)!r}); this page fills in as soon as "
                f"something is recorded there.")

    def _reader(self) -> Any:
        from dspex_lab import recording

        current = recording.current_store()
        if current is not None and current.path == self.path:
            return current  # this process records into the file: read through the writer
        if not self.exists():
            raise StoreError(self.missing_message())
        with self._lock:
            if self._own is None:
                self._own = StoreReader(self.path, timeout=self._timeout)
            return self._own

    def close(self) -> None:
        with self._lock:
            if self._own is not None:
                self._own.close()
                self._own = None

    def _sql(self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
             ) -> pd.DataFrame:
        frame: pd.DataFrame = self._reader().sql(query, params)
        return frame

    # -- refresh ----------------------------------------------------------------------
    def fingerprint(self) -> tuple[int, ...] | None:
        """Changes whenever a run or trial is added or changes state, or executions are
        recorded; None while the file does not exist."""
        if not self.exists():
            return None
        row = self._sql(_FINGERPRINT).iloc[0]
        return tuple(int(row[c]) for c in ("runs", "runs_hash", "trials", "trials_hash",
                                             "executions"))

    # -- runs -------------------------------------------------------------------------
    def runs(self) -> pd.DataFrame:
        """Every run, newest first, with trial counts, best accuracy and dollars spent."""
        frame: pd.DataFrame = self._reader().runs()
        return frame

    def run_options(self) -> list[tuple[str, str]]:
        """``(label, run_id)`` of every run, newest first (what run pickers offer)."""
        runs = self._sql("SELECT run_id, name, state FROM runs "
                         "ORDER BY started_at DESC NULLS LAST, run_id")
        return [(_run_label(r["run_id"], r["name"], r["state"]), str(r["run_id"]))
                for _, r in runs.iterrows()]

    def run(self, run_id: str) -> RunDetail:
        """One run: its trials, Pareto front, hypervolume history (in ``data``), the
        variable importance and the convergence status."""
        from dspex_lab.jupyter._data import from_store

        reader = self._reader()
        data = from_store(run_id, reader)
        trials = data.trials_frame()
        if not trials.empty:
            front = data.front
            trials.insert(2, "front", [int(n) in front for n in trials["number"]])
        importance: pd.DataFrame = reader.variable_importance(run_id)
        status = reader.convergence_status(run_id)
        convergence = {} if status.empty else _plain_row(
            {str(k): v for k, v in status.iloc[0].to_dict().items()})
        return RunDetail(data=data, trials=trials, importance=importance,
                         convergence=convergence)

    def trial(self, run: RunDetail, number: int, samples: int = 3) -> TrialDetail:
        """Trial ``number`` of ``run`` with up to ``samples`` of its top-level program
        calls."""
        from dspex_lab.jupyter._data import sample_outputs

        t = run.data.by_number(number)
        if t is None:
            raise StoreError(f"run {run.data.run_id} has no trial {number}")
        frame: pd.DataFrame = sample_outputs(t.trial_id, samples, store=self._reader())
        return TrialDetail(
            run_id=run.data.run_id, number=t.number, trial_id=t.trial_id, state=t.state,
            params=dict(t.params), values=dict(t.values), metrics=dict(t.metrics),
            on_front=t.number in run.data.front, fidelity=t.fidelity,
            n_examples=t.n_examples, spent=t.spent, reason=t.reason, samples=frame)

    # -- executions -------------------------------------------------------------------
    def execution_options(self) -> ExecutionOptions:
        """The runs, models, error kinds and row kinds present in ``executions``."""
        values = self._sql(
            "SELECT 'model' AS what, model AS value FROM executions "
            "WHERE model IS NOT NULL GROUP BY model "
            "UNION ALL SELECT 'error', error_kind FROM executions "
            "WHERE error_kind IS NOT NULL GROUP BY error_kind "
            "UNION ALL SELECT 'kind', kind FROM executions GROUP BY kind")
        by: dict[str, list[str]] = {"model": [], "error": [], "kind": []}
        for _, r in values.iterrows():
            by[str(r["what"])].append(str(r["value"]))
        return ExecutionOptions(runs=self.run_options(), models=sorted(by["model"]),
                                error_kinds=sorted(by["error"]), kinds=sorted(by["kind"]))

    def executions(self, f: ExecutionFilter) -> tuple[pd.DataFrame, int]:
        """The newest ``f.limit`` executions matching the filter, and how many match.

        Every value is a bound parameter; the clauses are fixed text chosen here."""
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if f.run_id:
            clauses.append("run_id = $run")
            params["run"] = f.run_id
        if f.model:
            clauses.append("model = $model")
            params["model"] = f.model
        if f.kind:
            clauses.append("kind = $kind")
            params["kind"] = f.kind
        if f.error == ERRORS_ONLY:
            clauses.append("error_kind IS NOT NULL")
        elif f.error == NO_ERRORS:
            clauses.append("error_kind IS NULL")
        elif f.error:
            clauses.append("error_kind = $error")
            params["error"] = f.error
        if f.text.strip():
            clauses.append(f"contains(lower({_SEARCHED}), lower($text))")
            params["text"] = f.text.strip()
        where = " AND ".join(clauses) or "TRUE"
        limit = max(1, min(int(f.limit), MAX_ROWS))
        count = self._sql(f"SELECT count(*) AS n FROM executions WHERE {where}",
                          params or None)
        rows = self._sql(f"SELECT {_EXECUTION_COLUMNS} FROM executions WHERE {where} "
                         f"ORDER BY started_at DESC NULLS LAST, id LIMIT {limit}",
                         params or None)
        return rows, int(count.iloc[0]["n"])

    def execution(self, row_id: str) -> dict[str, Any]:
        """Every column of one execution row (JSON columns parsed)."""
        rows = self._sql("SELECT * FROM executions WHERE id = ? LIMIT 1", [row_id])
        if rows.empty:
            raise StoreError(f"no execution {row_id!r}")
        out = _plain_row({str(k): v for k, v in rows.iloc[0].to_dict().items()})
        for key in ("inputs", "outputs", "params", "tags"):
            if isinstance(out.get(key), str):
                with contextlib.suppress(ValueError):
                    out[key] = json.loads(out[key])
        return out

    # -- SQL console ------------------------------------------------------------------
    def query(self, text: str, max_rows: int = MAX_ROWS) -> QueryResult:
        """Run one read-only statement; never raises for a bad query: the error is in
        the result, phrased by the store (a statement that changes data is refused by
        the store's read-only guard and by the read-only attachment)."""
        started = time.perf_counter()
        text = text.strip()
        if not text:
            return QueryResult(text, error="Type a query first, e.g. "
                                           "select * from run_summary")
        try:
            frame, truncated = self._capped(text, max_rows)
        except StoreError as exc:
            return QueryResult(text, error=str(exc),
                               elapsed_s=time.perf_counter() - started)
        return QueryResult(text, frame=frame, truncated=truncated,
                           elapsed_s=time.perf_counter() - started)

    def _capped(self, text: str, max_rows: int) -> tuple[pd.DataFrame, bool]:
        """At most ``max_rows`` rows; a SELECT is wrapped in ``LIMIT`` so a huge result
        is never materialized, anything else (PRAGMA, EXPLAIN) is cut afterwards."""
        from dspex_lab.store import select_body

        inner = select_body(text)  # refused statements never reach the wrapping below
        frame: pd.DataFrame | None = None
        if inner is not None:
            try:
                frame = self._sql(f"SELECT * FROM (\n{inner}\n) LIMIT {int(max_rows) + 1}")
            except StoreError:
                frame = None  # a SELECT-like statement that cannot be a subquery
        if frame is None:
            frame = self._sql(text)
        truncated = len(frame) > max_rows
        return (frame.head(max_rows) if truncated else frame), truncated


_shared: dict[Path, StoreSource] = {}
_shared_lock = threading.Lock()


def shared_source(path: str | os.PathLike[str] | None = None) -> StoreSource:
    """The process's one :class:`StoreSource` for ``path``: every session of a server
    shares its DuckDB instance and lock-file descriptors (one per session would leak
    two descriptors and an instance per visit)."""
    resolved = resolve_path(path) if path is not None else default_store_path()
    with _shared_lock:
        source = _shared.get(resolved)
        if source is None:
            source = _shared[resolved] = StoreSource(resolved)
        return source


def _run_label(run_id: Any, name: Any, state: Any) -> str:
    shown = f"{name} · {run_id}" if isinstance(name, str) and name else str(run_id)
    return f"{shown} ({state})" if isinstance(state, str) and state else shown


def _plain_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A DataFrame row as plain Python values (NaN/NaT -> None, numpy scalars unboxed)."""
    import pandas as pd

    out: dict[str, Any] = {}
    for key, v in row.items():
        if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            out[str(key)] = None
            continue
        item = getattr(v, "item", None)
        if callable(item) and not isinstance(v, pd.Timestamp):
            with contextlib.suppress(TypeError, ValueError):
                v = item()
        out[str(key)] = v
    return out
