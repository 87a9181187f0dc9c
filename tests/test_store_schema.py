"""The store file: creation, schema, migrations, refusals, public surface, lazy imports."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest
from test_store_support import lm_record, program_record, run_python

import dspex_lab.store as store_pkg
from dspex_lab.errors import DspexError, DspexWarning
from dspex_lab.store import (
    SCHEMA_VERSION,
    Store,
    StoreError,
    StoreReader,
    StoreWarning,
    open_store,
    resolve_path,
)
from dspex_lab.store._schema import TABLES

NAMED = ["trial_objectives", "best_trade_offs", "variable_importance", "cost_efficiency",
         "convergence_status", "failures_by_kind", "current_performance", "run_summary"]


def test_public_names_are_exactly_all() -> None:
    public = {n for n in dir(store_pkg) if not n.startswith("_")} - {"records", "annotations"}
    assert public == set(store_pkg.__all__)


def test_errors_fit_the_tree() -> None:
    assert issubclass(StoreError, DspexError)
    assert issubclass(StoreWarning, DspexWarning)


def test_importing_the_store_loads_no_heavy_library() -> None:
    code = ("import sys, dspex_lab.store; "
            "print(sorted(m for m in ('duckdb', 'pyarrow', 'pandas', 'numpy', 'dspex_lab.programs')"
            " if m in sys.modules))")
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_new_file_has_every_table_view_and_the_version(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "dir" / "s.duckdb"
    with Store(path) as store:
        assert store.schema_version_found == 0
        assert store.schema_version == SCHEMA_VERSION
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = {r[0] for r in con.execute("select table_name from duckdb_tables()").fetchall()}
        views = {r[0] for r in con.execute(
            "select view_name from duckdb_views() where not internal").fetchall()}
        version = con.execute("select max(version) from schema_version").fetchone()
        for name, spec in TABLES.items():
            cols = [r[0] for r in con.execute(
                "select column_name from duckdb_columns() where table_name = ? "
                "order by column_index", [name]).fetchall()]
            assert cols == list(spec.names), name
        # the named queries work from any DuckDB client opening the file
        assert con.execute("select count(*) from best_trade_offs").fetchone() == (0,)
        assert con.execute("select * from best_trade_offs_of('x')").fetchall() == []
    finally:
        con.close()
    assert set(TABLES) | {"schema_version"} <= tables
    assert set(NAMED) <= views
    assert version == (SCHEMA_VERSION,)


def _compressions(path: Path) -> dict[str, set[str]]:
    """column -> the compression methods of its stored segments."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("select column_name, compression from "
                           "pragma_storage_info('executions') where segment_type <> 'VALIDITY'"
                           ).fetchall()
    finally:
        con.close()
    found: dict[str, set[str]] = {}
    for column, method in rows:
        found.setdefault(column, set()).add(method.upper())
    return found


def _record_some(path: Path, n: int) -> None:
    with Store(path) as store:
        for i in range(n):
            store.record("lm.completed", lm_record(i))
            store.record("program.completed", program_record(i))


def test_bulky_json_columns_are_stored_with_zstd_the_rest_as_duckdb_chooses(
        tmp_path: Path) -> None:
    # ZSTD on the long JSON texts is cheaper to write and smaller than DuckDB's own
    # choice (see _schema); ids and categories keep DuckDB's choice
    path = tmp_path / "s.duckdb"
    _record_some(path, 3000)
    found = _compressions(path)
    for column in ("inputs", "outputs", "params", "tags"):
        assert found[column] == {"ZSTD"}, (column, found[column])
    for column in ("id", "call_id", "model", "kind", "run_id"):
        assert "ZSTD" not in found[column], (column, found[column])


def test_a_file_made_before_the_zstd_columns_is_written_and_read_the_same(
        tmp_path: Path) -> None:
    from dspex_lab.store import _migrations

    # a version-1 file whose tables were created without the compression setting
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    for statement in _migrations.MIGRATIONS[1]:
        con.execute(statement.replace(" USING COMPRESSION zstd", ""))
    con.execute("insert into schema_version values (1, now()::timestamp, 'old')")
    con.close()
    _record_some(path, 3000)
    assert "ZSTD" not in _compressions(path)["inputs"]
    with Store(path) as store:
        assert store.schema_version_found == SCHEMA_VERSION
        counts = store.sql("select kind, count(*) as n, count(inputs) as with_inputs "
                           "from executions group by kind order by kind")
    assert counts.to_dict("records") == [
        {"kind": "lm", "n": 3000, "with_inputs": 3000},
        {"kind": "program", "n": 3000, "with_inputs": 3000}]


def test_reopening_does_not_migrate_again(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    Store(path).close()
    with Store(path) as again:
        assert again.schema_version_found == SCHEMA_VERSION
        assert again.sql("select count(*) as n from schema_version")["n"][0] == 1


def test_an_older_file_is_migrated_forward(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from dspex_lab.store import _migrations

    path = tmp_path / "old.duckdb"
    Store(path).close()  # a file at today's version ...
    newer = SCHEMA_VERSION + 1  # ... opened by a dspex_lab that has one more migration
    monkeypatch.setitem(_migrations.MIGRATIONS, newer,
                        ["CREATE TABLE notes (note VARCHAR)",
                         "ALTER TABLE runs ADD COLUMN owner VARCHAR"])
    monkeypatch.setattr(_migrations, "SCHEMA_VERSION", newer)
    with Store(path) as store:
        assert (store.schema_version_found, store.schema_version) == (SCHEMA_VERSION, newer)
        versions = store.sql("select version from schema_version order by 1")["version"]
        assert list(versions) == [SCHEMA_VERSION, newer]
        assert "owner" in set(store.sql("describe runs")["column_name"])
    monkeypatch.undo()
    with pytest.raises(StoreError, match=f"schema version {newer}"):
        Store(path)  # and today's dspex_lab now refuses it


def test_a_file_from_a_newer_version_is_refused_naming_both(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("insert into schema_version values (?, now()::timestamp, '9.9')",
                [SCHEMA_VERSION + 7])
    con.close()
    with pytest.raises(StoreError) as info:
        Store(path)
    message = str(info.value)
    assert f"schema version {SCHEMA_VERSION + 7}" in message
    assert f"up to {SCHEMA_VERSION}" in message
    # reading it is still allowed
    with StoreReader(path) as reader:
        assert reader.sql("select max(version) as v from schema_version")["v"][0] == \
            SCHEMA_VERSION + 7


def test_a_foreign_duckdb_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "mine.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table my_data(x int)")
    con.close()
    with pytest.raises(StoreError, match="not a dspex_lab store"):
        Store(path)
    con = duckdb.connect(str(path), read_only=True)
    tables = con.execute("select table_name from duckdb_tables()").fetchall()
    con.close()
    assert tables == [("my_data",)]  # untouched


def test_a_directory_or_garbage_is_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="directory"):
        Store(tmp_path)
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="could not open"):
        Store(junk)


def test_reader_of_a_missing_file_says_so(tmp_path: Path) -> None:
    with StoreReader(tmp_path / "nothing.duckdb") as reader, \
            pytest.raises(StoreError, match="no store at"):
        reader.sql("select 1")


def test_path_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DSPEX_STORE", raising=False)
    assert resolve_path(None) == tmp_path / "dspex.duckdb"
    monkeypatch.setenv("DSPEX_STORE", str(tmp_path / "env.duckdb"))
    assert resolve_path(None) == tmp_path / "env.duckdb"
    assert resolve_path("given.duckdb") == tmp_path / "given.duckdb"
    with open_store() as store:
        assert store.path == tmp_path / "env.duckdb"
    assert (tmp_path / "env.duckdb").exists()


def test_closing_twice_and_using_after_close(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.duckdb")
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.attach()
    assert "closed" in repr(store)
    assert "dspex_lab.store" in sys.modules
