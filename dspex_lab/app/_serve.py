"""``dspex-lab serve``: the dashboard on a Panel (Bokeh/Tornado) server.

One :class:`~dspex_lab.app._dashboard.Dashboard` per browser session, all of them
reading the same store file through the store's cross-process path, so the
server can run next to a notebook that records into the file. Loopback by
default; another address needs a login (:mod:`dspex_lab.app._auth`). Panel
serves every script and style the page uses (Bokeh, Tabulator, vega) from
this server: the page works on a machine without internet access.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from dspex_lab.app._auth import AuthPolicy, check_bind, is_loopback
from dspex_lab.errors import ConfigurationError

__all__ = ["StoreMissingError", "serve"]


class StoreMissingError(ConfigurationError):
    """``dspex-lab serve`` was pointed at a store file that does not exist."""

    kind = "store_missing"


def _store_path(store: str | os.PathLike[str] | None) -> Path:
    from dspex_lab.app._data import default_store_path
    from dspex_lab.store import resolve_path

    return resolve_path(store) if store is not None else default_store_path()


def _origins(host: str, port: int, extra: Sequence[str] | None) -> list[str]:
    """Hosts (``host:port``) whose pages may open the server's websocket (Bokeh cannot
    match IPv6 literals: open those servers through a name such as ``localhost``)."""
    names = ["localhost", "127.0.0.1"] if is_loopback(host) else []
    if host in ("", "0.0.0.0", "::", "[::]"):
        names += [socket.gethostname(), socket.getfqdn()]
    elif ":" not in host:
        names.append(host)
    out = [f"{n}:{port}" for n in dict.fromkeys(names) if n]
    out += list(extra or [])
    return list(dict.fromkeys(out))


def _free_port(host: str) -> int:
    """A port nothing listens on (for ``port=0``: the origins must name the real port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host.strip("[]") or "", 0))
        port: int = s.getsockname()[1]
        return port


def _warm() -> None:
    """Import what the first page needs (altair, the optimizer's Pareto code) while the
    server starts, so the first visitor does not wait for it."""
    try:
        import dspex_lab.app._run_page
        import dspex_lab.jupyter.charts
        import dspex_lab.optimize  # noqa: F401
    except Exception:  # the page will report it, with its own message
        pass


def serve(store: str | os.PathLike[str] | None = None, *, port: int = 5006,
          host: str = "127.0.0.1", auth: AuthPolicy | None = None, show: bool = False,
          run_id: str | None = None, refresh_s: float = 2.0, title: str = "dspex_lab",
          websocket_origin: Sequence[str] | None = None, ssl_certfile: str | None = None,
          ssl_keyfile: str | None = None, start: bool = True,
          out: TextIO | None = None) -> Any:
    """Serve the dashboard over ``store`` (None: the configured default store) at
    ``http://host:port/``.

    Refuses (:class:`UnsafeBindError`) a non-loopback ``host`` without ``auth`` and
    (:class:`StoreMissingError`) a store file that does not exist. Prints the URL to
    ``out`` (stdout). ``start=True`` serves until interrupted; ``start=False`` returns
    the unstarted Bokeh server (``server.start()``, then run its ``io_loop``).
    ``websocket_origin``: extra ``host:port`` names the page may be opened under (a
    proxy's, a DNS name's)."""
    check_bind(host, auth)
    if port < 0 or port > 65535:
        raise ConfigurationError(f"port must be 0..65535, not {port}")
    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise ConfigurationError("TLS needs both --ssl-certfile and --ssl-keyfile")
    path = _store_path(store)
    if not path.is_file():
        raise StoreMissingError(
            f"no store at {path}. Create one with `dspex-lab demo` (an offline optimization "
            f"on the built-in simulator, writing ./dspex.duckdb), record from Python with "
            f"dx.configure(store='{path}'), or pass --store PATH (default: $DSPEX_STORE or "
            f"./dspex.duckdb).")
    warm = threading.Thread(target=_warm, name="dspex-app-warm", daemon=True)
    warm.start()

    from panel.io.server import get_server

    from dspex_lab.app._dashboard import build_dashboard

    def session() -> Any:
        from panel import state

        args = state.session_args if state.curdoc is not None else {}
        wanted = run_id
        if wanted is None and args.get("run"):
            wanted = args["run"][0].decode("utf-8", "replace")
        return build_dashboard(path, run_id=wanted, read_only=True, refresh_s=refresh_s,
                               title=title)

    if port == 0:
        port = _free_port(host)
    options: dict[str, Any] = dict(port=port, address=host, show=False, title=title,
                                   websocket_origin=_origins(host, port, websocket_origin),
                                   start=False)
    if auth is not None:
        from dspex_lab.app._login import template_files

        options.update(auth.panel_kwargs())
        login_page, logout_page = template_files()
        options["logout_template"] = logout_page
        if auth.kind == "basic":
            options["login_template"] = login_page
    if ssl_certfile is not None:
        options.update(ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile)
    server = get_server(session, **options)
    actual = server.port
    scheme = "https" if ssl_certfile else "http"
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    stream = out or sys.stdout
    login = f"; login: {auth.describe()}" if auth is not None else ""
    print(f"dspex_lab dashboard at {scheme}://{shown}:{actual}/  (store {path}, "
          f"read-only{login}). Ctrl+C stops it.", file=stream, flush=True)
    if not start:
        return server
    server.start()
    if show:
        server.io_loop.add_callback(server.show, "/login" if auth is not None else "/")
    try:
        server.io_loop.start()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return server
