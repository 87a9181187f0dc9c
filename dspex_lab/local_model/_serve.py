"""The server process: llama-cpp-python's OpenAI-compatible server, plus a parent watch.

Run as ``python -m dspex_lab.local_model._serve [--watch-pid PID] -- <server args>``.
Everything after ``--`` goes to ``python -m llama_cpp.server`` unchanged. With
``--watch-pid``, the server shuts down as soon as that process (its parent,
the notebook kernel or script that owns it) is gone, even when the owner was
killed and could not run its exit handlers: a server owned by a dead kernel
would otherwise hold memory and a port until someone noticed.

The module name itself marks the process as ours (see ``_state.is_our_server``).
"""

from __future__ import annotations

import argparse
import os
import runpy
import signal
import sys
import threading
import time
from collections.abc import Sequence

__all__ = ["main"]

_WATCH_INTERVAL_S = 0.5
_GRACE_S = 5.0


def _watch_parent(pid: int) -> None:
    """SIGTERM ourselves (uvicorn shuts down cleanly) once ``pid`` is no longer our parent."""
    while os.getppid() == pid:
        time.sleep(_WATCH_INTERVAL_S)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(_GRACE_S)
    os._exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m dspex_lab.local_model._serve")
    parser.add_argument("--watch-pid", type=int, default=0,
                        help="exit when this process (our parent) exits")
    split = args.index("--") if "--" in args else len(args)
    ours = parser.parse_args(args[:split])
    server_args = args[split + 1:]
    if ours.watch_pid:
        if os.getppid() != ours.watch_pid:  # the owner is already gone
            return 0
        threading.Thread(target=_watch_parent, args=(ours.watch_pid,), daemon=True,
                         name="dspex-parent-watch").start()
    sys.argv = ["llama_cpp.server", *server_args]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
