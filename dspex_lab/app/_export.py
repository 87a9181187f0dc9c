"""Exporting runs: a standalone Panel app (``export_app``) and a static page (``export_report``).

Both exist to let results leave the notebook: an app someone else can run
with ``panel serve app.py`` (on another machine, without the user's store),
and a page that opens from disk with no server at all. Both therefore hold
*only* what they show, with every secret blanked (see :mod:`._scrub`), and
both are all-or-nothing: files are written under temporary names in the
target directory, checked byte by byte for known secret values, and only
then renamed into place, so a failure leaves nothing half-written and an
existing file is replaced only with ``overwrite=True``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dspex_lab.app._scrub import Scrubber
from dspex_lab.app._snapshot import DEFAULT_SAMPLES_PER_TRIAL, SnapshotInfo, write_snapshot
from dspex_lab.errors import DspexError

if TYPE_CHECKING:
    from dspex_lab.jupyter._data import RunData

__all__ = ["ExportError", "data_path_for", "export_app", "export_report"]

PathArg = str | os.PathLike[str]


class ExportError(DspexError):
    """An export could not be written: a bad argument, an existing file, a run that is
    not in the store, or a secret found in a file about to be written."""

    kind = "export"


# -- what to export -------------------------------------------------------------------------

def _live_run_type() -> type | None:
    """``dspex_lab.optimize.Run`` if the optimizer is loaded (no run can exist otherwise,
    and importing it costs Optuna's import)."""
    module = sys.modules.get("dspex_lab.optimize._run")
    return None if module is None else getattr(module, "Run", None)


def _is_run(obj: Any) -> bool:
    run_type = _live_run_type()
    return run_type is not None and isinstance(obj, run_type)


def _lm_secrets(objs: Iterable[Any]) -> list[str]:
    """API keys and header values of the LMs that the given runs' programs use, and of
    the default LM: a key passed as ``api_key=`` is in no environment variable, so the
    scrubber is told about it (LMs never record them, but user text might hold one)."""
    lms: list[Any] = []
    settings = sys.modules.get("dspex_lab.settings")
    if settings is not None:
        lms.append(getattr(settings.current(), "lm", None))
    for obj in objs:
        if not _is_run(obj):
            continue
        for module in obj.program.named_modules().values():
            lms.append(getattr(getattr(module, "cfg", None), "lm", None))
    values: list[str] = []
    for lm in lms:
        secret_values = getattr(lm, "secret_values", None)
        if callable(secret_values):
            values += secret_values()
    return values


def _looks_like_store(obj: Any) -> bool:
    if isinstance(obj, os.PathLike):
        return True
    return isinstance(obj, str) and (obj.endswith(".duckdb") or Path(obj).is_file())


def _run_id(obj: Any, what: str) -> str:
    if _is_run(obj):
        return str(obj.run_id)
    if isinstance(obj, str) and obj.strip():
        return obj.strip()
    raise ExportError(f"{what} must be a Run or a run id, not {type(obj).__name__} "
                      f"({obj!r})")


def _known_runs(source: Any, run_ids: Sequence[str] | None) -> list[str]:
    """The ids among ``run_ids`` (all when None) that the store holds, oldest first."""
    from dspex_lab.recording import sql

    try:
        if run_ids is None:
            frame = sql("SELECT run_id FROM runs ORDER BY started_at, run_id", store=source)
        else:
            frame = sql("SELECT run_id FROM runs WHERE list_contains(?, run_id) "
                        "ORDER BY started_at, run_id", [list(run_ids)], store=source)
    except DspexError as exc:
        raise ExportError(f"cannot read the runs to export: {exc}") from None
    return [str(r) for r in frame["run_id"]]


@dataclass(frozen=True)
class _Selection:
    source: Any          # the store to read: a path, a Store, or None (the recording one)
    run_ids: list[str]   # what goes into the snapshot
    focus: str | None    # the run the app opens on (None: the app lists them)


def _select(run_or_store: Any, runs: Iterable[Any] | None, store: PathArg | None
            ) -> _Selection:
    if _looks_like_store(run_or_store):
        path = Path(run_or_store)
        if not path.is_file():
            raise ExportError(f"no store at {path}: give a DuckDB file written by dspex_lab, "
                              f"a Run, or a run id")
        if store is not None:
            raise ExportError("give the store either as the first argument or as store=, "
                              "not both")
        source: Any = path
        wanted = None if runs is None else [_run_id(r, "each of runs") for r in runs]
        focus = None
    else:
        source = store
        focus = _run_id(run_or_store, "run_or_store (or a store path)")
        extra = [] if runs is None else [_run_id(r, "each of runs") for r in runs]
        wanted = list(dict.fromkeys([focus, *extra]))
    found = _known_runs(source, wanted)
    where = "the store being recorded into" if source is None else str(source)
    if wanted is None and not found:
        raise ExportError(f"{where} holds no runs yet: run dx.optimize(...) first")
    missing = [r for r in (wanted or []) if r not in found]
    if missing:
        raise ExportError(
            f"run(s) {', '.join(missing)} not found in {where} (runs are there once "
            f"dx.optimize has recorded them; list them with dspex-lab runs, or pass "
            f"store= to read another file)")
    if focus is None and len(found) == 1:
        focus = found[0]
    return _Selection(source, found if wanted is None else wanted, focus)


# -- files ------------------------------------------------------------------------------------

def data_path_for(app_path: PathArg) -> Path:
    """Where the app's data goes: ``app.py`` -> ``app_data.duckdb`` next to it."""
    path = Path(app_path)
    return path.with_name(f"{path.stem}_data.duckdb")


def _check_targets(paths: Sequence[Path], overwrite: bool) -> None:
    for path in paths:
        if path.is_dir():
            raise ExportError(f"{path} is a directory; give a file name")
        if path.exists() and not overwrite:
            raise ExportError(f"{path} exists; pass overwrite=True (--overwrite in "
                              f"%dspex export) to replace it, or choose another path")


def _check_no_leaks(files: Iterable[Path], scrubber: Scrubber, final: Iterable[Path]) -> None:
    for path, shown in zip(files, final, strict=True):
        leaks = scrubber.leaks(path.read_bytes())
        if leaks:
            raise ExportError(f"refusing to write {shown}: it would contain secret values "
                              f"({', '.join(leaks)}); nothing was written")


def _commit(moves: Sequence[tuple[Path, Path]]) -> None:
    """Rename every temporary file into place; undo the earlier renames if one fails
    (files that existed before are only replaced, never removed)."""
    done: list[Path] = []
    try:
        for tmp, final in moves:
            existed = final.exists()
            os.replace(tmp, final)
            if not existed:
                done.append(final)
    except OSError as exc:
        for path in done:
            with contextlib.suppress(OSError):
                path.unlink()
        raise ExportError(f"could not move the export into place: {exc}") from None


def _safe_comment(text: str) -> str:
    """One line of printable text, fit for a ``#`` comment."""
    return "".join(c if c.isprintable() else " " for c in text)


def app_source(app_name: str, data_name: str, run_id: str | None, title: str,
               info: SnapshotInfo) -> str:
    """The text of the generated ``app.py`` (short on purpose: users read it)."""
    from dspex_lab import __version__

    shown = f"run {run_id}" if run_id else f"{len(info.run_ids)} runs"
    stamp = time.strftime("%Y-%m-%d %H:%M")
    app = _safe_comment(app_name)
    lines = [
        f"# A dspex_lab dashboard of {_safe_comment(shown)}, exported {stamp} by dspex_lab "
        f"{__version__}.",
        "#",
        f"# Run it (from any directory):  panel serve {app}  then open the address it prints;",
        f"# or:  python {app}  (serves it and opens a browser tab).",
        "#",
        f"# It reads {_safe_comment(data_name)} next to this file: a copy of "
        f"{_safe_comment(info.describe())},",
        "# with API keys and other secrets blanked as ***. It needs dspex-lab installed, not",
        "# the store the runs were recorded in, and it only reads (nothing can change the data).",
        "from pathlib import Path",
        "",
        "from dspex_lab.app import build_dashboard",
        "",
        f"DATA = Path(__file__).resolve().parent / {data_name!r}",
        "",
        f"dashboard = build_dashboard(store=DATA, run_id={run_id!r}, read_only=True,",
        f"                            title={title!r}).servable()",
        "",
        'if __name__ == "__main__":',
        "    dashboard.show()",
        "",
    ]
    source = "\n".join(lines)
    compile(source, app_name, "exec")  # a template mistake fails here, not in the user's hands
    return source


def _title(run_ids: Sequence[str], focus: str | None, source: Any) -> str:
    if focus is None:
        return f"dspex_lab: {len(run_ids)} runs"
    from dspex_lab.recording import sql

    try:
        names = sql("SELECT name FROM runs WHERE run_id = ?", [focus], store=source)["name"]
        name = names.iloc[0] if len(names) else None
    except DspexError:
        name = None
    return f"dspex_lab: {name}" if isinstance(name, str) and name else f"dspex_lab: {focus}"


def export_app(run_or_store: Any, path: PathArg = "app.py", *,
               runs: Iterable[Any] | None = None, overwrite: bool = False,
               title: str | None = None, store: PathArg | None = None,
               samples_per_trial: int | None = DEFAULT_SAMPLES_PER_TRIAL) -> Path:
    """Write a standalone Panel app of one or more runs; returns the app's path.

    ``run_or_store``: a :class:`~dspex_lab.optimize.Run`, a run id, or the path of a
    store file. Writes ``path`` (``app.py``) and, next to it, its data
    (``app_data.duckdb``: named after the app) holding only the chosen runs: their
    ``runs``, ``trials``, ``programs`` and ``variable_spaces`` rows and their
    executions, with the prompts and replies of only the first ``samples_per_trial``
    top-level calls of each trial (None keeps all; totals stay exact either way).
    The LM cache and the rest of the store are not copied; API keys, auth headers
    and the values of secret environment variables are blanked. ``panel serve
    app.py`` then runs it from any directory, without the original store. A run still
    running is exported as it stands.

    ``runs``: more runs to include with a Run or run id, or which runs of a store
    file (default: all of them; the app then lists them). ``store``: where to read a
    Run or run id (default: the store being recorded into). ``title``: the
    dashboard's title. Existing files are replaced only with ``overwrite=True``;
    nothing is left half-written if anything fails.
    """
    app_path = Path(path)
    if app_path.suffix != ".py":
        raise ExportError(f"the app file must end in .py (panel serve runs it), not "
                          f"{app_path.name!r}")
    if samples_per_trial is not None and (not isinstance(samples_per_trial, int)
                                          or samples_per_trial < 0):
        raise ExportError(f"samples_per_trial must be an integer >= 0 or None, not "
                          f"{samples_per_trial!r}")
    data_path = data_path_for(app_path)
    _check_targets([app_path, data_path], overwrite)
    more = None if runs is None else list(runs)
    selection = _select(run_or_store, more, store)
    scrubber = Scrubber(_lm_secrets([run_or_store, *(more or [])]))
    chosen_title = scrubber.text(title if title is not None else
                                 _title(selection.run_ids, selection.focus, selection.source))
    app_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{app_path.stem}-export-", dir=app_path.parent))
    try:
        info = write_snapshot(scratch / data_path.name, selection.run_ids,
                              source=selection.source, scrubber=scrubber,
                              samples_per_trial=samples_per_trial)
        tmp_app = scratch / app_path.name
        source = app_source(app_path.name, data_path.name, selection.focus, chosen_title,
                            info)
        tmp_app.write_text(scrubber.text(source), encoding="utf-8")
        _check_no_leaks([info.path, tmp_app], scrubber, [data_path, app_path])
        _check_targets([app_path, data_path], overwrite)  # nobody wrote them meanwhile
        _commit([(info.path, data_path), (tmp_app, app_path)])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return app_path


def _run_data(run: Any, store: PathArg | None) -> RunData:
    from dspex_lab.jupyter._data import RunData, as_run_data

    if isinstance(run, RunData) or _is_run(run):
        return as_run_data(run)
    if not isinstance(run, str) or not run.strip():
        raise ExportError(f"run must be a Run or a run id, not {type(run).__name__} ({run!r})")
    try:
        return as_run_data(run.strip(), store)
    except DspexError as exc:
        raise ExportError(str(exc)) from None


def export_report(run: Any, path: PathArg = "report.html", *, store: PathArg | None = None,
                  overwrite: bool = False, x: str = "cost", y: str = "accuracy") -> Path:
    """Write a run as one self-contained HTML page; returns its path.

    The page (summary, the Pareto front and the hypervolume history as embedded
    images, the history as a table, the front's configurations, every trial) opens
    from disk in any browser: no server, no script, nothing fetched from the
    network. ``run``: a Run (also one recorded nowhere) or a run id (this process's
    run, else read from ``store``, default the store being recorded into). ``x``,
    ``y``: the front's axes. API keys, auth headers and secret environment values are
    blanked. An existing file is replaced only with ``overwrite=True``.
    """
    from dspex_lab.app._report import render_report

    target = Path(path)
    if target.suffix.lower() not in (".html", ".htm"):
        raise ExportError(f"the report file must end in .html, not {target.name!r}")
    _check_targets([target], overwrite)
    data = _run_data(run, store)
    scrubber = Scrubber(_lm_secrets([run]))
    try:
        page = render_report(data, scrubber, x=x, y=y)
    except ValueError as exc:  # an axis the run does not have
        raise ExportError(str(exc)) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=".html.tmp",
                                dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(page)
        _check_no_leaks([tmp], scrubber, [target])
        _check_targets([target], overwrite)
        _commit([(tmp, target)])
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return target
