"""``Spec``: a program, what may vary in it, and what to optimize, as one object.

A spec is what the body of a ``%%dspex`` cell (or a YAML file) says; every key
is documented in ``docs/spec.md``. :func:`parse_spec` never raises on bad
text: it returns a spec whose ``diagnostics`` say what is wrong and where.
The Python API builds the same object (:meth:`Spec.from_python`), which
round-trips through text: ``parse_spec(spec.to_text()) == spec``.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from dspex_lab.errors import ConfigurationError
from dspex_lab.programs.module import Module
from dspex_lab.variables._constraints import Constraint
from dspex_lab.variables._diagnostics import Diagnostic, SpecError, render_diagnostics_html
from dspex_lab.variables._space import Space
from dspex_lab.variables._variable import Demos, Variable

if TYPE_CHECKING:
    from dspex_lab.datasets import Dataset
    from dspex_lab.variables._analysis import Analysis

__all__ = ["DEFAULT_OBJECTIVES", "Budget", "DatasetRef", "Spec", "load_spec", "parse_spec"]

DEFAULT_OBJECTIVES: dict[str, str] = {"accuracy": "max", "cost": "min", "latency": "min"}
"""The objectives of a spec that names none."""


@dataclass(frozen=True)
class Budget:
    """Limits of a run: dollars spent, trials run, wall time in ``minutes`` or ``seconds``
    (None: no limit; when both are given the shorter counts)."""

    dollars: float | None = None
    trials: int | None = None
    minutes: float | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("dollars", "minutes", "seconds"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(
                    value, int | float) or not value > 0):
                raise ConfigurationError(f"Budget.{name} must be a positive number, not "
                                         f"{value!r}")
        if self.trials is not None and (isinstance(self.trials, bool) or not isinstance(
                self.trials, int) or self.trials < 1):
            raise ConfigurationError(f"Budget.trials must be an integer >= 1, not "
                                     f"{self.trials!r}")

    @property
    def time_limit_s(self) -> float | None:
        """The wall-time limit in seconds (None: none)."""
        limits = [v for v in (None if self.minutes is None else self.minutes * 60,
                              self.seconds) if v is not None]
        return min(limits) if limits else None

    def to_spec(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}


@dataclass(frozen=True)
class DatasetRef:
    """A built-in dataset, the split trials evaluate on, and how many of its rows."""

    name: str
    split: str = "val"
    size: int | None = None

    def to_spec(self) -> str | dict[str, Any]:
        if self.split == "val" and self.size is None:
            return self.name
        body: dict[str, Any] = {"name": self.name, "split": self.split}
        if self.size is not None:
            body["size"] = self.size
        return body


@dataclass(eq=True, repr=False)
class Spec:
    """A parsed (or Python-built) spec. ``diagnostics`` and ``source`` do not count for
    equality; ``ok`` is True when no diagnostic is an error."""

    signature: str | None = None
    name: str | None = None
    description: str | None = None
    instructions: str | None = None
    model: str | None = None
    adapter: str | None = None
    module: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    dataset: DatasetRef | None = None
    metric: str | None = None
    variables: dict[str, Variable] = field(default_factory=dict)
    constraints: list[str] = field(default_factory=list)
    objectives: dict[str, str] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)
    strategy: str = "auto"
    diagnostics: list[Diagnostic] = field(default_factory=list, compare=False)
    source: str | None = field(default=None, compare=False)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False)

    # -- status ----------------------------------------------------------------
    @property
    def ok(self) -> bool:
        """True when no diagnostic is an error."""
        return not any(d.is_error for d in self.diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "warning"]

    def raise_for_errors(self) -> None:
        """Raise :class:`SpecError` (listing the errors) unless the spec is ok."""
        if not self.ok:
            raise SpecError(self.diagnostics, f"The spec {self.name or ''}".rstrip())

    def resolved_objectives(self) -> dict[str, str]:
        """The objectives; when the spec names none, those its weights name, else
        :data:`DEFAULT_OBJECTIVES`."""
        if self.objectives:
            return dict(self.objectives)
        if self.weights:
            return {n: "max" if n == "accuracy" else "min" for n in self.weights}
        return dict(DEFAULT_OBJECTIVES)

    def _shared_dataset(self) -> Dataset | None:
        """The named dataset as loaded once per process (read-only use: estimates and
        demo pools, which copy what they take)."""
        return None if self.dataset is None else _load_dataset(self.dataset.name)

    def dataset_object(self) -> Dataset | None:
        """The built-in dataset the spec names (loaded once), or None."""
        if self.dataset is None:
            return None
        data: Dataset | None = self._cache.get("data")
        if data is None or data.name != self.dataset.name:
            from dspex_lab.datasets import load

            data = self._cache["data"] = load(self.dataset.name)
        return data

    # -- building --------------------------------------------------------------
    def constants(self) -> dict[str, Any]:
        """Fixed settings constraints may read (not variables): ``module`` and ``adapter``
        (defaults ``predict`` and ``chat``), and ``model``, ``temperature``,
        ``max_tokens`` when set."""
        fixed: dict[str, Any] = {"module": self.module or "predict",
                                 "adapter": self.adapter or "chat"}
        for key in ("model", "temperature", "max_tokens"):
            if getattr(self, key) is not None:
                fixed[key] = getattr(self, key)
        return {k: v for k, v in fixed.items() if k not in self.variables}

    def fingerprint(self) -> tuple[Any, ...]:
        """Everything that defines the spec (compared with ``==``; caches key on it)."""
        return (self.signature, self.instructions, self.model, self.adapter, self.module,
                self.temperature, self.max_tokens, self.dataset, self.metric,
                tuple(self.variables.items()), tuple(self.constraints),
                tuple(self.objectives.items()), tuple(self.weights.items()), self.budget,
                self.strategy, self.name)

    def _cached(self, key: str, make: Any) -> Any:
        """``make()``, cached until the spec changes."""
        mark = self.fingerprint()
        found = self._cache.get(key)
        if found is None or found[0] != mark:
            found = self._cache[key] = (mark, make())
        return found[1]

    def space(self, *, bind_demos: bool = True, check: bool = True) -> Space:
        """The variable space. Demos variables without a pool draw from the dataset's
        train split (``dataset.demos(n)``) when ``bind_demos`` and a dataset is named.
        Cached until the spec changes (a space is immutable)."""
        if check:
            self.raise_for_errors()
        base: Space = self._cached("space", lambda: Space(
            list(self.variables.values()), self.constraints, constants=self.constants()))
        data = self._shared_dataset() if bind_demos else None
        if data is None or not any(isinstance(v, Demos) and v.pool is None
                                   for v in base.variables.values()):
            return base

        def bind() -> Space:
            assert data is not None
            return base.with_variables([
                v.with_pool(data.demos(v.n_pool)) if isinstance(v, Demos) and v.pool is None
                else v for v in base.variables.values()])

        bound: Space = self._cached("bound-space", bind)
        return bound

    def build(self, program: Module | None = None) -> tuple[Module, Space]:
        """``(program, space)``: the program (a ``Predict``/``ChainOfThought``/
        ``ProgramOfThought`` over the signature with the spec's settings, unless one is
        given) and its variable space. Raises :class:`SpecError` if the spec has errors."""
        from dspex_lab.programs.predictors import predictor_class
        from dspex_lab.programs.signature import Signature

        space = self.space()
        if program is None:
            sig = Signature(self.signature or "", instructions=self.instructions)
            kwargs: dict[str, Any] = {}
            for key in ("model", "adapter", "temperature", "max_tokens"):
                if getattr(self, key) is not None:
                    kwargs[key] = getattr(self, key)
            program = predictor_class(self.module or "predict")(sig, **kwargs)
            targets = sorted({v.target for v in space.variables.values() if v.target})
            if targets:
                if len(targets) > 1 or not targets[0].isidentifier():
                    raise ConfigurationError(
                        f"variables target modules {targets}; a spec program has one module: "
                        f"pass your own program with spec.build(program=...)")
                program = _SpecProgram(targets[0], program)
        space.check_program(program)
        return program, space

    def analyze(self, dataset_size: int | None = None, trials: int | None = None, *,
                concurrency: int = 16, sample_rows: int | None = None,
                sample_configs: int | None = None, seed: int = 0) -> Analysis:
        """The pre-flight :class:`~dspex_lab.variables.Analysis`: space size, dependencies,
        model capabilities, strategy and why, and the estimated calls, tokens, dollars
        and wall time of ``trials`` trials over ``dataset_size`` examples (defaults: the
        budget's trials and the dataset's size). Cached until the spec changes."""
        from dspex_lab.variables._analysis import SAMPLE_CONFIGS, SAMPLE_ROWS, analyze_spec

        self.raise_for_errors()
        args = (dataset_size, trials, concurrency,
                SAMPLE_ROWS if sample_rows is None else sample_rows,
                SAMPLE_CONFIGS if sample_configs is None else sample_configs, seed)
        analysis: Analysis = self._cached(f"analysis{args}", lambda: analyze_spec(
            self, dataset_size=args[0], trials=args[1], concurrency=args[2],
            sample_rows=args[3], sample_configs=args[4], seed=args[5],
            space=self.space(check=False)))
        return replace(analysis, diagnostics=list(self.diagnostics))

    # -- text --------------------------------------------------------------------
    def to_text(self) -> str:
        """The spec as YAML; ``parse_spec(spec.to_text()) == spec``."""
        lines: list[str] = []
        for key in ("name", "description", "signature", "instructions", "model", "adapter",
                    "module", "temperature", "max_tokens"):
            value = getattr(self, key)
            if value is not None:
                lines.append(f"{key}: {_flow(value)}")
        if self.dataset is not None:
            lines.append(f"dataset: {_flow(self.dataset.to_spec())}")
        if self.metric is not None:
            lines.append(f"metric: {_flow(self.metric)}")
        if self.variables:
            lines.append("variables:")
            for name, var in self.variables.items():
                lines.append(f"  {_flow(name)}: {_flow(var.to_spec())}")
        if self.constraints:
            lines.append("constraints:")
            lines += [f"  - {_flow(text)}" for text in self.constraints]
        if self.objectives:
            lines.append(f"objectives: {_flow(self.objectives)}")
        if self.weights:
            lines.append(f"weights: {_flow(self.weights)}")
        if self.budget.to_spec():
            lines.append(f"budget: {_flow(self.budget.to_spec())}")
        lines.append(f"strategy: {_flow(self.strategy)}")
        return "\n".join(lines) + "\n"

    @classmethod
    def from_python(cls, signature: str, *, name: str | None = None,
                    description: str | None = None, instructions: str | None = None,
                    model: str | None = None, adapter: str | None = None,
                    module: str | None = None, temperature: float | None = None,
                    max_tokens: int | None = None,
                    dataset: str | DatasetRef | None = None, metric: str | None = None,
                    variables: Iterable[Variable] | Space = (),
                    constraints: Iterable[str | Constraint] = (),
                    objectives: Mapping[str, str] | Sequence[str] | None = None,
                    weights: Mapping[str, float] | None = None,
                    budget: Budget | Mapping[str, Any] | None = None,
                    strategy: str = "auto") -> Spec:
        """A spec built in Python, checked exactly like parsed text (its diagnostics point
        into ``spec.to_text()``, kept as ``spec.source``).

        ``variables`` may be a :class:`Space`, whose constraints are added to
        ``constraints``.
        """
        constraint_texts = [c.text if isinstance(c, Constraint) else c for c in constraints]
        if isinstance(variables, Space):
            constraint_texts = [c.text for c in variables.constraints] + constraint_texts
            variables = list(variables.variables.values())
        var_map: dict[str, Variable] = {}
        for var in variables:
            if not isinstance(var, Variable):
                raise ConfigurationError(f"variables holds Variable objects, not {var!r}")
            if var.name in var_map:
                raise ConfigurationError(f"variable {var.name!r} is declared twice")
            var_map[var.name] = var
        if isinstance(objectives, Sequence) and not isinstance(objectives, str):
            from dspex_lab.variables._spec_parse import objective_direction

            objectives = {o: objective_direction(o) for o in objectives}
        spec = cls(
            signature=signature, name=name, description=description,
            instructions=instructions, model=model, adapter=adapter, module=module,
            temperature=temperature, max_tokens=max_tokens,
            dataset=DatasetRef(dataset) if isinstance(dataset, str) else dataset,
            metric=metric, variables=var_map, constraints=constraint_texts,
            objectives=dict(objectives) if isinstance(objectives, Mapping) else {},
            weights=dict(weights or {}),
            budget=budget if isinstance(budget, Budget) else Budget(**dict(budget or {})),
            strategy=strategy)
        text = spec.to_text()
        parsed = parse_spec(text)
        spec.diagnostics = parsed.diagnostics
        spec.source = text
        if parsed == spec:  # always, unless a value does not survive YAML: then recompute
            spec._cache = parsed._cache
        return spec

    # -- display ----------------------------------------------------------------------
    def __repr__(self) -> str:
        status = "ok" if self.ok else f"{len(self.errors)} errors"
        if self.warnings:
            status += f", {len(self.warnings)} warnings"
        return (f"Spec(name={self.name!r}, signature={self.signature!r}, "
                f"variables={list(self.variables)}, constraints={len(self.constraints)}, "
                f"{status})")

    def render_diagnostics(self) -> str:
        from dspex_lab.variables._diagnostics import render_diagnostics

        return render_diagnostics(self.diagnostics)

    def _repr_html_(self) -> str:
        esc = html.escape
        status = ("<span style='color:#1b7f3b'>ok</span>" if self.ok
                  else f"<span style='color:#b00020'>{len(self.errors)} errors</span>")
        head = (f"<div><b>Spec {esc(self.name or '')}</b> — "
                f"<code>{esc(self.signature or '?')}</code> — {len(self.variables)} variables, "
                f"{len(self.constraints)} constraints — {status}</div>")
        return head + render_diagnostics_html(self.diagnostics)


class _SpecProgram(Module):
    """One predictor under an attribute name, so variables can target it by path."""

    def __init__(self, attr: str, predictor: Module) -> None:
        setattr(self, attr, predictor)
        self._attr = attr

    async def aforward(self, **inputs: Any) -> Any:
        return await getattr(self, self._attr).acall(**inputs)

    def input_names(self) -> list[str]:
        names: list[str] = getattr(self, self._attr).input_names()
        return names


@functools.lru_cache(maxsize=8)
def _load_dataset(name: str) -> Dataset:
    from dspex_lab.datasets import load

    return load(name)


def _flow(value: Any) -> str:
    """One YAML value on one line (flow style), read back identically (PyYAML's emitter
    leaves a few Unicode line breaks unescaped; those values are written escaped)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    text = ""
    for unicode in (True, False):
        try:
            text = yaml.safe_dump(value, default_flow_style=True, width=2**30,
                                  allow_unicode=unicode, sort_keys=False)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"{value!r} cannot be written in a spec: {exc}") from None
        text = text.rstrip("\n")
        if text.endswith("\n..."):
            text = text[: -len("\n...")]
        try:
            if yaml.load(text, Loader=loader) == value:
                break
        except yaml.YAMLError:
            continue
    return text


def parse_spec(text: Any, *, strict: bool = False) -> Spec:
    """Parse spec text; never raises on bad input (see ``spec.diagnostics``), unless
    ``strict``, which raises :class:`SpecError` when there are errors."""
    from dspex_lab.variables._spec_parse import parse

    spec = parse(text)
    if strict:
        spec.raise_for_errors()
    return spec


def load_spec(path: str | Path, *, strict: bool = False) -> Spec:
    """Parse the spec in a file (``OSError`` if it cannot be read)."""
    return parse_spec(Path(path).read_text(encoding="utf-8"), strict=strict)
