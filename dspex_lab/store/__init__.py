"""The execution store: every LM call, program call, run and trial in one DuckDB file.

``Store(path)`` opens (creating or migrating) the file; ``store.attach()``
records what the event bus reports; ``store.sql(...)`` and the named queries
read it; ``StoreReader(path)`` reads a file another process is writing.
Nothing here imports DuckDB, pyarrow or pandas until it is used.
See ``docs/store.md`` for the schema, the named queries and the
cross-process design.
"""

from __future__ import annotations

from dspex_lab.store._cache import CachedEntry
from dspex_lab.store._errors import ReadOnlyQueryError, StoreBusyError, StoreError, StoreWarning
from dspex_lab.store._migrations import SCHEMA_VERSION
from dspex_lab.store._query import (
    DEFAULT_PATH,
    ENV_VAR,
    StoreReader,
    resolve_path,
    select_body,
)
from dspex_lab.store._store import Store, open_store
from dspex_lab.store.records import (
    STANDARD_OBJECTIVES,
    ProgramRecord,
    RunRecord,
    SpaceRecord,
    TrialRecord,
)

__all__ = [
    "DEFAULT_PATH",
    "ENV_VAR",
    "SCHEMA_VERSION",
    "STANDARD_OBJECTIVES",
    "CachedEntry",
    "ProgramRecord",
    "ReadOnlyQueryError",
    "RunRecord",
    "SpaceRecord",
    "Store",
    "StoreBusyError",
    "StoreError",
    "StoreReader",
    "StoreWarning",
    "TrialRecord",
    "open_store",
    "resolve_path",
    "select_body",
]
