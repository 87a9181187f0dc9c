"""Models the price map does not know: the simulator's and the bundled local model.

Kept as plain data in the LM layer so pricing can find them without importing
the simulator (nothing in the library imports ``dspex_lab.sim``); the
simulator reads its prices from here so both sides always agree.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BUILTIN_MODELS", "BuiltinModel"]


@dataclass(frozen=True, slots=True)
class BuiltinModel:
    """Price and capabilities of a model that litellm's price map lacks."""

    provider: str
    name: str
    input_cost_per_token: float
    output_cost_per_token: float
    supports_json_mode: bool
    context_window: int

    @property
    def qualified_name(self) -> str:
        return f"{self.provider}/{self.name}"


def _per_million(dollars: float) -> float:
    return dollars / 1_000_000


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    m.qualified_name: m
    for m in (
        BuiltinModel("sim", "tiny", _per_million(0.05), _per_million(0.20), False, 8_192),
        BuiltinModel("sim", "small", _per_million(0.15), _per_million(0.60), False, 16_384),
        BuiltinModel("sim", "medium", _per_million(0.80), _per_million(3.20), True, 32_768),
        BuiltinModel("sim", "large", _per_million(3.00), _per_million(12.00), True, 128_000),
        BuiltinModel("local", "smollm2", 0.0, 0.0, False, 8_192),
    )
}
