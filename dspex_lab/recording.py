"""Recording on by default: which store the process writes to, and the persistent cache.

A user who does nothing gets every execution recorded in ``./dspex.duckdb``
(or ``$DSPEX_STORE``): the store is opened just before the first LM call (not
at import, which must stay cheap) and subscribes to the event bus.
``dx.configure(store=path)`` switches files, ``dx.configure(store=None)`` turns
recording off, and functions that read take ``store=`` per call.

The LM response cache lives in memory for speed and is persisted in the
same file; with recording off it is a process-local memory cache.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dspex_lab import _hooks
from dspex_lab.errors import ConfigurationError, DspexWarning

if TYPE_CHECKING:
    import pandas as pd

    from dspex_lab.lm._cache import CachedResponse
    from dspex_lab.store import Store

__all__ = ["active_store", "cache_clear", "current_store", "install", "set_cache_enabled",
           "set_store", "sql"]

_log = logging.getLogger("dspex_lab.recording")

_lock = threading.RLock()
_store: Store | None = None
_explicit = False          # the user chose (a store or None): never open the default
_cache_enabled = True


class PersistentCache:
    """The LM cache over a store: a dict in memory, every new entry also written to the file.

    The file's entries are loaded once, on the first look-up, so later look-ups
    never touch the disk (they run on the LM event loop).
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._entries: dict[str, CachedResponse] | None = None
        self._load_lock = threading.Lock()

    def _load(self) -> dict[str, CachedResponse]:
        with self._load_lock:
            if self._entries is None:
                entries: dict[str, CachedResponse] = {}
                try:
                    entries = self._store.cache_load()
                except Exception as exc:  # a cache that cannot load is an empty cache
                    _log.warning("could not load the LM cache from %s: %s", self._store.path,
                                 exc)
                self._entries = entries
            return self._entries

    def get(self, key: str) -> CachedResponse | None:
        entries = self._entries if self._entries is not None else self._load()
        return entries.get(key)

    def put(self, key: str, entry: CachedResponse) -> None:
        self._load()[key] = entry
        self._store.cache_put(key, entry)

    def clear(self) -> None:
        self._entries = {}
        self._store.cache_clear()

    def __len__(self) -> int:
        return len(self._load())


def _install_cache(store: Store | None) -> None:
    from dspex_lab.lm._cache import MemoryCache, set_backend

    if not _cache_enabled:
        set_backend(None)
    elif store is None:
        set_backend(MemoryCache())
    else:
        set_backend(PersistentCache(store))


def _open(target: str | os.PathLike[str] | None) -> Store:
    from dspex_lab.store import open_store

    store = open_store(target)
    store.attach()
    return store


def _ensure_default() -> None:
    """First-call hook: open the default store unless the user already chose."""
    global _store
    with _lock:
        if _explicit or _store is not None:
            return
        try:
            _store = _open(None)
        except Exception as exc:
            warnings.warn(f"Recording is off: the default store could not be opened ({exc}). "
                          f"Set DSPEX_STORE or call dx.configure(store='path/to/file.duckdb').",
                          DspexWarning, stacklevel=2)
            _store = None
        _install_cache(_store)


def install() -> None:
    """Arrange for the default store to open before the first LM call (costs nothing now)."""
    _hooks.on_first_call(_ensure_default)


def set_store(target: Any) -> Store | None:
    """Record into ``target`` (a path or a Store) from now on; None turns recording off."""
    global _store, _explicit
    from dspex_lab.store import Store

    with _lock:
        new: Store | None
        if target is None:
            new = None
        elif isinstance(target, Store):
            new = target
            new.attach()
        elif isinstance(target, str | os.PathLike):
            if _store is not None and Path(target).resolve() == _store.path.resolve():
                new = _store
            else:
                new = _open(target)
        else:
            raise ConfigurationError(f"store must be a path, a dspex_lab Store or None, not "
                                     f"{type(target).__name__}.")
        old, _store, _explicit = _store, new, True
        if old is not None and old is not new:
            old.close()
        _install_cache(new)
        return new


def set_cache_enabled(enabled: bool) -> None:
    global _cache_enabled
    with _lock:
        _cache_enabled = bool(enabled)
        _install_cache(_store)


def current_store() -> Store | None:
    """The store this process records into right now, if one is open; unlike
    :func:`active_store` it never opens the default store (a dashboard that only wants
    to know which file to read must not create one)."""
    return _store


def active_store() -> Store | None:
    """The store being recorded into (opening the default one if nothing was chosen)."""
    if _store is None and not _explicit:
        _ensure_default()
    return _store


def _reader(store: Any) -> Any:
    from dspex_lab.store import Store, StoreReader

    if store is None:
        current = active_store()
        if current is None:
            raise ConfigurationError(
                "Recording is off (dx.configure(store=None)), so there is nothing to query. "
                "Pass store='path/to/file.duckdb' or call dx.configure(store=...).")
        return current
    if isinstance(store, Store | StoreReader):
        return store
    current = _store
    if current is not None and isinstance(store, str | os.PathLike) and \
            Path(store).resolve() == current.path.resolve():
        return current  # our own file: read it through the writer (flushed, consistent)
    return StoreReader(store)


def sql(query: str, params: Any = None, *, store: Any = None) -> pd.DataFrame:
    """Run a read-only query with bound parameters; a pandas DataFrame comes back.

    ``store`` defaults to the store being recorded into; a path reads another
    file (also one another process is writing).
    """
    frame: pd.DataFrame = _reader(store).sql(query, params)
    return frame


def cache_clear() -> None:
    """Empty the LM response cache (in memory and in the store)."""
    from dspex_lab.lm._cache import get_backend

    active_store()  # make sure the store's cache is the one installed
    backend = get_backend()
    if backend is not None:
        backend.clear()
