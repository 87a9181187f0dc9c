"""Reading the store: the read-only guard, ``sql``, named queries, export.

Two layers keep ``dx.sql`` read-only. First the statement is parsed by
DuckDB and refused unless it is a ``SELECT`` (which includes ``FROM t``,
``WITH``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``), an ``EXPLAIN`` of one, or
a ``PRAGMA`` that only reports (``table_info``, ``show_tables``, ...); one
statement per call. Then it runs against the file attached ``READ_ONLY``, so
DuckDB itself refuses anything that slipped through. Values are always bound
parameters (``?`` / ``$name``), never pasted into the text.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from dspex_lab.store._cache import CachedEntry, load_cache
from dspex_lab.store._errors import ReadOnlyQueryError, StoreError
from dspex_lab.store._locking import FileAccess
from dspex_lab.store._named import NamedQueries
from dspex_lab.store._schema import TABLES

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

__all__ = ["DEFAULT_PATH", "ENV_VAR", "StoreReader", "check_read_only", "resolve_path",
           "select_body"]

ENV_VAR = "DSPEX_STORE"
DEFAULT_PATH = "dspex.duckdb"

Params = Sequence[Any] | Mapping[str, Any] | None

_READ_PRAGMAS = frozenset({
    "show_tables", "show_tables_expanded", "table_info", "show", "database_size",
    "storage_info", "version", "platform", "database_list", "functions", "collations",
    "metadata_info", "user_agent", "show_databases",
})
_EXPLAIN = re.compile(r"^\s*explain\s+(?:analy[sz]e\s+)?(?:\([^)]*\)\s*)?", re.IGNORECASE)
_PRAGMA = re.compile(r"^\s*pragma\s+([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)

_parser_lock = threading.Lock()
_parser: duckdb.DuckDBPyConnection | None = None


def resolve_path(path: str | os.PathLike[str] | None) -> Path:
    """``path``, else ``$DSPEX_STORE``, else ``./dspex.duckdb`` (made absolute)."""
    chosen = path if path is not None else (os.environ.get(ENV_VAR) or DEFAULT_PATH)
    return Path(chosen).expanduser().absolute()


def _statements(query: str) -> list[Any]:
    global _parser
    import duckdb

    with _parser_lock:
        if _parser is None:
            _parser = duckdb.connect(":memory:")
        try:
            return list(_parser.extract_statements(query))
        except duckdb.Error as exc:
            raise StoreError(f"the query does not parse: {exc}") from None


def select_body(query: str) -> str | None:
    """The text of ``query`` as a subquery if it is one read-only SELECT (so callers can
    wrap it, e.g. in a ``LIMIT``), None for other read-only statements (PRAGMA,
    EXPLAIN, ...); raises like :func:`check_read_only` for anything else."""
    statement = _read_only_statement(query)
    if str(statement.type).rsplit(".", 1)[-1] != "SELECT":
        return None
    return str(statement.query).strip().rstrip(";")


def check_read_only(query: str) -> None:
    """Raise :class:`ReadOnlyQueryError` unless ``query`` is one statement that only reads."""
    _read_only_statement(query)


def _read_only_statement(query: str) -> Any:
    """The one parsed statement of ``query`` if it only reads (see
    :func:`check_read_only`), parsed once for the check and for the caller."""
    if not isinstance(query, str):
        raise TypeError(f"the query must be a string, not {type(query).__name__}")
    statements = _statements(query)
    if not statements:
        raise StoreError("the query is empty")
    if len(statements) > 1:
        raise ReadOnlyQueryError(
            f"dx.sql is read-only and runs one statement per call; got {len(statements)} "
            f"statements.")
    statement = statements[0]
    kind = str(statement.type).rsplit(".", 1)[-1]
    text = statement.query
    if kind == "SELECT":
        return statement
    if kind == "EXPLAIN":
        inner = _EXPLAIN.sub("", text, count=1)
        if inner != text:
            check_read_only(inner)
            return statement
    if kind == "PRAGMA":
        match = _PRAGMA.match(text)
        if match and match.group(1).lower() in _READ_PRAGMAS:
            return statement
    raise ReadOnlyQueryError(
        f"dx.sql is read-only: {kind} statements are refused (only SELECT, EXPLAIN and "
        f"read-only PRAGMAs run). The store is written by dspex_lab's recorder; to "
        f"change data, copy it out with export() or open a copy of the file with duckdb.")


def _execute(con: duckdb.DuckDBPyConnection, query: str, params: Params
             ) -> duckdb.DuckDBPyConnection:
    if params is None:
        return con.execute(query)
    if isinstance(params, str | bytes):
        raise TypeError("params must be a sequence or a mapping of values, not a string")
    if isinstance(params, Mapping):
        return con.execute(query, dict(params))
    return con.execute(query, list(params))


class _Reading(NamedQueries):
    """Everything that reads; subclasses set ``_access`` and ``_read_timeout``."""

    _access: FileAccess
    _read_timeout: float

    @property
    def path(self) -> Path:
        return self._access.path

    def sql(self, query: str, params: Params = None) -> pd.DataFrame:
        """Run one read-only statement with bound parameters; a pandas DataFrame.

        ``store.sql("select model, count(*) from executions where run_id = ?
        group by all", ["run-1"])``. Statements that change anything are refused
        with :class:`ReadOnlyQueryError`.
        """
        check_read_only(query)
        return self._query_df(query, params)

    def _read_df(self, query: str, params: Params = None) -> pd.DataFrame:
        return self._query_df(query, params)

    def _query_df(self, query: str, params: Params) -> pd.DataFrame:
        import duckdb

        self._before_read()
        with self._access.session(write=False, timeout=self._read_timeout) as con:
            try:
                return _execute(con, query, params).df()
            except duckdb.Error as exc:
                raise StoreError(f"the query failed: {exc}") from None

    def _before_read(self) -> None:
        """Hook: the writing store makes pending rows durable first."""

    def cache_load(self) -> dict[str, CachedEntry]:
        """Every entry of the persistent LM cache in the file (the newest row per key).

        Does not wait for the writer: entries queued with ``cache_put`` are in the
        file after the next flush."""
        with self._access.session(write=False, timeout=self._read_timeout) as con:
            return load_cache(con)

    def export(self, out_dir: str | os.PathLike[str],
               fmt: Literal["parquet", "csv"] = "parquet",
               tables: Sequence[str] | None = None) -> list[Path]:
        """Write tables (default: all) to ``out_dir/<table>.parquet`` or ``.csv``;
        returns the files written. Streams in batches; the file stays locked for
        reading meanwhile (writers in other processes wait)."""
        if fmt not in ("parquet", "csv"):
            raise ValueError(f"fmt must be 'parquet' or 'csv', not {fmt!r}")
        names = list(TABLES) if tables is None else list(tables)
        unknown = [n for n in names if n not in TABLES]
        if unknown:
            raise ValueError(f"unknown table(s) {unknown}; tables: {sorted(TABLES)}")
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self._before_read()
        written: list[Path] = []
        with self._access.session(write=False, timeout=self._read_timeout) as con:
            for name in names:
                target = out / f"{name}.{fmt}"
                tmp = target.with_name(target.name + ".tmp")
                # identifiers from TABLES, never from the caller's text
                reader = con.sql(f"SELECT * FROM {name}").to_arrow_reader(100_000)
                _write_stream(reader, tmp, fmt)
                os.replace(tmp, target)
                written.append(target)
        return written


def _write_stream(reader: Any, path: Path, fmt: str) -> None:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        with pq.ParquetWriter(path, reader.schema) as parquet:
            for batch in reader:
                parquet.write_batch(batch)
    else:
        import pyarrow.csv as pacsv

        with pacsv.CSVWriter(path, reader.schema) as csv:
            for batch in reader:
                csv.write_batch(batch)


class StoreReader(_Reading):
    """Read-only access to a store file that another process may be writing.

    Each call attaches the file read-only for as long as the query runs, waiting
    up to ``timeout`` seconds for a writer's flush to finish. Never migrates or
    creates the file. The CLI and the Panel app read through this.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 timeout: float = 10.0) -> None:
        self._access = FileAccess(resolve_path(path), threads=None)  # all cores: read only
        self._read_timeout = timeout

    def close(self) -> None:
        self._access.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"StoreReader({str(self.path)!r})"
