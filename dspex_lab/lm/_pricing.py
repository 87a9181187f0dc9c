"""Dollar prices per token, from litellm's bundled price map, read as data.

``import litellm`` costs ~5 s, but its price map is a JSON file inside the
package: we locate the package with ``importlib.util.find_spec`` (which does
not execute it) and read the file once, on first need. Lookup order: explicit
per-LM prices, user overrides from ``set_price``, the built-in catalogue
(simulator, local model), then the price map under a few spellings of the
name. An unknown model costs ``None`` and warns once; it never crashes.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dspex_lab.errors import DspexWarning
from dspex_lab.lm._builtin_models import BUILTIN_MODELS
from dspex_lab.lm._providers import provider_info

__all__ = ["ModelPrice", "UnknownPriceWarning", "lookup_price", "price_map", "set_price"]

_PRICE_FILE = "model_prices_and_context_window_backup.json"


class UnknownPriceWarning(DspexWarning):
    """A model's price is unknown, so its calls are recorded with cost None."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    input_per_token: float
    output_per_token: float
    supports_json_mode: bool | None = None
    context_window: int | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens * self.input_per_token + completion_tokens * self.output_per_token


_overrides: dict[str, ModelPrice] = {}
_warned: set[str] = set()
_warn_lock = threading.Lock()


def set_price(model: str, *, per_million_in: float, per_million_out: float) -> None:
    """Override or add a model's price (dollars per million tokens), e.g. a private deployment."""
    _overrides[model] = ModelPrice(per_million_in / 1e6, per_million_out / 1e6)
    lookup_price.cache_clear()


@functools.cache
def price_map() -> dict[str, dict[str, Any]]:
    """litellm's price map as a dict; empty if litellm is not installed."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / _PRICE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict) and k != "sample_spec"}


def _candidates(provider: str, name: str) -> list[str]:
    info = provider_info(provider)
    prefix = info.price_map_prefix if info and info.price_map_prefix is not None else f"{provider}/"
    names = [f"{prefix}{name}", f"{provider}/{name}", name]
    return list(dict.fromkeys(names))


def _from_entry(entry: dict[str, Any]) -> ModelPrice | None:
    inp, out = entry.get("input_cost_per_token"), entry.get("output_cost_per_token")
    if inp is None or out is None:
        return None
    json_mode = entry.get("supports_response_schema")
    window = entry.get("max_input_tokens") or entry.get("max_tokens")
    return ModelPrice(float(inp), float(out),
                      None if json_mode is None else bool(json_mode),
                      int(window) if isinstance(window, int | float) else None)


@functools.lru_cache(maxsize=4096)
def lookup_price(provider: str, name: str) -> ModelPrice | None:
    """The price of ``provider/name`` or None (warning once per model)."""
    qualified = f"{provider}/{name}"
    if qualified in _overrides:
        return _overrides[qualified]
    builtin = BUILTIN_MODELS.get(qualified)
    if builtin is not None:
        return ModelPrice(builtin.input_cost_per_token, builtin.output_cost_per_token,
                          builtin.supports_json_mode, builtin.context_window)
    table = price_map()
    for key in _candidates(provider, name):
        entry = table.get(key)
        if entry is not None and (price := _from_entry(entry)) is not None:
            return price
    with _warn_lock:
        if qualified not in _warned:
            _warned.add(qualified)
            warnings.warn(
                f"No price known for model {qualified!r}: its calls are recorded with "
                f"cost None. Pass price_in=/price_out= (dollars per million tokens) to "
                f"dx.LM(...) or call dx.set_price({qualified!r}, per_million_in=..., "
                f"per_million_out=...).",
                UnknownPriceWarning, stacklevel=3)
    return None
