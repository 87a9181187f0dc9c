"""The per-configuration estimate: expected LM calls, tokens, dollars and latency.

The prompts are the real ones, rendered by the real adapters (system message,
demos, the final user message for a sample of dataset rows) and counted as
words and punctuation marks; completions are the adapter's rendering of the
expected outputs plus a fixed allowance per module kind for reasoning and
code; format fallbacks and program-of-thought retries are expected rates by
model class. The constants below are the model's parameters; ``docs/spec.md``
("The estimate model") explains them and how well they match the simulator.

Prices and capabilities come from the built-in catalogue (the simulator's
models, the local model) and litellm's bundled price map, read as data and
without warnings: an unknown model is reported, never warned about.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dspex_lab.programs.signature import Signature

__all__ = [
    "CODE_TOKENS",
    "FALLBACK_RATE",
    "JSON_MODE_FALLBACK_RATE",
    "MESSAGE_OVERHEAD",
    "POT_RETRY_RATE",
    "REASONING_TOKENS",
    "ConfigEstimate",
    "ModelInfo",
    "TokenModel",
    "count_tokens",
    "estimate_config",
    "model_class",
    "model_info",
    "suggest_model",
]

# --------------------------------------------------------------------------- model parameters

MESSAGE_OVERHEAD = 3
"""Tokens per chat message on top of its content (role, separators)."""
REASONING_TOKENS = 36
"""Tokens a chain-of-thought (or program-of-thought) reasoning field is expected to take."""
CODE_TOKENS = 16
"""Tokens of program-of-thought code."""
ERROR_TOKENS = 14
"""Tokens of the error message a program-of-thought retry shows."""
FALLBACK_RATE: dict[str, dict[str, float]] = {
    #          chat   markdown  json (JSON asked for in the prompt only)
    "weak": {"chat": 0.08, "markdown": 0.12, "json": 0.30},
    "mid": {"chat": 0.03, "markdown": 0.045, "json": 0.10},
    "strong": {"chat": 0.005, "markdown": 0.01, "json": 0.02},
}
"""Expected share of replies that break the adapter's format, by model class (each costs one
more call with the fallback adapter)."""
JSON_MODE_FALLBACK_RATE = 0.002
"""The same with the json adapter on a model with JSON mode (the provider enforces JSON)."""
POT_RETRY_RATE: dict[str, float] = {"weak": 0.75, "mid": 0.3, "strong": 0.1}
"""Expected program-of-thought code retries per example, by model class."""
WEAK_BELOW, STRONG_FROM = 0.5, 5.0
"""Model classes by output price per million tokens: below $0.50 (or free: local models)
"weak", from $5 "strong", otherwise (and when the price is unknown) "mid". Cheaper models
break formats and write failing code more often; the rates above are calibrated on the
simulator, whose four tiers follow the same price order."""
PLACEHOLDER_INPUT_TOKENS = 40
"""Tokens assumed per input field when there is no dataset to render."""
PLACEHOLDER_TEXT_OUTPUT_TOKENS = 12
"""Tokens assumed per text output field when there is no dataset."""
LATENCY_BASE_S = 0.35
LATENCY_PER_PROMPT_TOKEN_S = 0.0001
LATENCY_PER_COMPLETION_TOKEN_S = 0.012
"""Per-call latency model: base + prompt and completion tokens (about 80 tokens/s out)."""

_TOKEN = re.compile(r"\w+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Words and punctuation marks: close to BPE counts for English prose, and exactly
    what the simulator counts."""
    return len(_TOKEN.findall(text))


def _message_tokens(messages: Sequence[Mapping[str, str]]) -> int:
    return sum(count_tokens(m["content"]) + MESSAGE_OVERHEAD for m in messages)


# --------------------------------------------------------------------------- models


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What the price map or the built-in catalogue says about one model."""

    model: str
    known: bool
    source: str  # "builtin", "override", "price map", "unknown"
    input_per_million: float | None = None
    output_per_million: float | None = None
    json_mode: bool | None = None
    context_window: int | None = None

    def cost(self, prompt_tokens: float, completion_tokens: float) -> float | None:
        if self.input_per_million is None or self.output_per_million is None:
            return None
        return (prompt_tokens * self.input_per_million
                + completion_tokens * self.output_per_million) / 1e6


@functools.lru_cache(maxsize=1024)
def model_info(model: str) -> ModelInfo:
    """Price and capabilities of ``provider/name`` without warnings or side effects."""
    from dspex_lab.lm import _pricing
    from dspex_lab.lm._builtin_models import BUILTIN_MODELS

    override = _pricing._overrides.get(model)
    if override is not None:
        return ModelInfo(model, True, "override", override.input_per_token * 1e6,
                         override.output_per_token * 1e6, override.supports_json_mode,
                         override.context_window)
    builtin = BUILTIN_MODELS.get(model)
    if builtin is not None:
        return ModelInfo(model, True, "builtin", builtin.input_cost_per_token * 1e6,
                         builtin.output_cost_per_token * 1e6, builtin.supports_json_mode,
                         builtin.context_window)
    provider, slash, name = model.partition("/")
    if slash and provider and name:
        table = _pricing.price_map()
        for key in _pricing._candidates(provider, name):
            entry = table.get(key)
            if entry is not None and (price := _pricing._from_entry(entry)) is not None:
                return ModelInfo(model, True, "price map", price.input_per_token * 1e6,
                                 price.output_per_token * 1e6, price.supports_json_mode,
                                 price.context_window)
    return ModelInfo(model, False, "unknown")


@functools.cache
def _all_model_names() -> tuple[str, ...]:
    from dspex_lab.lm import _pricing
    from dspex_lab.lm._builtin_models import BUILTIN_MODELS

    names = list(BUILTIN_MODELS)
    for key, entry in _pricing.price_map().items():
        provider = entry.get("litellm_provider")
        if "/" in key or not isinstance(provider, str):
            names.append(key)
        else:
            names.append(f"{provider}/{key}")
    return tuple(dict.fromkeys(names))


def model_class(info: ModelInfo) -> str:
    """``weak``, ``mid`` or ``strong`` by output price (see :data:`WEAK_BELOW`)."""
    out = info.output_per_million
    if out is None:
        return "mid"
    if out < WEAK_BELOW:
        return "weak"
    return "strong" if out >= STRONG_FROM else "mid"


def suggest_model(model: str) -> str | None:
    """The known model name closest to ``model`` (same provider first), or None."""
    provider = model.partition("/")[0]
    names = _all_model_names()
    same = [n for n in names if n.startswith(provider + "/")]
    for pool in (same, names):
        close = difflib.get_close_matches(model, pool, n=1, cutoff=0.75)
        if close:
            return close[0]
    return None


# --------------------------------------------------------------------------- per-config estimate


@dataclass(frozen=True, slots=True)
class ConfigEstimate:
    """Expected LM use of one configuration, per example."""

    calls: float
    prompt_tokens: float
    completion_tokens: float
    cost: float | None
    latency_s: float  # summed over the example's calls
    max_prompt_tokens: float  # the longest single prompt (for context windows)


class TokenModel:
    """Token counts of a signature's prompts over sample rows, memoised per shape."""

    def __init__(self, signature: Signature, rows: Sequence[Mapping[str, Any]]) -> None:
        self.sig = signature
        self.rows = list(rows)
        self._io: dict[tuple[str, Signature, int], tuple[float, float]] = {}
        self._steps: dict[str, Signature] = {}
        self._shapes: dict[tuple[Any, ...], tuple[float, int]] = {}
        self._prefix: dict[tuple[Any, ...], int] = {}

    def step(self, kind: str) -> Signature:
        """The signature of the first call of a module kind (``pot-retry``: a code retry)."""
        found = self._steps.get(kind)
        if found is None:
            from dspex_lab.programs.predictors import REASONING_DESC, pot_code_signature

            sig = self.sig
            if kind == "cot" and "reasoning" not in sig.output_fields:
                found = sig.prepend_output("reasoning", "str", REASONING_DESC)
            elif kind in ("pot", "pot-retry"):
                found = pot_code_signature(sig, kind == "pot-retry")
            elif kind == "pot-final":
                found = sig.append_input("code", "str").append_input("code_output", "str")
            else:
                found = sig
            self._steps[kind] = found
        return found

    # inputs and outputs, per (adapter, step kind)
    def _examples(self, step: Signature) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        out = []
        rows = self.rows or [{}]
        for row in rows:
            inputs = {name: row[name] if row.get(name) is not None else _placeholder(f, True)
                      for name, f in step.input_fields.items()}
            outputs = {name: ("" if name in ("reasoning", "code") else
                              row[name] if row.get(name) is not None
                              else _placeholder(f, False))
                       for name, f in step.output_fields.items()}
            out.append((inputs, outputs))
        return out

    def io_tokens(self, adapter_name: str, step: Signature, kind: int) -> tuple[float, float]:
        """Mean tokens of (the final user message, the reply) for ``step``.

        Rows are rendered once per shape: steps with the same input fields differ only
        by the reply reminder (a constant, measured on one row), steps with the same
        output fields render the same replies.
        """
        key = (adapter_name, step, kind)
        found = self._io.get(key)
        if found is None:
            from dspex_lab.programs.adapters import get_adapter

            adapter = get_adapter(adapter_name)
            examples = self._examples(step)
            in_shape = (adapter_name, "in", _shape(step.input_fields))
            out_shape = (adapter_name, "out", _shape(step.output_fields))
            first = count_tokens(adapter.format_inputs(step, examples[0][0])["content"])
            base = self._shapes.get(in_shape)
            if base is None:
                total = first + sum(count_tokens(adapter.format_inputs(step, i)["content"])
                                    for i, _ in examples[1:])
                base = self._shapes[in_shape] = (total / len(examples), first)
            ins = base[0] + (first - base[1])
            outs = self._shapes.get(out_shape)
            if outs is None:
                outs = self._shapes[out_shape] = (sum(
                    count_tokens(adapter.format_outputs(step, o)) for _, o in examples)
                    / len(examples), 0)
            found = self._io[key] = (ins + MESSAGE_OVERHEAD, outs[0])
        return found

    def prefix_tokens(self, adapter_name: str, step: Signature, instructions: str | None,
                      demos: Sequence[tuple[Any, Mapping[str, Any]]]) -> int:
        """Tokens of the system message and the demo messages; ``demos`` are (key, demo)
        pairs, each demo rendered once per (adapter, step) whatever set it appears in."""
        from dspex_lab.programs.adapters import get_adapter

        adapter = get_adapter(adapter_name)
        key = (adapter_name, step, instructions)
        total = self._prefix.get(key)
        if total is None:
            total = self._prefix[key] = _message_tokens(
                adapter.format_prefix(step, instructions=instructions))
        for demo_key, demo in demos:
            dkey = (adapter_name, step, "demo", demo_key)
            n = self._prefix.get(dkey)
            if n is None:
                n = self._prefix[dkey] = _message_tokens(
                    adapter.format_prefix(step, instructions=instructions, demos=[demo])[1:])
            total += n
        return total


def _shape(fields: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((name, f.type_str) for name, f in fields.items())


def _placeholder(f: Any, is_input: bool) -> Any:
    kind = f.type_str.replace(" ", "").lower()
    if kind in ("int", "float"):
        return 42
    if kind == "bool":
        return True
    if kind.startswith("list["):
        return ["item"] * 3
    if kind.startswith("dict["):
        return {"key": "value"}
    n = PLACEHOLDER_INPUT_TOKENS if is_input else PLACEHOLDER_TEXT_OUTPUT_TOKENS
    return " ".join(["word"] * n)


def _placeholder_demo(sig: Signature) -> dict[str, Any]:
    demo = {name: _placeholder(f, True) for name, f in sig.input_fields.items()}
    demo.update({name: _placeholder(f, False) for name, f in sig.output_fields.items()})
    return demo


def estimate_config(tokens: TokenModel, config: Mapping[str, Any]) -> ConfigEstimate:
    """The expected per-example calls, tokens, dollars and latency of one configuration.

    ``config`` holds ``model``, ``adapter``, ``module``, ``demos`` (demo dicts, or a
    count of placeholder demos), ``demo_keys`` (one hashable key per demo, so each demo
    is rendered once), ``instructions``, ``max_tokens`` and ``max_code_retries``.
    """
    from dspex_lab.programs.adapters import fallback_adapter
    from dspex_lab.programs.predictors import pot_demos

    sig = tokens.sig
    info = model_info(str(config.get("model") or ""))
    adapter = str(config.get("adapter") or "chat")
    kind = str(config.get("module") or "predict")
    raw_demos = config.get("demos") or []
    if isinstance(raw_demos, int):
        keyed = [("placeholder", _placeholder_demo(sig))] * raw_demos
    else:
        keys = config.get("demo_keys") or [repr(d) for d in raw_demos]
        keyed = list(zip(keys, raw_demos, strict=True))
    instructions = config.get("instructions")
    cap = config.get("max_tokens")
    strength = model_class(info)
    p_fallback = JSON_MODE_FALLBACK_RATE if adapter == "json" and info.json_mode \
        else FALLBACK_RATE[strength][adapter]

    def call(adapter_name: str, step: Signature,
             step_demos: Sequence[tuple[Any, Mapping[str, Any]]], extra_completion: float,
             extra_prompt: float = 0.0) -> tuple[float, float]:
        prefix = tokens.prefix_tokens(adapter_name, step, instructions, step_demos)
        ins, outs = tokens.io_tokens(adapter_name, step, 0)
        completion = outs + extra_completion
        if cap is not None:
            completion = min(completion, float(cap))
        return prefix + ins + extra_prompt, completion

    calls: list[tuple[float, float, float]] = []  # (expected count, prompt, completion)
    fallback = fallback_adapter(adapter)
    if kind == "pot":
        step = tokens.step("pot")
        retry = tokens.step("pot-retry")
        step_demos = [(k, d) for k, demo in keyed for d in pot_demos(sig, [demo])]
        extra = REASONING_TOKENS + CODE_TOKENS
        first = call(adapter, step, step_demos, extra)
        again = call(adapter, retry, step_demos, extra, CODE_TOKENS + ERROR_TOKENS)
        calls.append((1.0, *first))
        calls.append((p_fallback, *call(fallback, step, step_demos, extra)))
        retries = min(POT_RETRY_RATE[strength], float(config.get("max_code_retries", 2) or 0))
        calls.append((retries * (1 + p_fallback), *again))
        if len(sig.output_fields) > 1:
            final = tokens.step("pot-final")
            calls.append((1.0, *call(adapter, final, keyed, 0.0, CODE_TOKENS + 5)))
    else:
        step = tokens.step(kind)
        allowance = REASONING_TOKENS if kind == "cot" else 0.0
        calls.append((1.0, *call(adapter, step, keyed, allowance)))
        calls.append((p_fallback, *call(fallback, step, keyed, allowance)))
    n_calls = sum(c[0] for c in calls)
    prompt = sum(c[0] * c[1] for c in calls)
    completion = sum(c[0] * c[2] for c in calls)
    latency = sum(c[0] * (LATENCY_BASE_S + LATENCY_PER_PROMPT_TOKEN_S * c[1]
                          + LATENCY_PER_COMPLETION_TOKEN_S * c[2]) for c in calls)
    return ConfigEstimate(n_calls, prompt, completion, info.cost(prompt, completion), latency,
                          max(c[1] for c in calls))
