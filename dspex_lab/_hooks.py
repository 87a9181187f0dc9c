"""Hooks run once, before the first LM or program call of the process.

Why: recording is on by default ("a user who does nothing gets every
execution recorded"), but opening the store must not happen at import time
(import must stay cheap) and the LM layer may not import the store. The
package registers a hook here; the LM and program layers run the hooks on
their first call.
This module imports nothing so that registering costs nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["on_first_call", "run_first_call_hooks"]

_hooks: list[Callable[[], None]] = []
_lock = threading.Lock()
pending = False


def on_first_call(hook: Callable[[], None]) -> None:
    global pending
    with _lock:
        if hook not in _hooks:
            _hooks.append(hook)
            pending = True


def run_first_call_hooks() -> None:
    """Run registered hooks once (thread-safe); later calls are a cheap no-op."""
    global pending
    with _lock:
        if not pending:
            return
        hooks = list(_hooks)
        _hooks.clear()
        pending = False
    for hook in hooks:
        hook()
