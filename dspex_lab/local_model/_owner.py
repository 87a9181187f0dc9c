"""A server for this process on demand: reuse a running one, or start one we own.

``dx.LM("local/smollm2")`` calls :func:`ensure_running` on its first request.
If a server already runs (started by ``dspex-lab local-model start`` or by
another process), it is used as it is and never stopped by us. Otherwise we
start one *owned* by this process: it is stopped at interpreter exit
(``atexit``), and if this process dies without running its exit handlers
(a killed kernel) the server notices its parent is gone and exits by itself
(see ``_serve``). Ownership is per process id, so a forked child never stops
its parent's server.
"""

from __future__ import annotations

import atexit
import os
import threading

from dspex_lab.local_model._catalog import find_model
from dspex_lab.local_model._server import (
    START_TIMEOUT_S,
    current_status,
    health,
    launch,
    terminate,
)
from dspex_lab.local_model._state import ServerState, clear_state, locked

__all__ = ["ensure_running", "owned_servers", "stop_owned"]

_lock = threading.Lock()
_owned: dict[str, tuple[int, ServerState]] = {}
"""model -> (the pid of the process that started it, its state)."""
_atexit_registered = False


def ensure_running(model: str = "smollm2", *, threads: int | None = None,
                   ctx: int | None = None, timeout: float = START_TIMEOUT_S) -> ServerState:
    """The state of a healthy server for ``model``, starting one owned by this process if needed.

    ``threads`` and ``ctx`` apply only when a server has to be started. Thread-safe
    and safe across processes (the start lock is a file lock).
    """
    global _atexit_registered
    spec = find_model(model)
    with _lock, locked(spec.name):
        current = current_status(spec.name)
        if current.running and current.state is not None:
            if current.healthy or health(current.state.port, timeout=5.0):
                return current.state
            # alive but not answering even after the start lock was released: replace it
            terminate(current.state.pid)
            clear_state(spec.name, current.state.pid)
        state, _proc = launch(spec, threads=threads, ctx=ctx, timeout=timeout,
                              owner_pid=os.getpid())
        _owned[spec.name] = (os.getpid(), state)
        if not _atexit_registered:
            atexit.register(stop_owned)
            _atexit_registered = True
        return state


def owned_servers() -> dict[str, ServerState]:
    """The servers this process started and will stop at exit."""
    me = os.getpid()
    return {name: state for name, (pid, state) in _owned.items() if pid == me}


def stop_owned() -> None:
    """Stop every server this process owns (registered with ``atexit``)."""
    me = os.getpid()
    for name, (pid, state) in list(_owned.items()):
        if pid != me:  # inherited through fork: the parent owns it
            continue
        with locked(name):
            current = current_status(name)
            # only if the state still names our server: someone may have stopped it
            # already (and its pid may since belong to another process)
            if current.running and current.state is not None and current.state.pid == state.pid:
                terminate(state.pid, grace=5.0)
                clear_state(name, state.pid)
        _owned.pop(name, None)
