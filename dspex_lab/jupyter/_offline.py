"""Altair's ``JupyterChart`` without a CDN.

``altair.JupyterChart``'s front-end module starts with ``import vegaEmbed from
"https://esm.sh/vega-embed..."``: in a notebook without network access (or
behind a proxy) the chart never appears. Altair can instead bundle vega,
vega-lite and vega-embed into the module through vl-convert
(``JupyterChart.enable_offline()``), but that switches a class attribute of
``JupyterChart`` itself, for every chart of the kernel. We bundle into a
subclass of our own and leave the user's charts alone.

The bundle costs 3-8 s of CPU on these machines (vl-convert's JavaScript
bundler), so it is made once and kept in the user's cache directory
(``$XDG_CACHE_HOME/dspex_lab``, else ``~/.cache/dspex_lab``), keyed by the altair
and vl-convert versions and the module's source: the next kernel reads ~1 MB
instead of bundling again. A cache that cannot be written is simply not used.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from pathlib import Path
from typing import Any

__all__ = ["REMOTE_IMPORT", "bundled_esm", "offline_chart_class"]

REMOTE_IMPORT = re.compile(r"""(?:\bimport\b[^;]*?\bfrom\s*|\bimport\s*\(\s*)["']https?://""")
"""An ES module import from the network (what an offline bundle must not contain)."""


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "dspex_lab"


def bundled_esm() -> str:
    """JupyterChart's front-end module with vega, vega-lite and vega-embed bundled in
    (from the cache when an identical bundle was made before)."""
    from importlib.metadata import version

    import altair as alt
    from altair.jupyter.jupyter_chart import load_js_src

    source = load_js_src()
    key = hashlib.sha256(f"{version('altair')}|{version('vl-convert-python')}|{source}"
                         .encode()).hexdigest()[:20]
    path = _cache_dir() / f"jupyterchart-{key}.js"
    try:
        cached = path.read_text(encoding="utf-8")
        if cached and not REMOTE_IMPORT.search(cached):
            return cached
    except OSError:
        pass

    class _Bundler(alt.JupyterChart):
        """Only bundles (``enable_offline`` sets the class attribute on this class)."""

    _Bundler.enable_offline()
    esm = str(_Bundler._esm)
    if REMOTE_IMPORT.search(esm):  # altair changed how it bundles: fail loudly, not offline
        raise RuntimeError("the bundled JupyterChart module still imports from the network")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(esm, encoding="utf-8")
        tmp.replace(path)  # atomic: a concurrent kernel never reads half a bundle
    except OSError:
        pass
    return esm


@functools.cache
def offline_chart_class() -> Any:
    """``JupyterChart`` subclass whose front-end module bundles vega, vega-lite and
    vega-embed (no network fetch); made once per process."""
    import altair as alt

    class OfflineJupyterChart(alt.JupyterChart):
        """A ``JupyterChart`` whose JavaScript is bundled (works without network)."""

    # set after the class exists, as enable_offline() does: anywidget's __init_subclass__
    # would take a one-line module text for a file name
    OfflineJupyterChart._esm = bundled_esm()
    OfflineJupyterChart._is_offline = True
    return OfflineJupyterChart
