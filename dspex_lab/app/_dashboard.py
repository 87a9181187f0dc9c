"""The dashboard: runs list, run page, executions browser and SQL console, kept live.

:func:`build_dashboard` returns a :class:`Dashboard`, a Panel ``Viewer``: show it
in a notebook, ``.servable()`` it in a script run by ``panel serve``, or let
:func:`dspex_lab.app.serve` serve one per browser session.

Live refresh: every ``refresh_s`` seconds the session asks the store for its
fingerprint (one small query through the lock files, ~10 ms); when it changed
(a run started or ended, a trial finished, executions were recorded by any
process), the visible page reloads and the others are marked stale and reload
when they are shown. Reading happens on a worker thread, so a slow query does
not freeze the other sessions of the server; widgets are updated back on the
session's event loop. The store file is never held between refreshes (see
``docs/store.md``), so a notebook recording into it keeps recording.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import panel as pn
from panel.viewable import Viewer

from dspex_lab.app import _html
from dspex_lab.app._data import shared_source
from dspex_lab.app._pages import ExecutionsPage, RunsPage, SqlPage
from dspex_lab.app._run_page import RunPage
from dspex_lab.app._widgets import html

__all__ = ["Dashboard", "build_dashboard"]

_log = logging.getLogger("dspex_lab.app")

RUNS, RUN, EXECUTIONS, SQL = 0, 1, 2, 3
_TAB_NAMES = ("Runs", "Run", "Executions", "SQL")


class Dashboard(Viewer):
    """One session's dashboard over one store file (see the module docstring)."""

    def __init__(self, store: str | os.PathLike[str] | None = None, *,
                 run_id: str | None = None, read_only: bool = True, refresh_s: float = 2.0,
                 title: str = "dspex_lab") -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        _load_extensions()
        if refresh_s < 0:
            raise ValueError(f"refresh_s must be >= 0 (0 turns live refresh off), "
                             f"not {refresh_s}")
        self.source = shared_source(store)
        self.title = title
        self.read_only = read_only
        self.refresh_s = float(refresh_s)
        self.role = "viewer · read-only" if read_only else "admin"
        self.fingerprint: tuple[int, ...] | None = None
        self.refreshed_at: float | None = None
        self.refreshes = 0
        self._stale = {RUNS, RUN, EXECUTIONS}
        self._busy = False
        self._callback: Any = None

        self.runs_page = RunsPage(self.source, self.open_run)
        self.run_page = RunPage(self.source, run_id)
        self.executions_page = ExecutionsPage(self.source)
        self.sql_page = SqlPage(self.source, read_only=read_only)
        self.header = html("", sizing_mode="stretch_width", stylesheets=[_html.STYLE],
                                   css_classes=["dx-header"])
        self.notice = html("", sizing_mode="stretch_width", visible=False,
                                   stylesheets=[_html.STYLE], css_classes=["dx-notice"])
        self.tabs = pn.Tabs(  # type: ignore[no-untyped-call]
            (_TAB_NAMES[RUNS], self.runs_page.layout), (_TAB_NAMES[RUN], self.run_page.layout),
            (_TAB_NAMES[EXECUTIONS], self.executions_page.layout),
            (_TAB_NAMES[SQL], self.sql_page.layout),
            sizing_mode="stretch_width", css_classes=["dx-tabs"])
        if run_id is not None:
            self.tabs.active = RUN
        self.tabs.param.watch(self._on_tab, "active")
        self._layout = pn.Column(self.header, self.notice, self.tabs,
                                 sizing_mode="stretch_width", styles={"padding": "0 12px"})
        self.refresh(force=True)
        if self.refresh_s > 0:
            pn.state.onload(self._start_live)

    def __panel__(self) -> pn.Column:
        return self._layout

    def servable(self, title: str | None = None, location: Any = True, area: str = "main",
                 target: str | None = None) -> Any:
        """Mark the dashboard to be served by ``panel serve`` (the browser title defaults to
        the dashboard's)."""
        return super().servable(title=title or self.title, location=location, area=area,
                                target=target)

    # -- navigation -------------------------------------------------------------------
    def open_run(self, run_id: str) -> None:
        """Show ``run_id`` on the run page and switch to it."""
        self._guard(lambda: self.run_page.open(run_id))
        self._stale.discard(RUN)
        self.tabs.active = RUN

    def _on_tab(self, event: Any) -> None:
        if event.new in self._stale:
            self._reload(event.new)

    # -- refresh ----------------------------------------------------------------------
    def refresh(self, force: bool = False) -> bool:
        """Check the store and reload what changed (synchronously); True if it changed."""
        try:
            fingerprint = self.source.fingerprint()
        except Exception as exc:
            self._problem(exc)
            return False
        changed = force or fingerprint != self.fingerprint
        self._seen(fingerprint)
        if changed:
            self._stale = {RUNS, RUN, EXECUTIONS}
            if fingerprint is not None:
                self._reload(self.tabs.active)
                if self.tabs.active != RUNS:
                    self._reload(RUNS)  # cheap, and the run picker of other pages uses it
        self._stamp()
        return changed

    def _page(self, index: int) -> Any:
        return {RUNS: self.runs_page, RUN: self.run_page,
                EXECUTIONS: self.executions_page}.get(index)

    def _reload(self, index: int) -> None:
        page = self._page(index)
        if page is None or self.fingerprint is None:
            return
        loaded = self._read(page.load, None)
        if loaded is not None:
            self._guard(lambda: page.show(loaded))
            self._stale.discard(index)

    def _read(self, fn: Callable[[], Any], default: Any) -> Any:
        """``fn()``, or ``default`` with the reason shown in the notice bar."""
        try:
            result = fn()
        except Exception as exc:
            self._problem(exc)
            return default
        return result

    def _guard(self, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:
            self._problem(exc)

    def _problem(self, exc: BaseException) -> None:
        _log.warning("dashboard: %s", exc)
        self.notice.object = _html.message_html(f"Could not read the store: {exc}", "error")
        self.notice.visible = True

    def _seen(self, fingerprint: tuple[int, ...] | None) -> None:
        """The store answered: remember what it looks like and say whether it exists."""
        self.fingerprint = fingerprint
        if fingerprint is None:
            self.notice.object = _html.message_html(self.source.missing_message(), "warning")
            self.notice.visible = True
        else:
            self.notice.visible = False

    def _stamp(self) -> None:
        self.refreshed_at = time.time()
        self.refreshes += 1
        live = f"live, every {self.refresh_s:g} s" if self.refresh_s > 0 else "not live"
        stamp = time.strftime("%H:%M:%S", time.localtime(self.refreshed_at))
        self.header.object = _html.header_html(self.title, str(self.source.path), self.role,
                                               f"read {stamp} · {live}")

    # -- live -------------------------------------------------------------------------
    def _start_live(self) -> None:
        if self._callback is None and self.refresh_s > 0:
            tick: Any = self._tick  # Panel awaits coroutine functions; its hint says otherwise
            self._callback = pn.state.add_periodic_callback(
                tick, period=int(self.refresh_s * 1000))

    def stop(self) -> None:
        """Stop the live refresh of this dashboard."""
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    async def _tick(self) -> None:
        """One live refresh: read on a worker thread, update widgets here."""
        if self._busy:
            return  # the previous refresh is still reading
        self._busy = True
        try:
            try:
                fingerprint = await asyncio.to_thread(self.source.fingerprint)
            except Exception as exc:
                self._problem(exc)
                return
            changed = fingerprint != self.fingerprint
            self._seen(fingerprint)
            if changed and fingerprint is not None:
                self._stale = {RUNS, RUN, EXECUTIONS}
                for index in dict.fromkeys((self.tabs.active, RUNS)):
                    page = self._page(index)
                    if page is None:
                        continue
                    try:
                        loaded = await asyncio.to_thread(page.load)
                    except Exception as exc:
                        self._problem(exc)
                        continue
                    self._guard(partial(page.show, loaded))
                    self._stale.discard(index)
            self._stamp()
        finally:
            self._busy = False


def _load_extensions() -> None:
    """In a served session (``dspex-lab serve``, ``panel serve app.py``), declare the
    front-end code the pages need: the Vega panes are made after the session's first
    render (when a run is opened), which Panel cannot discover by itself. A notebook
    calls ``pn.extension("tabulator", "vega")`` itself."""
    doc = pn.state.curdoc
    if doc is not None and getattr(doc, "session_context", None) is not None:
        pn.extension("tabulator", "vega")


def build_dashboard(store: str | os.PathLike[str] | None = None, *, run_id: str | None = None,
                    read_only: bool = True, refresh_s: float = 2.0,
                    title: str = "dspex_lab") -> Dashboard:
    """The dashboard over ``store`` (None: the configured default store).

    ``run_id`` opens that run's page first; ``refresh_s`` is how often it checks the
    store for changes (0: never; it still reads once). ``read_only=True`` is the viewer
    role: the SQL console runs statements through the store's read-only guard, always.
    ``read_only=False`` is the admin role, reserved for write actions (none yet); the SQL
    console stays read-only for it too. The result is a Panel viewable: display it in a
    notebook (after ``pn.extension("tabulator", "vega")``), or call ``.servable()`` in a
    script served by ``panel serve``."""
    return Dashboard(store, run_id=run_id, read_only=read_only, refresh_s=refresh_s,
                     title=title)
