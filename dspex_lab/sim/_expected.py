"""Exact expected accuracy, cost, latency, calls and tokens of one configuration.

Instead of sampling, this walks every branch a single-module program can take
on each item and weights it by its probability: the simulator's draws are
known distributions (:func:`dspex_lab.sim._draws.distribution`), the replies
for each outcome are known texts (the server's own writer), and the client's
behaviour is the library's own: prompts come from the real adapters, replies
go through the real parsers, a parse failure is retried once with the
fallback adapter, and program-of-thought code that fails is retried up to
``max_code_retries`` times with ``previous_code``/``error`` inputs.

The adapters and modules are imported lazily: the library never imports the
simulator, and the simulator only needs the library for this computation.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import orjson

from dspex_lab.datasets import find_item, load
from dspex_lab.errors import ConfigurationError, ParseError
from dspex_lab.sim._complete import Completion, complete_outcome
from dspex_lab.sim._draws import distribution, draw_key
from dspex_lab.sim._models import SimModel, resolve_model
from dspex_lab.sim._reader import read_request

if TYPE_CHECKING:
    from dspex_lab.programs.adapters import Adapter
    from dspex_lab.programs.signature import Signature

__all__ = ["ExpectedMetrics", "expected_metrics"]

_MODULES = ("predict", "cot", "pot")
_KNOWN_KEYS = {"model", "adapter", "module", "temperature", "demos", "instructions",
               "max_tokens", "max_code_retries"}


@dataclass(frozen=True, slots=True)
class ExpectedMetrics:
    """Per-example expectations over a split (latency is the unscaled simulated one)."""

    accuracy: float
    cost_per_example: float
    latency_s_per_example: float
    calls_per_example: float
    tokens_per_example: float
    n_examples: int


@dataclass(frozen=True, slots=True)
class _Path:
    """A set of ways an example can go that end with the same outputs.

    ``p`` is their total probability; ``weighted`` holds the probability-weighted
    sums of (calls, cost, latency_s, tokens), so paths merge by addition.
    """

    p: float
    weighted: tuple[float, float, float, float]
    outputs: dict[str, Any] | None

    def then(self, q: float, done: Completion, model: SimModel,
             outputs: dict[str, Any] | None) -> _Path:
        """This path followed by one call of probability ``q``."""
        calls, cost, latency, tokens = self.weighted
        p = self.p
        weighted = (
            q * (calls + p),
            q * (cost + p * model.cost(done.prompt_tokens, done.completion_tokens)),
            q * (latency + p * done.latency_ms / 1000.0),
            q * (tokens + p * (done.prompt_tokens + done.completion_tokens)),
        )
        return _Path(p * q, weighted, outputs)

    def with_outputs(self, outputs: dict[str, Any] | None) -> _Path:
        return _Path(self.p, self.weighted, outputs)


_START = _Path(1.0, (0.0, 0.0, 0.0, 0.0), None)


def _merge(paths: Iterator[_Path]) -> list[_Path]:
    """Adds up paths with equal outputs (e.g. every broken reply ends the same way)."""
    merged: dict[bytes, _Path] = {}
    for path in paths:
        key = orjson.dumps(path.outputs, option=orjson.OPT_SORT_KEYS)
        old = merged.get(key)
        if old is not None:
            a, b = old.weighted, path.weighted
            path = _Path(old.p + path.p, (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]),
                         path.outputs)
        merged[key] = path
    return list(merged.values())


@dataclass(frozen=True)
class _Plan:
    """The configuration, resolved once per call of :func:`expected_metrics`."""

    model: SimModel
    model_name: str
    adapter: str
    fallback: str
    module: str
    temperature: float | None
    max_tokens: int | None
    instructions: str | None
    demos: Sequence[Mapping[str, Any]]
    max_code_retries: int
    seed: int


_Call = tuple[float, Completion, dict[str, Any] | None]


def _run_code(code: str) -> tuple[bool, str, str]:
    """(ran, stdout, error): the sandbox's verdict on code the simulator wrote, worded as
    the sandbox words it ("Type: message (line N)"), so retry prompts match to the token.

    Only ever runs the simulator's own replies (possibly cut by ``max_tokens``),
    never user input, so a plain ``exec`` with captured stdout is enough.
    """
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, "<pot>", "exec"), {"__builtins__": __builtins__})
    except SyntaxError as exc:
        line = f" (line {exc.lineno})" if exc.lineno else ""
        return False, out.getvalue(), f"{type(exc).__name__}: {exc.msg}{line}"
    except Exception as exc:
        lineno = None
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<pot>":
                lineno = tb.tb_lineno
            tb = tb.tb_next
        text = str(exc)
        summary = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
        return False, out.getvalue(), summary + (f" (line {lineno})" if lineno else "")
    return True, out.getvalue(), ""


class _Walker:
    """Enumerates the branches of one configuration, memoising calls and code runs."""

    def __init__(self, plan: _Plan) -> None:
        from dspex_lab.programs.adapters import get_adapter

        self.plan = plan
        self.adapters = {name: get_adapter(name) for name in {plan.adapter, plan.fallback}}
        self._calls: dict[tuple[str, int, bytes], list[_Call]] = {}
        self._runs: dict[str, tuple[bool, str, str]] = {}

    def _call(self, adapter: Adapter, sig: Signature, inputs: Mapping[str, Any]) -> list[_Call]:
        """Every (probability, completion, parsed outputs or None) of one request."""
        memo_key = (adapter.name, id(sig), orjson.dumps(dict(inputs)))
        cached = self._calls.get(memo_key)
        if cached is not None:
            return cached
        plan = self.plan
        body: dict[str, Any] = {
            "model": plan.model_name,
            "messages": adapter.format(sig, inputs, instructions=plan.instructions,
                                       demos=plan.demos),
            **adapter.request_params(supports_json_mode=plan.model.supports_json_mode),
        }
        if plan.temperature is not None:
            body["temperature"] = plan.temperature
        if plan.max_tokens is not None:
            body["max_tokens"] = plan.max_tokens
        prompt = read_request(orjson.dumps(body))
        item = find_item(prompt.question) if prompt.question else None
        key = draw_key(prompt, item, plan.seed)
        result: list[_Call] = []
        for outcome, p in distribution(prompt, item):
            done = complete_outcome(prompt, item, outcome, key)
            try:
                parsed: dict[str, Any] | None = adapter.parse(sig, done.text)
            except ParseError:
                parsed = None
            result.append((p, done, parsed))
        self._calls[memo_key] = result
        return result

    def step(self, path: _Path, sig: Signature, inputs: Mapping[str, Any]) -> list[_Path]:
        """One ``predict`` step: the primary adapter, then the fallback after a parse error."""
        model = self.plan.model
        primary = self.adapters[self.plan.adapter]
        fallback = self.adapters[self.plan.fallback]

        def branches() -> Iterator[_Path]:
            for p, done, parsed in self._call(primary, sig, inputs):
                first = path.then(p, done, model, parsed)
                if parsed is not None:
                    yield first
                    continue
                for q, done2, parsed2 in self._call(fallback, sig, inputs):
                    yield first.then(q, done2, model, parsed2)

        return _merge(branches())

    def _run(self, code: str) -> tuple[bool, str, str]:
        found = self._runs.get(code)
        if found is None:
            found = self._runs[code] = _run_code(code)
        return found

    def pot(self, path: _Path, sig: Signature, inputs: Mapping[str, Any],
            step_inputs: Mapping[str, Any], attempt: int) -> Iterator[_Path]:
        """Program of thought: code step, run, and retries with the error shown."""
        from dspex_lab.programs.adapters._values import CoercionError, text_coercer

        output = next(iter(sig.output_fields.values()))
        from dspex_lab.programs.predictors import pot_code_signature

        code_sig = pot_code_signature(sig, attempt > 0)
        for branch in self.step(path, code_sig, step_inputs):
            if branch.outputs is None:
                yield branch  # parse failed twice: the example fails
                continue
            code = str(branch.outputs.get("code", ""))
            ran, stdout, error = self._run(code)
            if ran:
                printed = stdout.strip()
                try:
                    value = text_coercer(output.annotation)(printed)
                except CoercionError as exc:
                    error = (f"the code printed {printed[:200]!r}, which is not a "
                             f"valid {output.type_str}: {exc}")
                else:
                    yield branch.with_outputs({output.name: value})
                    continue
            if attempt >= self.plan.max_code_retries:
                yield branch.with_outputs(None)
                continue
            retry_inputs = {**inputs, "previous_code": code, "error": error or "the code failed"}
            yield from self.pot(branch, sig, inputs, retry_inputs, attempt + 1)


def _plan(config: Mapping[str, Any], dataset_demos: Any, seed: int) -> _Plan:
    from dspex_lab.programs.adapters import fallback_adapter

    unknown = set(config) - _KNOWN_KEYS
    if unknown:
        raise ConfigurationError(f"unknown config keys {sorted(unknown)}; "
                                 f"valid: {sorted(_KNOWN_KEYS)}")
    name = str(config.get("model", "sim/small"))
    model = resolve_model(name)
    if model is None:
        raise ConfigurationError(f"{name!r} is not a simulator model (tiny, small, medium, large)")
    module = str(config.get("module", "predict"))
    if module not in _MODULES:
        raise ConfigurationError(f"module must be one of {_MODULES}, got {module!r}")
    adapter = str(config.get("adapter", "chat"))
    demos = config.get("demos", 0)
    demo_rows = dataset_demos(demos) if isinstance(demos, int) else list(demos or [])
    temperature = config.get("temperature")
    if temperature is not None and not 0.0 <= float(temperature) <= 2.0:
        raise ConfigurationError(f"temperature must be in [0, 2], got {temperature!r}")
    max_tokens = config.get("max_tokens")
    if max_tokens is not None and int(max_tokens) < 1:
        raise ConfigurationError(f"max_tokens must be >= 1, got {max_tokens!r}")
    return _Plan(
        model=model, model_name=model.name, adapter=adapter, fallback=fallback_adapter(adapter),
        module=module, temperature=None if temperature is None else float(temperature),
        max_tokens=None if max_tokens is None else int(max_tokens),
        instructions=config.get("instructions"), demos=demo_rows,
        max_code_retries=int(config.get("max_code_retries", 2)), seed=seed,
    )


def expected_metrics(config: Mapping[str, Any], dataset: str = "sim-math", split: str = "val",
                     *, seed: int = 0) -> ExpectedMetrics:
    """The exact expectation of running a one-module program over ``split`` under ``config``.

    ``config`` keys: ``model`` ("sim/small"), ``adapter`` ("chat"), ``module``
    ("predict" | "cot" | "pot"), ``temperature`` (None = not sent, so 1.0),
    ``demos`` (an int k meaning ``load(dataset).demos(k)``, or demo dicts),
    ``instructions`` (None = the signature's default), ``max_tokens``,
    ``max_code_retries`` (2). ``seed`` is the simulator server's seed.
    """
    from dspex_lab.programs.metrics import BY_NAME
    from dspex_lab.programs.predictors import REASONING_DESC, pot_demos
    from dspex_lab.programs.signature import Signature

    data = load(dataset)
    plan = _plan(config, data.demos, seed)
    sig = Signature(data.signature)
    if plan.module == "pot":  # every call is a code step: demos as ProgramOfThought shows them
        plan = replace(plan, demos=pot_demos(sig, plan.demos))
    walker = _Walker(plan)
    step_sig = sig.prepend_output("reasoning", "str", REASONING_DESC) if plan.module == "cot" \
        else sig
    metric = BY_NAME[data.default_metric]
    accuracy = 0.0
    calls = cost = latency = tokens = 0.0
    rows = data.split(split)
    for row in rows:
        inputs = {name: row[name] for name in data.input_fields}
        if plan.module == "pot":
            paths = _merge(walker.pot(_START, sig, inputs, inputs, 0))
        else:
            paths = walker.step(_START, step_sig, inputs)
        for path in paths:
            if path.outputs is not None:
                accuracy += path.p * float(metric(row, path.outputs))
            calls += path.weighted[0]
            cost += path.weighted[1]
            latency += path.weighted[2]
            tokens += path.weighted[3]
    n = len(rows)
    return ExpectedMetrics(accuracy / n, cost / n, latency / n, calls / n, tokens / n, n)

