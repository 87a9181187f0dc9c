"""Expected dollars per example of a configuration, before it runs.

For a program with one predictor the spec's estimate model applies (real
prompts rendered by the real adapters, counted; prices from the catalogue).
For anything else the optimizer falls back to what it has measured, so this
returns None and the budget logic probes with single examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dspex_lab.programs.module import Module
    from dspex_lab.variables import ConfigEstimate

__all__ = ["SAMPLE_ROWS", "CostEstimator"]

SAMPLE_ROWS = 8


class CostEstimator:
    """Per-example dollar estimates for configurations of one program (memoised)."""

    def __init__(self, program: Module, rows: Sequence[Mapping[str, Any]]) -> None:
        self._tokens: Any = None
        self._path = ""
        self._base: dict[str, Any] = {}
        self._memo: dict[str, ConfigEstimate | None] = {}
        modules = program.named_modules()
        if len(modules) != 1 or not rows:
            return
        from dspex_lab.variables._estimate import TokenModel

        (path, predictor), = modules.items()
        try:
            self._tokens = TokenModel(predictor.signature, list(rows[:SAMPLE_ROWS]))
        except Exception:  # an estimate is a convenience: never fail a run over it
            self._tokens = None
            return
        own = predictor.own_config()
        self._path = path
        self._base = {"model": own.get("model") or _default_model(), "adapter":
                      own.get("adapter") or "chat", "module": own.get("module") or "predict",
                      "instructions": own.get("instructions"),
                      "max_tokens": own.get("max_tokens"), "demos": own.get("demos") or [],
                      "max_code_retries": 2}

    @property
    def available(self) -> bool:
        return self._tokens is not None

    def per_example(self, config: Mapping[str, Any]) -> float | None:
        """Expected dollars per example under ``config`` (a ``with_config`` dict)."""
        estimate = self.estimate(config)
        return None if estimate is None else estimate.cost

    def estimate(self, config: Mapping[str, Any]) -> ConfigEstimate | None:
        """The full per-example estimate (calls, tokens, dollars, latency), memoised."""
        if self._tokens is None:
            return None
        key = repr(sorted((k, repr(v)) for k, v in config.items()))
        if key not in self._memo:
            self._memo[key] = self._estimate(config)
        return self._memo[key]

    def _estimate(self, config: Mapping[str, Any]) -> ConfigEstimate | None:
        from dspex_lab.variables._estimate import estimate_config

        merged = dict(self._base)
        for key, value in config.items():
            merged[key.rsplit(".", 1)[-1]] = value
        if not merged.get("model"):
            return None
        try:
            return estimate_config(self._tokens, merged)
        except Exception:
            return None


def _default_model() -> str | None:
    from dspex_lab import settings

    lm = settings.default_lm()
    return None if lm is None else str(lm.model)
