"""Module configuration as plain data, and its validation.

The adapter, module kind, model, temperature, max tokens, demos and
instructions of every predictor are plain values in a frozen
:class:`ModuleConfig`, so the variables layer can tune any of them and the
store can record them as JSON. Bad values fail here, with the key, the value
and the valid choices, before any call is made.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from dspex_lab.errors import ConfigurationError
from dspex_lab.lm import LM

__all__ = ["CONFIG_KEYS", "MODULE_KINDS", "ModuleConfig", "split_config"]

MODULE_KINDS = ("predict", "cot", "pot")
CONFIG_KEYS = ("module", "adapter", "model", "lm", "temperature", "max_tokens", "demos",
               "instructions", "max_code_retries")


@dataclass(frozen=True)
class ModuleConfig:
    """Everything about a predictor that is configuration rather than structure."""

    lm: LM | None = None
    adapter: str | None = None          # None: the process default (dx.configure(adapter=...))
    temperature: float | None = None    # None: the LM's or provider's default
    max_tokens: int | None = None
    demos: tuple[Mapping[str, Any], ...] = ()
    instructions: str | None = None     # None: the signature's instructions
    max_code_retries: int = 2           # program of thought only

    def to_json(self, kind: str) -> dict[str, Any]:
        """A JSON-friendly view (the model by name, never an LM object or a key)."""
        return {"module": kind, "model": self.lm.model if self.lm else None,
                "adapter": self.adapter, "temperature": self.temperature,
                "max_tokens": self.max_tokens, "demos": [dict(d) for d in self.demos],
                "instructions": self.instructions}


def _suggest(key: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def validate_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Check keys and values of one predictor's config changes; return them normalized."""
    from dspex_lab.programs.adapters import ADAPTER_NAMES

    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key not in CONFIG_KEYS:
            raise ConfigurationError(
                f"Unknown config key {key!r}.{_suggest(key, CONFIG_KEYS)} "
                f"Valid keys: {', '.join(CONFIG_KEYS)}.")
        if key == "module" and value not in MODULE_KINDS:
            raise ConfigurationError(f"config 'module' must be one of {list(MODULE_KINDS)}, "
                                     f"not {value!r}.")
        if key == "adapter" and value is not None and value not in ADAPTER_NAMES:
            raise ConfigurationError(f"config 'adapter' must be one of {list(ADAPTER_NAMES)}, "
                                     f"not {value!r}.")
        if key == "model" and value is not None and not isinstance(value, str):
            raise ConfigurationError(f"config 'model' must be a string like 'sim/small', "
                                     f"not {value!r}.")
        if key == "lm" and value is not None and not isinstance(value, LM):
            raise ConfigurationError("config 'lm' must be a dx.LM; use 'model' for a name.")
        if key == "temperature" and value is not None and (
                not isinstance(value, int | float) or isinstance(value, bool)
                or not 0.0 <= value <= 2.0):
            raise ConfigurationError(f"config 'temperature' must be a number in [0, 2], "
                                     f"not {value!r}.")
        if key in ("max_tokens", "max_code_retries") and value is not None and (
                not isinstance(value, int) or isinstance(value, bool)
                or value < (1 if key == "max_tokens" else 0)):
            raise ConfigurationError(f"config {key!r} must be a positive integer, "
                                     f"not {value!r}.")
        if key == "demos":
            if value is None:
                value = ()
            if not isinstance(value, Sequence) or isinstance(value, str) or not all(
                    isinstance(d, Mapping) for d in value):
                raise ConfigurationError(
                    "config 'demos' must be a list of dicts of field values, e.g. "
                    "[{'question': 'What is 2+2?', 'answer': '4'}].")
            value = tuple(dict(d) for d in value)
        if key == "instructions" and value is not None and not isinstance(value, str):
            raise ConfigurationError(f"config 'instructions' must be text, not {value!r}.")
        out[key] = value
    return out


def apply_changes(config: ModuleConfig, changes: Mapping[str, Any]) -> ModuleConfig:
    """``config`` with validated ``changes`` (``model`` becomes a shared LM)."""
    from dspex_lab.settings import lm_for

    kwargs = {k: v for k, v in changes.items() if k not in ("module", "model")}
    if changes.get("model") is not None:
        kwargs["lm"] = lm_for(changes["model"])
    valid = {f.name for f in fields(ModuleConfig)}
    return replace(config, **{k: v for k, v in kwargs.items() if k in valid})


def split_config(config: Mapping[str, Any], paths: Sequence[str]
                 ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Split a program config into keys for every predictor and keys per path."""
    if not isinstance(config, Mapping):
        raise ConfigurationError(f"a config is a dict, not {type(config).__name__}.")
    shared: dict[str, Any] = {}
    targeted: dict[str, dict[str, Any]] = {}
    for key, value in config.items():
        if key in paths and isinstance(value, Mapping):
            targeted.setdefault(key, {}).update(validate_changes(value))
            continue
        path, dot, sub = key.rpartition(".")
        if dot and path in paths:
            targeted.setdefault(path, {}).update(validate_changes({sub: value}))
            continue
        if dot or (key not in CONFIG_KEYS and isinstance(value, Mapping)):
            name = path if dot else key
            raise ConfigurationError(
                f"No module named {name!r} in this program.{_suggest(name, paths)} "
                f"Modules: {', '.join(paths) or '(none)'}.")
        shared.update(validate_changes({key: value}))
    return shared, targeted
