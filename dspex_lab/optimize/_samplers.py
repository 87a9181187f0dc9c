"""The Optuna sampler behind each strategy name, and a quiet Optuna.

Optuna logs every finished trial at INFO level; a run tells Optuna about
hundreds of trials (rejected and duplicate proposals included), so those
records are dropped while *our* runs tell, without touching the user's own
Optuna logging configuration.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import optuna

__all__ = ["make_sampler", "quiet_optuna"]

_quiet = threading.local()


class _DropWhileQuiet(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(_quiet, "on", False)


_installed = False


def _install_filter() -> None:
    global _installed
    if not _installed:
        logging.getLogger("optuna").addFilter(_DropWhileQuiet())
        for handler in logging.getLogger("optuna").handlers:
            handler.addFilter(_DropWhileQuiet())
        _installed = True


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Drop Optuna's log records (and its experimental-feature warnings) meanwhile."""
    _install_filter()
    _quiet.on = True
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="optuna")
            warnings.filterwarnings("ignore", message=".*experimental.*")
            yield
    finally:
        _quiet.on = False


def make_sampler(strategy: str, *, seed: int, trials: int, conditional: bool
                 ) -> optuna.samplers.BaseSampler:
    """The sampler for ``strategy``; ``grid`` enumerates through the run's queue, so its
    sampler only fills in what the queue leaves (nothing)."""
    import optuna

    with quiet_optuna():
        if strategy in ("grid", "random"):
            return optuna.samplers.RandomSampler(seed=seed)
        if strategy in ("tpe", "surrogate"):  # surrogate: TPE fills in where it abstains
            startup = max(4, min(10, trials // 4))
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=conditional,
                                              n_startup_trials=startup, constant_liar=True)
        if strategy == "nsga2":
            population = max(8, min(50, trials // 5))
            return optuna.samplers.NSGAIISampler(seed=seed, population_size=population)
        if strategy == "gp":
            from dspex_lab.optimize._gp import GPSampler

            return GPSampler(seed=seed, n_startup_trials=max(4, min(8, trials // 4)))
    raise ValueError(f"unknown strategy {strategy!r}")  # pragma: no cover - checked earlier
