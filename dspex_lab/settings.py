"""Process-wide defaults: which LM a module uses when none is given, and the like.

``dx.configure(...)`` sets them for the process; ``dx.context(...)`` overrides
them inside a ``with`` block (a context variable, so concurrent tasks and
threads started inside see the override and others do not).
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from dspex_lab.errors import ConfigurationError
from dspex_lab.lm import LM
from dspex_lab.lm._providers import provider_info

__all__ = ["DEFAULT_LM_ENV", "Settings", "configure", "context", "current", "default_lm", "lm_for"]

DEFAULT_LM_ENV = "DSPEX_LM"
"""The model used when none is configured (e.g. ``sim/small`` on Binder, where no key exists)."""


@dataclass(frozen=True, slots=True)
class Settings:
    lm: LM | None = None
    adapter: str = "chat"


_global = Settings()
_override: contextvars.ContextVar[Settings | None] = contextvars.ContextVar(
    "dspex_settings", default=None)
_FIELDS = frozenset(Settings.__dataclass_fields__)


def current() -> Settings:
    return _override.get() or _global


def default_lm() -> LM | None:
    """The configured default LM, else the model named by ``DSPEX_LM``, else None.

    The environment variable lets a deployment (Binder, a CI job, a container) choose the
    model for every notebook it runs without editing them; ``dx.configure(lm=...)`` and
    ``dx.context(lm=...)`` still win.
    """
    lm = current().lm
    if lm is not None:
        return lm
    name = os.environ.get(DEFAULT_LM_ENV, "").strip()
    if not name:
        return None
    try:
        return lm_for(name)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{DEFAULT_LM_ENV}={name!r} does not name a usable model: "
                                 f"{exc}") from exc


def _coerce(changes: dict[str, Any]) -> dict[str, Any]:
    unknown = set(changes) - _FIELDS
    if unknown:
        raise ConfigurationError(
            f"Unknown setting(s) {sorted(unknown)}; valid settings: {sorted(_FIELDS)}.")
    if isinstance(changes.get("lm"), str):
        changes["lm"] = lm_for(changes["lm"])
    return changes


def configure(**changes: Any) -> Settings:
    """Set process-wide defaults, e.g. ``dx.configure(lm=dx.LM("sim/small"))``.

    Also ``store=`` (a path, a Store, or None to turn recording off) and
    ``cache=`` (False turns the LM response cache off).
    """
    global _global
    from dspex_lab import recording

    if "store" in changes:
        recording.set_store(changes.pop("store"))
    if "cache" in changes:
        recording.set_cache_enabled(bool(changes.pop("cache")))
    _global = replace(_global, **_coerce(changes))
    return _global


@contextmanager
def context(**changes: Any) -> Iterator[Settings]:
    """Override defaults inside a ``with`` block only."""
    token = _override.set(replace(current(), **_coerce(changes)))
    try:
        yield current()
    finally:
        _override.reset(token)


_lm_cache: dict[tuple[str, str | None], LM] = {}
_lm_lock = threading.Lock()


def lm_for(model: str) -> LM:
    """The shared ``LM`` for a model string (so configs naming a model reuse one client).

    If the default LM is the same model, that instance (with its base_url and
    key) is used.
    """
    default = current().lm
    if default is not None and default.model == model:
        return default
    # The endpoint may come from the environment (DSPEX_SIM_URL, OLLAMA_BASE_URL...),
    # which can change between calls (a restarted simulator): key on it too.
    info = provider_info(model.partition("/")[0])
    endpoint = os.environ.get(info.env_base_url) if info and info.env_base_url else None
    key = (model, endpoint)
    with _lm_lock:
        lm = _lm_cache.get(key)
        if lm is None:
            lm = _lm_cache[key] = LM(model)
        return lm
