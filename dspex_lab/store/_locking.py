"""Sharing one DuckDB file between threads and processes.

DuckDB lets one process open a file read-write, and then no other process can
open it at all, not even read-only. So a file is attached to a private
in-memory DuckDB instance only while it is used, and detached (which releases
DuckDB's lock) as soon as someone else wants it. Measured on a file with 1M
executions (docs/store.md): creating a DuckDB instance costs ~35 ms (its
built-in catalog), ATTACH + DETACH of the file on a live instance ~3 ms, a
read-only attach + ``count(*)`` + detach ~9 ms; so each object keeps one
instance and attaches per use.

Readers attach for one query. The writer *holds* its read-write attachment
from one flush to the next (a 400-row flush is then an INSERT and a WAL commit,
~15 ms, instead of ~25 ms with attach, checkpoint and detach around it; the
WAL is checkpointed when it reaches 16 MB) and lets go
when someone is waiting, when nothing was written for ``idle_s``, or when it
closes; letting go checkpoints the WAL into the file.

Who goes next is decided by two ``flock`` files next to the database
(``<file>.gate`` and ``<file>.lock``):

    writer: gate EX -> lock EX -> release gate -> write ...      -> release lock
    reader: gate EX -> lock SH -> release gate -> read           -> release lock

Whoever holds the gate is next in line: a reader arriving while the writer
holds the file takes the gate and waits for the lock; the writer sees the
gate taken (it checks after every flush and every 20 ms while idle), lets go,
and its next flush queues behind the reader. Several readers share the lock.
The kernel drops a dead process's flocks, so a crash never leaves the file
locked. A program that ignores the protocol (someone's own
``duckdb.connect`` on the file) is handled by retrying the attach until the
deadline; it gets the file whenever the writer is idle.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from dspex_lab.store._errors import StoreBusyError, StoreError

if TYPE_CHECKING:
    import duckdb

try:  # POSIX only; elsewhere DuckDB's own lock plus retries is all there is
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["CATALOG", "FileAccess"]

CATALOG = "dspex"
"""The name the file is attached under inside a session."""

_POLL_S = 0.002
_RETRY_S = 0.01

class _Flocks:
    """The gate and lock files next to the database; ``None`` fds where they can't be made."""

    def __init__(self, path: Path) -> None:
        self._paths = (path.with_name(path.name + ".gate"), path.with_name(path.name + ".lock"))
        self._fds: tuple[int, int] | None = None
        self._held = False

    def _open(self) -> tuple[int, int] | None:
        if fcntl is None:
            return None
        if self._fds is None:
            fds: list[int] = []
            for p in self._paths:
                try:
                    fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o666)
                except OSError:
                    try:  # a read-only directory: use the files if someone else made them
                        fd = os.open(p, os.O_RDONLY)
                    except OSError:
                        for f in fds:
                            os.close(f)
                        return None
                fds.append(fd)
            self._fds = (fds[0], fds[1])
        return self._fds

    def acquire(self, exclusive: bool, deadline: float) -> None:
        fds = self._open()
        if fds is None:
            return
        gate, lock = fds
        _flock_until(gate, fcntl.LOCK_EX, deadline)
        try:
            _flock_until(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH, deadline)
        finally:
            fcntl.flock(gate, fcntl.LOCK_UN)
        self._held = True

    def someone_waiting(self) -> bool:
        """Whether another process (or object) holds the gate, i.e. waits for the lock."""
        if self._fds is None:
            return False
        gate = self._fds[0]
        try:
            fcntl.flock(gate, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(gate, fcntl.LOCK_UN)
        return False

    def release(self) -> None:
        if self._held and self._fds is not None:
            fcntl.flock(self._fds[1], fcntl.LOCK_UN)
        self._held = False

    def close(self) -> None:
        self.release()
        if self._fds is not None:
            for fd in self._fds:
                os.close(fd)
            self._fds = None


def _flock_until(fd: int, op: int, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise StoreBusyError(
                    "the store file stayed locked by another dspex_lab process "
                    "(writing or reading) until the timeout") from None
            time.sleep(_POLL_S)


def _is_lock_conflict(exc: BaseException) -> bool:
    text = str(exc)
    return ("lock" in text.lower() and "conflict" in text.lower()) or \
        "Could not set lock" in text or "Unique file handle conflict" in text


class FileAccess:
    """Sessions on one DuckDB file; see the module docstring for the protocol.

    Thread-safe. ``session(write=True)`` creates the file if needed;
    ``session(write=False)`` attaches it read-only (or, while this object holds
    it for writing, runs in a read-only transaction on that attachment) and
    raises :class:`StoreError` if the file does not exist.
    """

    def __init__(self, path: Path, *, threads: int | None = 1) -> None:
        self.path = path
        self._threads = threads
        self._lock = threading.Lock()
        self._flocks = _Flocks(path)
        self._db: duckdb.DuckDBPyConnection | None = None
        self._held = False
        self._last_write = 0.0
        self.sessions = 0
        self.releases = 0

    @property
    def held(self) -> bool:
        """Whether the file is attached read-write and kept between writes."""
        return self._held

    def someone_waiting(self) -> bool:
        """Whether another process (or another object of this one) is in line for the
        file: a writer holding it should let go soon."""
        return self._flocks.someone_waiting()

    def _instance(self) -> duckdb.DuckDBPyConnection:
        if self._db is None:
            import duckdb

            db = duckdb.connect(":memory:")
            # Vacuuming row groups during checkpoints caused 1-3 s stalls every few
            # flushes on a 1M-row file; appends gain nothing from it.
            db.execute("SET max_vacuum_tasks = 0")
            if self._threads is not None:
                # A writer uses one DuckDB thread: the other core is left to the Python
                # side (it converts the next batch while DuckDB writes this one).
                db.execute(f"SET threads = {int(self._threads)}")
            self._db = db
        return self._db

    def _discard_instance(self) -> None:
        db, self._db = self._db, None
        self._held = False
        if db is not None:
            with contextlib.suppress(Exception):
                db.close()

    @contextlib.contextmanager
    def session(self, *, write: bool, timeout: float, hold: bool = False
                ) -> Iterator[duckdb.DuckDBPyConnection]:
        """Yield a cursor whose default database is the file (attached as ``dspex``).

        ``hold=True`` (writes only) keeps the attachment afterwards; see
        :meth:`maybe_release`. Waits for other users up to ``timeout`` seconds,
        then raises :class:`StoreBusyError`.
        """
        deadline = time.monotonic() + timeout
        if not self._lock.acquire(timeout=max(timeout, 0.0)):
            raise StoreBusyError(f"{self.path} stayed busy in this process for {timeout:g} s")
        try:
            if self._held:
                yield from self._use_held(write, hold)
                return
            try:
                self._flocks.acquire(write, deadline)
            except StoreBusyError as exc:
                raise StoreBusyError(f"{self.path}: {exc} ({timeout:g} s)") from None
            keep = False
            try:
                con = self._attach(write, deadline)
                try:
                    yield con
                    keep = write and hold
                finally:
                    if keep:
                        self._held = True
                        self._last_write = time.monotonic()
                        con.close()
                    else:
                        self._detach(con)
            finally:
                if not self._held:
                    self._flocks.release()
        finally:
            self._lock.release()

    def _use_held(self, write: bool, hold: bool) -> Iterator[duckdb.DuckDBPyConnection]:
        # caller holds self._lock and the file is attached read-write
        con = self._instance().cursor()
        ok = False
        try:
            con.execute(f"USE {CATALOG}")
            if not write:
                con.execute("BEGIN TRANSACTION READ ONLY")
            yield con
            ok = True
        finally:
            if not write:
                with contextlib.suppress(Exception):
                    con.execute("ROLLBACK")
            with contextlib.suppress(Exception):
                con.close()
            if write:
                self._last_write = time.monotonic()
            if write and (not ok or not hold):
                self._release_locked()

    def maybe_release(self, idle_s: float) -> bool:
        """Let go of a held file if someone waits for it or nothing was written for
        ``idle_s`` seconds; True if released. Never blocks."""
        if not self._held or not self._lock.acquire(blocking=False):
            return False
        try:
            if self._held and (time.monotonic() - self._last_write >= idle_s
                               or self._flocks.someone_waiting()):
                self._release_locked()
                return True
            return False
        finally:
            self._lock.release()

    def release(self) -> None:
        """Let go of a held file (checkpointing it) now."""
        with self._lock:
            self._release_locked()

    def _release_locked(self) -> None:
        if not self._held:
            return
        self._held = False
        self.releases += 1
        db = self._db
        try:
            if db is not None:
                con = db.cursor()
                try:
                    con.execute("USE memory")
                    con.execute(f"DETACH {CATALOG}")  # checkpoints the WAL into the file
                finally:
                    con.close()
        except Exception:
            self._discard_instance()
        finally:
            self._flocks.release()

    def _attach(self, write: bool, deadline: float) -> duckdb.DuckDBPyConnection:
        import duckdb

        if not write and not self.path.exists():
            raise StoreError(f"no store at {self.path} (nothing has been recorded there yet)")
        while True:
            con = self._instance().cursor()
            try:
                if write:
                    con.execute(f"ATTACH ? AS {CATALOG}", [str(self.path)])
                else:
                    con.execute(f"ATTACH ? AS {CATALOG} (READ_ONLY)", [str(self.path)])
                con.execute(f"USE {CATALOG}")
                self.sessions += 1
                return con
            except duckdb.Error as exc:
                con.close()
                if _is_lock_conflict(exc):
                    if time.monotonic() < deadline:
                        time.sleep(_RETRY_S)
                        continue
                    raise StoreBusyError(f"{self.path} is held by another program: {exc}"
                                         ) from None
                self._discard_instance()
                verb = "open" if write else "read"
                raise StoreError(f"could not {verb} the store {self.path}: {exc}") from exc

    def _detach(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            with contextlib.suppress(Exception):
                con.execute("ROLLBACK")  # only does something after a failed transaction
            con.execute("USE memory")
            con.execute(f"DETACH {CATALOG}")
        except Exception:
            # A failed write can leave the attached database unusable; a fresh
            # instance is cheaper than reasoning about what state it is in.
            self._discard_instance()
        finally:
            with contextlib.suppress(Exception):
                con.close()

    def close(self) -> None:
        with self._lock:
            self._release_locked()
            self._discard_instance()
            self._flocks.close()
