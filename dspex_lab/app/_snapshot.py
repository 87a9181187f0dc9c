"""A standalone copy of some runs of a store: the data file an exported app reads.

An exported app must run anywhere (another machine, a server, a colleague's
laptop) without the user's store, which holds every experiment ever recorded
and may be hundreds of megabytes. So the export copies only what the
dashboard shows for the chosen runs into a new store file of the same schema
(named queries included, so everything that reads a store reads it):

- ``runs``, ``trials``, and the ``programs`` and ``variable_spaces`` rows they
  refer to, whole;
- every ``executions`` row of those runs with its numbers (model, tokens,
  cost, latency, error kind, ids), so totals and failure counts match the
  original; but prompts and replies (``inputs``/``outputs``) only for the
  first ``samples_per_trial`` top-level calls of each trial (all the LM and
  module rows under those calls), since those are what the dashboard shows as
  sample outputs and they are most of a store's bytes;
- not the LM response cache, deployments or alerts.

Every text and JSON value is scrubbed (:mod:`._scrub`) on the way. The file
is written with DuckDB's compression off, so a byte-level search of the file
(our own last check, and anyone auditing it) sees every string as written.
Reads go through ``dx.sql``, so a store another process is recording into is
read safely (see docs/store.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dspex_lab.app._scrub import Scrubber

if TYPE_CHECKING:
    import duckdb
    import pandas as pd

__all__ = ["DEFAULT_SAMPLES_PER_TRIAL", "SnapshotInfo", "write_snapshot"]

DEFAULT_SAMPLES_PER_TRIAL = 20
"""Top-level calls per trial whose prompts and replies are kept."""

_KEPT = "_dspex_payload_kept"

# identifiers below are constants, never user input; values are always bound
_QUERIES: dict[str, str] = {
    "runs": "SELECT * FROM runs WHERE list_contains($runs, run_id) ORDER BY started_at",
    "trials": "SELECT * FROM trials WHERE list_contains($runs, run_id) ORDER BY run_id, number",
    "programs": "SELECT * FROM programs WHERE program_id IN (SELECT program_id FROM runs "
                "WHERE list_contains($runs, run_id))",
    "variable_spaces": "SELECT * FROM variable_spaces WHERE space_id IN (SELECT space_id "
                       "FROM runs WHERE list_contains($runs, run_id))",
}
# Executions with payloads only for the first $keep top-level calls (traces) of each trial,
# in the order they started; rows without a trace keep theirs.
_EXECUTIONS = f"""
WITH picked AS (
    SELECT * FROM executions WHERE list_contains($runs, run_id)
), traces AS (
    SELECT run_id, trial_id, trace_id,
           row_number() OVER (PARTITION BY run_id, trial_id
                              ORDER BY min(started_at), trace_id) AS k
    FROM picked WHERE trace_id IS NOT NULL
    GROUP BY run_id, trial_id, trace_id
)
SELECT p.* REPLACE (
           CASE WHEN coalesce(t.k, 0) <= $keep THEN p.inputs END AS inputs,
           CASE WHEN coalesce(t.k, 0) <= $keep THEN p.outputs END AS outputs),
       coalesce(t.k, 0) <= $keep AS {_KEPT}
FROM picked p LEFT JOIN traces t
  ON t.run_id = p.run_id AND t.trace_id = p.trace_id
 AND t.trial_id IS NOT DISTINCT FROM p.trial_id
ORDER BY p.started_at, p.id
"""


@dataclass(frozen=True)
class SnapshotInfo:
    """What a snapshot holds: rows per table, executions whose prompts and replies were
    left out (``payloads_dropped``), and how many secrets were blanked."""

    path: Path
    run_ids: tuple[str, ...]
    rows: dict[str, int] = field(default_factory=dict)
    payloads_dropped: int = 0
    redactions: int = 0

    def describe(self) -> str:
        """``1 run, 12 trials, 840 executions (prompts and replies of 600 left out)``."""
        runs = len(self.run_ids)
        text = (f"{runs} run{'s' if runs != 1 else ''}, {self.rows.get('trials', 0)} trials, "
                f"{self.rows.get('executions', 0)} executions")
        if self.payloads_dropped:
            text += f" (prompts and replies of {self.payloads_dropped} left out)"
        return text


def _read(source: Any, query: str, params: dict[str, Any]) -> pd.DataFrame:
    from dspex_lab.recording import sql

    return sql(query, params, store=source)


def _column_kinds(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    rows = con.execute("SELECT column_name, data_type FROM duckdb_columns() "
                       "WHERE table_name = ? AND schema_name = 'main'", [table]).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def _scrub_frame(frame: pd.DataFrame, kinds: dict[str, str], scrubber: Scrubber
                 ) -> pd.DataFrame:
    """Every VARCHAR and JSON value of ``frame`` scrubbed (in a copy)."""
    import pandas as pd

    out = frame.copy()
    for column in out.columns:
        kind = kinds.get(str(column))
        if kind not in ("VARCHAR", "JSON"):
            continue
        clean = scrubber.json_text if kind == "JSON" else scrubber.text
        values = [clean(v) if isinstance(v, str) else None for v in out[column]]
        out[column] = pd.Series(values, index=out.index, dtype=object)
    return out


def _create_empty_store(path: Path) -> None:
    """A new store file with the current schema and named queries (and nothing else)."""
    from dspex_lab.store import Store

    Store(path).close()


def write_snapshot(target: str | os.PathLike[str], run_ids: Sequence[str], *,
                   source: Any = None, scrubber: Scrubber | None = None,
                   samples_per_trial: int | None = DEFAULT_SAMPLES_PER_TRIAL
                   ) -> SnapshotInfo:
    """Copy ``run_ids`` from the store ``source`` (a path or Store; default the one being
    recorded into) into a new store file at ``target``, scrubbed.

    ``target`` must not exist. ``samples_per_trial``: top-level calls per trial whose
    prompts and replies are kept (None: all). Lock files the store machinery makes
    next to ``target`` are left there: write into a scratch directory and move the
    file out (as :func:`~dspex_lab.app.export_app` does).
    """
    import duckdb

    path = Path(target)
    if path.exists():
        raise FileExistsError(f"{path} exists; a snapshot is written to a new file")
    if samples_per_trial is not None and samples_per_trial < 0:
        raise ValueError(f"samples_per_trial must be >= 0 or None, not {samples_per_trial!r}")
    scrub = scrubber if scrubber is not None else Scrubber()
    ids = list(dict.fromkeys(run_ids))
    frames = {name: _read(source, query, {"runs": ids}) for name, query in _QUERIES.items()}
    keep = 2**31 - 1 if samples_per_trial is None else int(samples_per_trial)
    executions = _read(source, _EXECUTIONS, {"runs": ids, "keep": keep})
    kept = executions.pop(_KEPT)
    dropped = int((~kept.astype(bool)).sum()) if len(kept) else 0
    frames["executions"] = executions

    before = scrub.redactions
    _create_empty_store(path)
    rows: dict[str, int] = {}
    con = duckdb.connect(str(path))
    try:
        # uncompressed strings: a byte search of the file sees every value as written
        con.execute("SET force_compression = 'uncompressed'")
        for table, frame in frames.items():
            clean = _scrub_frame(frame, _column_kinds(con, table), scrub)
            con.register("_dspex_rows", clean)
            try:
                # table names are the constants above
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _dspex_rows")
            finally:
                con.unregister("_dspex_rows")
            rows[table] = len(clean)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return SnapshotInfo(path=path, run_ids=tuple(ids), rows=rows, payloads_dropped=dropped,
                        redactions=scrub.redactions - before)
