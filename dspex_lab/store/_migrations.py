"""Forward-only schema migrations, applied when a store is opened for writing.

``MIGRATIONS[v]`` is the list of statements that takes a file from version
``v - 1`` to ``v``; each version is applied in its own transaction and
recorded in ``schema_version``. A file whose version is newer than
:data:`SCHEMA_VERSION` is refused (an older dspex_lab must not write a layout
it does not know). Never edit a released migration: add the next one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dspex_lab.store._errors import StoreError
from dspex_lab.store._named import NAMED_SQL_V1
from dspex_lab.store._schema import TABLES, create_table_sql

if TYPE_CHECKING:
    import duckdb

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "file_version", "migrate"]

_VERSION_TABLE = """
CREATE TABLE schema_version (
    version INTEGER NOT NULL,
    applied_at TIMESTAMP NOT NULL,
    library_version VARCHAR
)
"""

MIGRATIONS: dict[int, list[str]] = {
    1: [_VERSION_TABLE, *(create_table_sql(t) for t in TABLES.values()), *NAMED_SQL_V1],
}

SCHEMA_VERSION = max(MIGRATIONS)
"""The schema version this dspex_lab writes."""


def file_version(con: duckdb.DuckDBPyConnection, catalog: str) -> int | None:
    """The schema version of the attached database ``catalog``: 0 for an empty file,
    ``None`` for a DuckDB file that is not a dspex_lab store."""
    tables = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ?", [catalog]
    ).fetchall()}
    if "schema_version" in tables:
        row = con.execute(f"SELECT max(version) FROM {catalog}.schema_version").fetchone()
        return int(row[0]) if row and row[0] is not None else 0
    views = con.execute("SELECT count(*) FROM duckdb_views() WHERE database_name = ? "
                        "AND NOT internal", [catalog]).fetchone()
    if tables or (views and views[0]):
        return None
    return 0


def check_version(version: int | None, path: str) -> None:
    if version is None:
        raise StoreError(
            f"{path} is a DuckDB file but not a dspex_lab store (it has tables and no "
            f"schema_version table); point the store at another file.")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has store schema version {version}, written by a newer dspex_lab; "
            f"this dspex_lab knows schema versions up to {SCHEMA_VERSION}. Upgrade "
            f"dspex_lab to write to this file (reading it with dx.sql still works).")


def migrate(con: duckdb.DuckDBPyConnection, catalog: str, path: str,
            library_version: str) -> tuple[int, int]:
    """Bring the attached ``catalog`` to :data:`SCHEMA_VERSION`; returns (before, after).

    The connection's default database must be ``catalog`` (``USE``), so objects are
    created there and views refer to their tables without a database name.
    """
    before = file_version(con, catalog)
    check_version(before, path)
    assert before is not None
    for version in range(before + 1, SCHEMA_VERSION + 1):
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in MIGRATIONS[version]:
                con.execute(statement)
            now = datetime.now(UTC).replace(tzinfo=None)
            con.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                        [version, now, library_version])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return before, SCHEMA_VERSION
