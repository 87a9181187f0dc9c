"""``dx.cache``: the LM response cache (see :mod:`dspex_lab.recording`)."""

from __future__ import annotations

from dspex_lab.recording import cache_clear as clear
from dspex_lab.recording import set_cache_enabled

__all__ = ["clear", "disable", "enable"]


def enable() -> None:
    """Turn the response cache on (the default)."""
    set_cache_enabled(True)


def disable() -> None:
    """Turn the response cache off: every call goes to the model."""
    set_cache_enabled(False)
