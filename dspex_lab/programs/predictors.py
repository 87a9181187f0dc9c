"""The three reasoning modules: ``Predict``, ``ChainOfThought``, ``ProgramOfThought``.

They share one class, :class:`Predictor`, whose ``kind`` is itself
configuration: ``with_config({"module": "cot"})`` turns a Predict into a
ChainOfThought over the same signature, so the optimizer can search over the
reasoning strategy like over any other variable.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from dspex_lab import events
from dspex_lab.errors import ConfigurationError, ParseError, SandboxError
from dspex_lab.lm import LM, LMResponse
from dspex_lab.programs.adapters import Adapter, fallback_adapter, get_adapter
from dspex_lab.programs.adapters._values import CoercionError, text_coercer
from dspex_lab.programs.config import (
    ModuleConfig,
    apply_changes,
    split_config,
    validate_changes,
)
from dspex_lab.programs.module import Module
from dspex_lab.programs.signature import Signature
from dspex_lab.settings import current, default_lm

__all__ = ["ChainOfThought", "Predict", "Predictor", "ProgramOfThought", "pot_code_signature",
           "pot_demos", "predictor_class"]

_bus = events.BUS
REASONING_DESC = "think step by step before answering"
CODE_DESC = "Python code that prints the final answer"


class Predictor(Module):
    """One LM step over a signature. Use :class:`Predict`, :class:`ChainOfThought`
    or :class:`ProgramOfThought`."""

    kind: ClassVar[str] = "predict"

    def __init__(self, signature: str | Signature | type[Signature], *,
                 lm: LM | None = None, model: str | None = None, adapter: str | None = None,
                 temperature: float | None = None, max_tokens: int | None = None,
                 demos: Sequence[Mapping[str, Any]] = (), instructions: str | None = None,
                 max_code_retries: int = 2) -> None:
        self.signature = Signature.coerce(signature)
        changes = validate_changes({
            "lm": lm, "model": model, "adapter": adapter, "temperature": temperature,
            "max_tokens": max_tokens, "demos": demos, "instructions": instructions,
            "max_code_retries": max_code_retries})
        if lm is not None and model is not None:
            raise ConfigurationError("Give lm= or model=, not both.")
        self.cfg = apply_changes(ModuleConfig(), changes)
        self._prefixes: dict[tuple[str, Signature], list[dict[str, str]]] = {}

    # -- configuration ---------------------------------------------------------------
    def named_modules(self) -> dict[str, Predictor]:
        return {self.kind: self}

    def own_config(self) -> dict[str, Any]:
        """The configuration as JSON-friendly data (computed once: the config is frozen).

        Callers must not mutate the result (it is shared with every call record).
        """
        cached: dict[str, Any] | None = self.__dict__.get("_config_json")
        if cached is None:
            cached = self.cfg.to_json(self.kind)
            self.__dict__["_config_json"] = cached
        return cached

    def with_config(self, config: Mapping[str, Any]) -> Predictor:
        """A configured copy; ``{"module": "cot"}`` changes the reasoning strategy."""
        shared, targeted = split_config(config, [self.kind])
        changes = {**shared, **targeted.get(self.kind, {})}
        kind = changes.get("module", self.kind)
        return self._clone(predictor_class(kind), apply_changes(self.cfg, changes))

    def _clone(self, cls: type[Predictor], cfg: ModuleConfig) -> Predictor:
        """A predictor of ``cls`` over the same (immutable) signature with ``cfg``; its
        caches start empty because they depend on the configuration."""
        clone = object.__new__(cls)
        clone.signature = self.signature
        clone.cfg = cfg
        clone._prefixes = {}
        return clone

    def input_names(self) -> list[str]:
        return list(self.signature.input_fields)

    def _display_name(self) -> str:
        return type(self).__name__

    def _kind(self) -> str:
        return self.kind

    def _record_config(self) -> dict[str, Any]:
        return self.own_config()

    def __repr__(self) -> str:
        parts = [repr(str(self.signature))]
        cfg = self.cfg
        if cfg.lm is not None:
            parts.append(f"model={cfg.lm.model!r}")
        if cfg.adapter is not None:
            parts.append(f"adapter={cfg.adapter!r}")
        if cfg.temperature is not None:
            parts.append(f"temperature={cfg.temperature!r}")
        if cfg.demos:
            parts.append(f"demos={len(cfg.demos)}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __deepcopy__(self, memo: dict[int, Any]) -> Predictor:
        # Immutable config and signature: sharing them is safe and keeps the LM client shared.
        return self._clone(type(self), self.cfg)

    # -- running ----------------------------------------------------------------------
    def _lm(self) -> LM:
        lm = self.cfg.lm or default_lm()
        if lm is None:
            raise ConfigurationError(
                "No LM configured for this module. Pass lm=dx.LM('provider/name') or "
                "model='provider/name', call dx.configure(lm=dx.LM(...)), or set the "
                "DSPEX_LM environment variable (e.g. DSPEX_LM=sim/small).")
        return lm

    def _adapter_name(self) -> str:
        return self.cfg.adapter or current().adapter

    def _step_signature(self) -> Signature:
        """The signature actually sent to the LM (with reasoning for CoT)."""
        return self.signature

    def _messages(self, adapter: Adapter, signature: Signature,
                  inputs: Mapping[str, Any]) -> list[dict[str, str]]:
        key = (adapter.name, signature)
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = adapter.format_prefix(signature, instructions=self.cfg.instructions,
                                           demos=self._demos(signature))
            self._prefixes[key] = prefix
        return [*prefix, adapter.format_inputs(signature, inputs)]

    def _demos(self, signature: Signature) -> Sequence[Mapping[str, Any]]:
        return self.cfg.demos

    async def _ask(self, lm: LM, adapter: Adapter, signature: Signature,
                   inputs: Mapping[str, Any]) -> LMResponse:
        params: dict[str, Any] = adapter.request_params(supports_json_mode=lm.supports_json_mode)
        if self.cfg.temperature is not None:
            params["temperature"] = self.cfg.temperature
        if self.cfg.max_tokens is not None:
            params["max_tokens"] = self.cfg.max_tokens
        return await lm.acall(self._messages(adapter, signature, inputs), **params)

    async def predict(self, signature: Signature, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """One step: render, call, parse; on a parse failure, once more with the fallback
        adapter; then a :class:`ParseError` carrying the raw text."""
        lm = self._lm()
        adapter = get_adapter(self._adapter_name())
        reply = await self._ask(lm, adapter, signature, inputs)
        try:
            return adapter.parse(signature, reply.text)
        except ParseError as first:
            fallback = get_adapter(fallback_adapter(adapter.name))
            if _bus.wants("program.parse_fallback"):
                _bus.emit("program.parse_fallback", {
                    "call_id": reply.call_id, "adapter": adapter.name, "fallback": fallback.name,
                    "error": str(first), "raw": reply.text, "time": time.time()})
            second = await self._ask(lm, fallback, signature, inputs)
            try:
                return fallback.parse(signature, second.text)
            except ParseError as exc:
                raise ParseError(
                    f"The reply could not be parsed with the {adapter.name!r} adapter "
                    f"({first}) nor, on a second try, with {fallback.name!r} ({exc}).",
                    raw=second.text, adapter=fallback.name) from None

    async def _run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        return await self.predict(self._step_signature(), inputs)


class Predict(Predictor):
    """Ask for the signature's outputs directly."""

    kind = "predict"


class ChainOfThought(Predictor):
    """Ask for a ``reasoning`` field before the outputs (it is returned too)."""

    kind = "cot"

    def _step_signature(self) -> Signature:
        if "reasoning" in self.signature.output_fields:
            return self.signature
        return self.signature.prepend_output("reasoning", "str", REASONING_DESC)


class ProgramOfThought(Predictor):
    """The model writes Python; the sandbox runs it; what it prints is the answer.

    A failure (exception, limit, unparseable output) is shown to the model with
    its code for up to ``max_code_retries`` more attempts, then raised as a
    :class:`SandboxError`. With several output fields, one more ``predict``
    step turns the code's output into all of them.
    """

    kind = "pot"

    def _demos(self, signature: Signature) -> Sequence[Mapping[str, Any]]:
        if "code" in signature.output_fields:
            return pot_demos(self.signature, self.cfg.demos)
        return self.cfg.demos

    async def _run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        from dspex_lab.programs.sandbox import arun_code

        outputs = list(self.signature.output_fields.values())
        step_inputs: dict[str, Any] = dict(inputs)
        last_error = ""
        attempts = 1 + self.cfg.max_code_retries
        for attempt in range(attempts):
            sig = pot_code_signature(self.signature, attempt > 0)
            step = await self.predict(sig, step_inputs)
            code = str(step.get("code", ""))
            result = await arun_code(code)
            if result.ok:
                printed = result.stdout.strip()
                if len(outputs) == 1:
                    try:
                        value = text_coercer(outputs[0].annotation)(printed)
                    except CoercionError as exc:
                        last_error = (f"the code printed {printed[:200]!r}, which is not a "
                                      f"valid {outputs[0].type_str}: {exc}")
                    else:
                        return {"reasoning": step.get("reasoning", ""), "code": code,
                                outputs[0].name: value}
                else:
                    final_sig = self.signature.append_input("code", "str").append_input(
                        "code_output", "str")
                    final = await self.predict(final_sig, {**inputs, "code": code,
                                                           "code_output": printed})
                    return {"reasoning": step.get("reasoning", ""), "code": code, **final}
            else:
                last_error = result.error or "the code failed"
            step_inputs = {**inputs, "previous_code": code, "error": last_error}
        raise SandboxError(f"Program-of-thought code failed {attempts} time(s); "
                           f"last error: {last_error}")


@functools.lru_cache(maxsize=256)
def pot_code_signature(signature: Signature, retry: bool) -> Signature:
    """The signature of program-of-thought's code step (public: the simulator's
    expected-metrics oracle builds the very same prompts)."""
    inputs = ", ".join(f"{f.name}: {f.type_str}" for f in signature.input_fields.values())
    descriptions = {f.name: f.description for f in signature.input_fields.values()
                    if f.description}
    descriptions["code"] = CODE_DESC
    code_sig = Signature(f"{inputs} -> code: str", instructions=signature.instructions,
                         descriptions=descriptions)
    code_sig = code_sig.prepend_output("reasoning", "str", REASONING_DESC)
    if retry:
        code_sig = code_sig.append_input("previous_code", "str", "code that failed")
        code_sig = code_sig.append_input("error", "str", "what went wrong when it ran")
    return code_sig


def pot_demos(signature: Signature, demos: Sequence[Mapping[str, Any]]
              ) -> list[Mapping[str, Any]]:
    """Demos for the code step. A demo without ``code`` shows its answer as a
    program that prints it, so a plain question/answer demo still teaches the
    format (what to print) when the signature has a single output."""
    outputs = list(signature.output_fields)
    out: list[Mapping[str, Any]] = []
    for demo in demos:
        if "code" not in demo and len(outputs) == 1 and demo.get(outputs[0]) is not None:
            demo = {**demo, "code": f"print({demo[outputs[0]]!r})"}
        if "code" in demo:
            out.append(demo)
    return out


_KINDS: dict[str, type[Predictor]] = {"predict": Predict, "cot": ChainOfThought,
                                      "pot": ProgramOfThought}


def predictor_class(kind: str) -> type[Predictor]:
    try:
        return _KINDS[kind]
    except KeyError:
        raise ConfigurationError(f"Unknown module kind {kind!r}; choose one of "
                                 f"{list(_KINDS)}.") from None
