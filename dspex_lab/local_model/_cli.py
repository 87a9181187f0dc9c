"""``dspex-lab local-model start|stop|status``: the local model server from a shell.

``add_subcommands(sub)`` adds the ``local-model`` command to the main CLI's
subparsers (``dspex_lab.cli``, which also reports errors). A server started
here is detached: it keeps running after the command returns, until ``stop``
(any process using ``dx.LM("local/smollm2")`` then uses it instead of starting
its own).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

__all__ = ["add_subcommands", "run_command"]


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def add_subcommands(sub: Any) -> None:
    """Add ``local-model`` (with ``start``, ``stop``, ``status``) to argparse subparsers."""
    from dspex_lab.local_model._catalog import LOCAL_MODELS

    models = ", ".join(LOCAL_MODELS)
    parser = sub.add_parser(
        "local-model", help="start, stop or inspect the real local model server (SmolLM2-135M)",
        description="Serve a small real model on 127.0.0.1 through llama-cpp-python's "
                    "OpenAI-compatible server; dx.LM('local/smollm2') uses it.")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--model", default="smollm2", help=f"local model ({models})")
        p.set_defaults(func=run_command)

    start = actions.add_parser("start", help="start the server detached; returns once it "
                                             "answers")
    common(start)
    start.add_argument("--threads", type=_positive, default=None,
                       help="CPU threads for generation (default: half the usable CPUs, 1-4)")
    start.add_argument("--port", type=_positive, default=None,
                       help="port on 127.0.0.1 (default: a free one)")
    start.add_argument("--ctx", type=_positive, default=None,
                       help="context window in tokens (default 2048)")
    start.add_argument("--timeout", type=float, default=120.0,
                       help="seconds to wait for the server to answer (default 120)")
    stop = actions.add_parser("stop", help="stop the server (SIGTERM, then SIGKILL)")
    common(stop)
    stop.add_argument("--grace", type=float, default=10.0,
                      help="seconds between SIGTERM and SIGKILL (default 10)")
    status = actions.add_parser("status", help="running or stopped, with pid, port, model "
                                               "file and uptime")
    common(status)
    status.add_argument("--json", action="store_true", help="print the status as JSON")


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed ``local-model`` command; returns the exit code.

    ``status`` exits 0 when running and 3 when stopped (so scripts can test it).
    """
    from dspex_lab.local_model import _server

    if args.action == "start":
        result = _server.start(args.model, threads=args.threads, port=args.port, ctx=args.ctx,
                               timeout=args.timeout)
    elif args.action == "stop":
        result = _server.stop(args.model, grace=args.grace)
    else:
        result = _server.status(args.model)
        if args.json:
            state = asdict(result.state) if result.state is not None else None
            print(json.dumps({"model": f"local/{result.model}", "running": result.running,
                              "healthy": result.healthy, "note": result.note,
                              "uptime_s": result.state.uptime_s if result.state else None,
                              "state": state}))
            return 0 if result.running else 3
    print(result.describe())
    if args.action == "status":
        return 0 if result.running else 3
    return 0
