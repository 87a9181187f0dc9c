"""``%dspex export``: ``dx.export_app`` and ``dx.export_report`` from a notebook line.

``%dspex export [run] [-o app.py] [--report report.html] [--no-app] [--store PATH]
[--overwrite]``. The run is a variable bound to a Run, a run id or a store
file; by default the latest run of this kernel, else the latest in the store
(with ``--store``: the latest in that file).
Everything here is one call of :func:`dspex_lab.app.export_app` /
:func:`dspex_lab.app.export_report`; the magic only finds the run and turns
errors into one line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dspex_lab.jupyter._magic_common import Notebook, fail
from dspex_lab.jupyter._magic_store import live_runs

__all__ = ["export"]


def _latest_stored(store: str | None) -> str:
    import dspex_lab as dx
    from dspex_lab.errors import DspexError

    try:
        frame = dx.sql("select run_id from runs order by started_at desc, run_id limit 1",
                       store=store)
    except DspexError as exc:
        fail(f"no run to export: {exc}")
    if frame.empty:
        fail("no run to export: this kernel has started none and the store holds none "
             "(run %dspex optimize first, or name a run: %dspex export RUN_ID).")
    return str(frame["run_id"].iloc[0])


def _target(nb: Notebook, args: argparse.Namespace) -> tuple[Any, str | None]:
    """(what to export, the store a report of it reads): a Run, a run id or a store path."""
    if args.run is None:
        running = live_runs() if args.store is None else []
        if running:
            return running[-1], None
        return _latest_stored(args.store), args.store
    found, value = nb.get(args.run)
    if found and any(value is run for run in live_runs()):
        return value, args.store
    if found and not isinstance(value, str | Path):
        fail(f"{args.run} is a {type(value).__name__}, not a run: give a variable bound to "
             f"a Run, a run id or a store file.")
    return (value if found else args.run), args.store


def _is_store_path(target: Any) -> bool:
    return isinstance(target, Path) or (isinstance(target, str) and (
        target.endswith(".duckdb") or Path(target).is_file()))


def export(nb: Notebook, args: argparse.Namespace) -> None:
    """Write the app (and its data file) and/or the report; print what was written."""
    from dspex_lab.app._export import data_path_for, export_app, export_report
    from dspex_lab.errors import DspexError

    if args.no_app and not args.report:
        fail("--no-app writes nothing without --report FILE.")
    target, store = _target(nb, args)
    try:
        if not args.no_app:
            app = export_app(target, args.out, overwrite=args.overwrite, store=store)
            data = data_path_for(app)
            size = data.stat().st_size / 1e6
            print(f"Wrote {app} and {data.name} ({size:.1f} MB); run it with: "
                  f"panel serve {app}")
        if args.report:
            if _is_store_path(target):  # the report shows one run: the store's latest
                store, target = str(target), _latest_stored(str(target))
            report = export_report(target, args.report, store=store,
                                   overwrite=args.overwrite)
            print(f"Wrote {report}: open it in a browser (no server needed).")
    except (DspexError, OSError) as exc:
        fail(f"{type(exc).__name__}: {exc}")
