"""The store's error and warning (``StoreError`` will move to ``dspex_lab.errors``)."""

from __future__ import annotations

from dspex_lab.errors import DspexError, DspexWarning

__all__ = ["ReadOnlyQueryError", "StoreBusyError", "StoreError", "StoreWarning"]


class StoreError(DspexError):
    """The execution store could not be opened, written or queried."""

    kind = "store"


class StoreBusyError(StoreError):
    """Another process (or connection) held the file for longer than the timeout."""

    kind = "store_busy"


class ReadOnlyQueryError(StoreError, ValueError):
    """``dx.sql`` was given a statement that would change something."""

    kind = "store_read_only"


class StoreWarning(DspexWarning):
    """A write to the store failed; the rows are kept in memory and retried."""
