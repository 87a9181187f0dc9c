"""The simulated models: prices from the LM layer's catalog plus latency constants.

Prices and JSON-mode support are read from
:data:`dspex_lab.lm._builtin_models.BUILTIN_MODELS` so pricing and simulator can
never disagree. Latency is ``base + per-prompt-token + per-completion-token``;
tiny is fastest, large slowest.
"""

from __future__ import annotations

from dataclasses import dataclass

from dspex_lab.lm._builtin_models import BUILTIN_MODELS

__all__ = ["LATENCY_MS", "MODELS", "TIERS", "SimModel", "resolve_model"]

TIERS: tuple[str, ...] = ("tiny", "small", "medium", "large")
"""Model names from weakest to strongest."""

LATENCY_MS: dict[str, tuple[float, float, float]] = {
    #          base   per prompt token   per completion token
    "tiny": (80.0, 0.02, 2.0),
    "small": (150.0, 0.04, 4.0),
    "medium": (300.0, 0.08, 8.0),
    "large": (600.0, 0.15, 12.0),
}
"""Simulated latency constants in milliseconds."""


@dataclass(frozen=True, slots=True)
class SimModel:
    """Everything the simulator needs to know about one model."""

    name: str
    tier: int
    input_cost_per_token: float
    output_cost_per_token: float
    supports_json_mode: bool
    base_ms: float
    prompt_ms_per_token: float
    completion_ms_per_token: float

    def latency_ms(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Unscaled simulated latency of one call."""
        return (
            self.base_ms
            + self.prompt_ms_per_token * prompt_tokens
            + self.completion_ms_per_token * completion_tokens
        )

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """Dollar cost of one call at the catalog prices."""
        return (
            self.input_cost_per_token * prompt_tokens
            + self.output_cost_per_token * completion_tokens
        )


def _build() -> dict[str, SimModel]:
    models: dict[str, SimModel] = {}
    for tier, name in enumerate(TIERS):
        catalog = BUILTIN_MODELS[f"sim/{name}"]
        base, per_prompt, per_completion = LATENCY_MS[name]
        models[name] = SimModel(
            name, tier, catalog.input_cost_per_token, catalog.output_cost_per_token,
            catalog.supports_json_mode, base, per_prompt, per_completion,
        )
    return models


MODELS: dict[str, SimModel] = _build()


def resolve_model(name: str) -> SimModel | None:
    """The model called ``name`` or ``sim/name``; None when the simulator has no such model."""
    if name.startswith("sim/"):
        name = name[4:]
    return MODELS.get(name)
