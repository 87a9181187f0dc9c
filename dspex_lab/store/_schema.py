"""The tables, as data: one definition feeds the DDL, the writer's Arrow
conversion and the tests, so a column cannot exist in one and not the other.

Timestamps are naive ``TIMESTAMP`` values in UTC (microseconds); JSON
columns hold UTF-8 JSON text. Rows travel from the writer as tuples in
exactly the column order below.

The bulky JSON columns of ``executions`` (messages, inputs, outputs, params,
tags) are stored with DuckDB's ZSTD compression instead of letting DuckDB
choose per segment. Measured on 200,000 benchmark rows (bench/store_write.py's
records; DuckDB 2.0 on the 2-core VM): the COMMIT that compresses and writes
them took 3.3 instead of 4.7 µs per row and the file is 34% smaller (15.3
instead of 23.3 MB): DuckDB's own choice analyses every method (dictionary,
FSST, dictionary+FSST) for every segment and chose dictionary+FSST for these
long, mostly distinct texts. ZSTD on *every* text column made the file 20%
bigger: short ids and categorical columns (model, kind, run_id) compress better
with DuckDB's choice, and queries filter on them. This is a physical setting only:
files created before it keep DuckDB's choice and read and write the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["TABLES", "Column", "ColumnKind", "TableSpec", "create_table_sql"]

ColumnKind = Literal["str", "json", "int", "float", "bool", "ts"]

_SQL_TYPES: dict[str, str] = {
    "str": "VARCHAR", "json": "JSON", "int": "INTEGER", "float": "DOUBLE",
    "bool": "BOOLEAN", "ts": "TIMESTAMP",
}


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: ColumnKind
    doc: str = ""
    not_null: bool = False
    compression: str | None = None  # a DuckDB compression method; None: DuckDB chooses


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A table; ``key`` names the primary key of tables written by upsert
    (``None``: append-only, rows never change)."""

    name: str
    columns: tuple[Column, ...]
    key: str | None = None
    doc: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, kind: ColumnKind, doc: str = "", not_null: bool = False,
       compression: str | None = None) -> Column:
    return Column(name, kind, doc, not_null, compression)


EXECUTIONS = TableSpec("executions", (
    _c("id", "str", "unique row id: call_id:attempt for LM rows, call_id for program rows",
       not_null=True),
    _c("kind", "str", "'lm' (one attempt of an LM call), 'program' (one module or program "
       "call) or 'parse_fallback' (a reply re-asked with the fallback adapter)", not_null=True),
    _c("call_id", "str", "the call: LM attempts of one call share it"),
    _c("trace_id", "str", "shared by everything under one top-level call"),
    _c("parent_id", "str", "call_id of the enclosing program call"),
    _c("run_id", "str", "optimization run (from the record's tags)"),
    _c("trial_id", "str", "trial of that run (from the record's tags)"),
    _c("module", "str", "program rows: the module or program name"),
    _c("module_kind", "str", "program rows: predict, cot, pot, program, ..."),
    _c("adapter", "str", "program rows: the adapter that parsed the reply"),
    _c("model", "str"),
    _c("provider", "str"),
    _c("inputs", "json", "LM rows: the messages; program rows: the input fields",
       compression="zstd"),
    _c("outputs", "json", "LM rows: {\"text\": ...}; program rows: the output fields",
       compression="zstd"),
    _c("params", "json", "LM rows: request parameters; program rows: the configuration",
       compression="zstd"),
    _c("prompt_tokens", "int"),
    _c("completion_tokens", "int"),
    _c("cost", "float", "dollars paid (0 on a cache hit; NULL when the price is unknown)"),
    _c("uncached_cost", "float", "dollars the call costs without the cache (= cost unless "
       "cache_hit): objectives use this"),
    _c("latency_s", "float", "latency accounted for (provider-reported when available)"),
    _c("uncached_latency_s", "float", "latency without the cache (= latency_s unless "
       "cache_hit)"),
    _c("wall_s", "float", "measured wall time"),
    _c("cache_hit", "bool"),
    _c("lm_calls", "int", "program rows: LM calls made under this call"),
    _c("attempt", "int", "LM rows: 1, 2, ... for retries of one call"),
    _c("will_retry", "bool", "LM rows: this failed attempt is followed by another"),
    _c("finish_reason", "str"),
    _c("error_kind", "str", "short stable name: timeout, rate_limit, server_error, "
       "parse_error, ..."),
    _c("error_message", "str"),
    _c("started_at", "ts"),
    _c("ended_at", "ts"),
    _c("tags", "json", compression="zstd"),
), doc="One row per LM call attempt and per program call.")

RUNS = TableSpec("runs", (
    _c("run_id", "str", not_null=True),
    _c("name", "str"),
    _c("program_id", "str"),
    _c("space_id", "str"),
    _c("strategy", "str"),
    _c("strategy_reason", "str"),
    _c("objectives", "json", "[{\"name\": ..., \"direction\": \"maximize\"|\"minimize\"}]"),
    _c("budget", "json"),
    _c("config", "json"),
    _c("state", "str", "running, finished, stopped, failed"),
    _c("stop_reason", "str"),
    _c("started_at", "ts"),
    _c("ended_at", "ts"),
    _c("tags", "json"),
), key="run_id", doc="Optimization runs.")

TRIALS = TableSpec("trials", (
    _c("trial_id", "str", not_null=True),
    _c("run_id", "str"),
    _c("number", "int", "0, 1, 2, ... within the run"),
    _c("state", "str", "running, completed, pruned, failed"),
    _c("reason", "str", "why pruned or failed"),
    _c("params", "json", "the configuration evaluated (variable -> value)"),
    _c("objective_values", "json", "objective name -> value"),
    _c("accuracy", "float"),
    _c("cost", "float", "uncached dollars per example"),
    _c("latency_s", "float", "uncached seconds per example"),
    _c("metrics", "json"),
    _c("fidelity", "float", "fraction of the validation set evaluated"),
    _c("n_examples", "int"),
    _c("lm_calls", "int"),
    _c("spent", "float", "dollars actually paid"),
    _c("started_at", "ts"),
    _c("ended_at", "ts"),
    _c("tags", "json"),
), key="trial_id", doc="Trials of optimization runs.")

PROGRAMS = TableSpec("programs", (
    _c("program_id", "str", not_null=True),
    _c("name", "str"),
    _c("kind", "str"),
    _c("signature", "str"),
    _c("definition", "json"),
    _c("created_at", "ts"),
    _c("tags", "json"),
), key="program_id", doc="Program definitions.")

VARIABLE_SPACES = TableSpec("variable_spaces", (
    _c("space_id", "str", not_null=True),
    _c("program_id", "str"),
    _c("name", "str"),
    _c("variables", "json"),
    _c("constraints", "json"),
    _c("created_at", "ts"),
    _c("tags", "json"),
), key="space_id", doc="Variable spaces.")

LM_CACHE = TableSpec("lm_cache", (
    _c("key", "str", "content address: model, messages, parameters, sample index",
       not_null=True),
    _c("model", "str"),
    _c("text", "str"),
    _c("prompt_tokens", "int"),
    _c("completion_tokens", "int"),
    _c("cost", "float", "what the original call cost"),
    _c("latency_s", "float", "the original call's latency"),
    _c("created_at", "ts"),
), doc="Persistent LM response cache (append-only; the newest row per key wins).")

DEPLOYMENTS = TableSpec("deployments", (
    _c("deployment_id", "str", not_null=True),
    _c("program_id", "str"),
    _c("run_id", "str"),
    _c("trial_id", "str"),
    _c("version", "int"),
    _c("config", "json"),
    _c("status", "str"),
    _c("created_at", "ts"),
    _c("updated_at", "ts"),
    _c("tags", "json"),
), key="deployment_id", doc="Deployed configurations (filled by a later issue).")

ALERTS = TableSpec("alerts", (
    _c("alert_id", "str", not_null=True),
    _c("deployment_id", "str"),
    _c("kind", "str"),
    _c("severity", "str"),
    _c("message", "str"),
    _c("details", "json"),
    _c("created_at", "ts"),
    _c("resolved_at", "ts"),
), key="alert_id", doc="Health alerts (filled by a later issue).")

TABLES: dict[str, TableSpec] = {t.name: t for t in (
    EXECUTIONS, RUNS, TRIALS, PROGRAMS, VARIABLE_SPACES, LM_CACHE, DEPLOYMENTS, ALERTS)}
"""Every data table (``schema_version`` is the migrations' own)."""


def create_table_sql(spec: TableSpec) -> str:
    """``CREATE TABLE`` for a spec (identifiers are our constants, never user input)."""
    cols = []
    for c in spec.columns:
        extra = " PRIMARY KEY" if c.name == spec.key else (" NOT NULL" if c.not_null else "")
        if c.compression is not None:
            extra += f" USING COMPRESSION {c.compression}"
        cols.append(f"    {c.name} {_SQL_TYPES[c.kind]}{extra}")
    body = ",\n".join(cols)
    return f"CREATE TABLE {spec.name} (\n{body}\n)"
