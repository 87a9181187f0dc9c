"""Where a running server is written down: one JSON file per model in a per-user folder.

The state file lets any process (the CLI, a notebook kernel, a test) find a
server another process started, and lets ``stop`` reach it. A process can die
without cleaning up, so a state file is only believed when its pid is alive
*and* that pid is still our server (checked in ``/proc``, since pids are
reused): anything else is stale and removed. Starting and stopping hold an
exclusive lock on a file in the same folder, so two processes never start two
servers for one model.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["LAUNCHER_MODULE", "STATE_DIR_ENV", "ServerState", "clear_state", "is_our_server",
           "locked", "log_path", "read_state", "state_dir", "write_state"]

STATE_DIR_ENV = "DSPEX_LOCAL_MODEL_DIR"
"""Overrides the state folder (tests use it to keep their servers apart from the user's)."""

LAUNCHER_MODULE = "dspex_lab.local_model._serve"
"""The module every server process runs; how a live pid is recognised as ours."""


def state_dir() -> Path:
    """``$DSPEX_LOCAL_MODEL_DIR``, else ``$XDG_STATE_HOME/dspex_lab/local-model``
    (``~/.local/state/...`` by default). Created private to the user."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        path = Path(override)
    else:
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        path = Path(base) / "dspex_lab" / "local-model"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def log_path(model: str) -> Path:
    """The server's log (stdout and stderr of the server process, rewritten at each start)."""
    return state_dir() / f"{model}.log"


def _state_file(model: str) -> Path:
    return state_dir() / f"{model}.json"


@dataclass(frozen=True, slots=True)
class ServerState:
    """What was recorded when a server started.

    ``owner_pid`` is the process that owns the server and stops it when it
    exits (``dx.LM`` started it), or ``None`` for a detached server started by
    ``dspex-lab local-model start`` that runs until stopped.
    """

    model: str
    pid: int
    host: str
    port: int
    model_path: str
    threads: int
    ctx: int
    started_at: float
    log_path: str
    owner_pid: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def uptime_s(self) -> float:
        return max(0.0, time.time() - self.started_at)


def read_state(model: str) -> ServerState | None:
    """The recorded state of ``model``'s server, or None (no file, or an unreadable one)."""
    path = _state_file(model)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        return ServerState(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError):
        path.unlink(missing_ok=True)  # a torn or foreign file: nothing to believe in it
        return None


def write_state(state: ServerState) -> None:
    """Write atomically (temporary file, then rename), so readers never see half a file."""
    path = _state_file(state.model)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(state), indent=1))
    os.replace(tmp, path)


def clear_state(model: str, pid: int | None = None) -> None:
    """Remove the state file (only if it still names ``pid``, when given)."""
    if pid is not None:
        current = read_state(model)
        if current is None or current.pid != pid:
            return
    _state_file(model).unlink(missing_ok=True)


def is_our_server(pid: int) -> bool:
    """Whether ``pid`` is alive, not a zombie, and runs our launcher (so not a reused pid)."""
    if pid <= 0:
        return False
    proc = Path("/proc") / str(pid)
    try:
        stat = (proc / "stat").read_text()
        # state is the field after the parenthesised command name
        if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
        cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        return LAUNCHER_MODULE.encode() in cmdline
    except FileNotFoundError:
        return False
    except OSError:
        pass
    # no /proc (not Linux): fall back to "the pid exists"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def locked(model: str) -> Iterator[None]:
    """Hold the model's start/stop lock (exclusive, across processes)."""
    path = state_dir() / f"{model}.lock"
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
