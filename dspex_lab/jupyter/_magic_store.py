"""``%%dspex sql``, ``%dspex runs``, ``%dspex stop`` and ``%dspex store``.

Each is one call of the Python API (``dx.sql``, ``dx.optimize.runs``,
``run.stop``, ``dx.configure(store=...)``) with the notebook's variables
plugged in. SQL parameters are bound, never formatted into the text (see
:mod:`._magic_sql`).
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from dspex_lab.jupyter._magic_args import parse, peel_options, valid_name
from dspex_lab.jupyter._magic_common import Notebook, fail
from dspex_lab.jupyter._magic_sql import SqlReferenceError, bind_references, resolve

if TYPE_CHECKING:
    import pandas as pd

    from dspex_lab.optimize import Run

__all__ = ["live_runs", "runs", "sql", "stop", "store"]

_LIVE_COLUMNS = ("state", "stop_reason", "n_trials", "n_completed", "n_pruned", "n_failed",
                 "spent")


def _query_store(query: str, params: list[Any] | None, store: str | None) -> pd.DataFrame:
    import dspex_lab as dx
    from dspex_lab.errors import DspexError

    try:
        return dx.sql(query, params, store=store)
    except DspexError as exc:
        fail(f"{type(exc).__name__}: {exc}")


def sql(nb: Notebook, line: str, cell: str | None) -> pd.DataFrame | None:
    """Run the query (the cell body, or the line after the options); bind it to ``-o``."""
    options, inline = peel_options(line)
    args = parse("sql", options)
    if args is None:
        return None
    if cell is not None and inline:
        fail("write the query after the options or in the cell body, not both.")
    query = inline if cell is None else cell
    if not query.strip():
        fail("no query: write it in the cell body (%%dspex sql) or after the options "
             "(%dspex sql select ...).")
    out = None if args.out is None else valid_name(args.out, "the -o variable")
    bound = bind_references(query)
    try:
        params = resolve(bound, nb.namespaces())
    except SqlReferenceError as exc:
        fail(str(exc))
    frame = _query_store(bound.query, params, args.store)
    if out is not None:
        nb.bind(out, frame)
    return frame


def live_runs() -> list[Run]:
    """The runs started in this kernel (none can exist before the optimizer is imported,
    so listing them never imports it: Optuna is slow to load)."""
    registry = sys.modules.get("dspex_lab.optimize._run")
    return [] if registry is None else list(registry.runs())


def _live_row(run: Run) -> dict[str, Any]:
    import pandas as pd

    states: dict[str, int] = {}
    for trial in run.trial_list():
        states[trial.state] = states.get(trial.state, 0) + 1
    return {"run_id": run.run_id, "name": run.name, "strategy": run.strategy.name,
            "state": run.state, "stop_reason": run.stop_reason,
            "started_at": pd.to_datetime(run.started_at, unit="s"),  # naive UTC, as stored
            "ended_at": None if run.ended_at is None else pd.to_datetime(run.ended_at,
                                                                         unit="s"),
            "n_trials": sum(states.values()), "n_completed": states.get("completed", 0),
            "n_pruned": states.get("pruned", 0), "n_failed": states.get("failed", 0),
            "spent": run.spent}


def _merge(stored: pd.DataFrame | None, live: list[Run], add_unstored: bool) -> pd.DataFrame:
    """The store's rows with this kernel's live figures in place of the (flushed, so
    slightly older) stored ones, plus live runs the store does not hold yet; the
    ``in_kernel`` column says which runs ``%dspex stop`` can reach."""
    import pandas as pd

    rows = {run.run_id: _live_row(run) for run in live}
    frame = stored.copy() if stored is not None else pd.DataFrame({"run_id": []})
    for index, run_id in frame["run_id"].items():
        for column in _LIVE_COLUMNS if run_id in rows else ():
            frame.at[index, column] = rows[run_id][column]
    stored_ids = set(frame["run_id"])
    missing = [row for run_id, row in rows.items() if run_id not in stored_ids]
    if add_unstored and missing:
        extra = pd.DataFrame(missing)
        frame = extra if frame.empty else pd.concat([frame, extra], ignore_index=True)
    frame.insert(1, "in_kernel", frame["run_id"].isin(rows))
    if "started_at" in frame.columns and not frame.empty:
        frame = frame.sort_values("started_at", ascending=False, na_position="last")
    return frame.reset_index(drop=True)


def runs(args: argparse.Namespace) -> pd.DataFrame:
    """``run_summary`` (trial counts, best accuracy, spend per run) merged with the live
    state of this kernel's runs; with recording off, this kernel's runs alone."""
    import dspex_lab as dx
    from dspex_lab.errors import ConfigurationError, DspexError

    stored: pd.DataFrame | None = None
    try:
        stored = dx.sql("select * from run_summary", store=args.store)
    except ConfigurationError as exc:  # recording off and no --store: live runs only
        print(f"{exc} Showing this kernel's runs only.", file=sys.stderr)
    except DspexError as exc:
        fail(f"{type(exc).__name__}: {exc}")
    return _merge(stored, live_runs(), add_unstored=args.store is None)


def _find_run(nb: Notebook, key: str) -> Run:
    """A run of this kernel by id, or by the variable it is bound to."""
    found, value = nb.get(key)
    for run in live_runs():
        if run.run_id == key or (found and value is run):
            return run
    ids = ", ".join(r.run_id for r in live_runs()) or "none"
    fail(f"no run {key!r} in this kernel (runs here: {ids}); a run started by another "
         f"process is stopped there, with run.stop().")


def stop(nb: Notebook, args: argparse.Namespace) -> list[Run]:
    """Ask the chosen runs to stop (they finish the slices in flight); returns them."""
    if args.all and args.run_id:
        fail("give a run id or --all, not both.")
    if args.run_id:
        targets = [_find_run(nb, args.run_id)]
    else:
        running = [r for r in live_runs() if not r.done]
        targets = running if args.all else running[-1:]
    if not targets:
        print("No run is running in this kernel.")
    for run in targets:
        if run.done:
            print(f"{run.run_id} has already ended ({run.state}).")
            continue
        run.stop()
        print(f"Stopping {run.run_id}: no new trial starts; trials in flight finish their "
              f"slice.")
    return targets


def store(args: argparse.Namespace) -> None:
    """Print the store being recorded into, or switch (or turn off) recording."""
    import dspex_lab as dx
    from dspex_lab import recording
    from dspex_lab.errors import DspexError

    if args.off and args.path:
        fail("give a path or --off, not both.")
    try:
        if args.off:
            dx.configure(store=None)
        elif args.path:
            dx.configure(store=args.path)
        current = recording.active_store()
    except (DspexError, OSError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
    if current is None:
        print("Recording is off (%dspex store PATH turns it on).")
    else:
        print(f"Recording into {current.path}")
