"""Pre-flight analysis: what a run would try, with which strategy, and what it would cost.

:func:`analyze_spec` (``spec.analyze()``) reports the space, the dependencies
between variables, the models' capabilities, the strategy the optimizer
would choose and why, and the expected calls, tokens, dollars and wall time
of the run, from the per-configuration model in
:mod:`dspex_lab.variables._estimate` applied to the configurations the run
would try (all of them when few, else a sample). ``docs/spec.md`` documents
all of it.
"""

from __future__ import annotations

import html
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.errors import DspexError
from dspex_lab.variables._diagnostics import Diagnostic, render_diagnostics_html
from dspex_lab.variables._estimate import (
    PLACEHOLDER_INPUT_TOKENS,
    ConfigEstimate,
    TokenModel,
    estimate_config,
    model_info,
)
from dspex_lab.variables._strategy import StrategyChoice, choose_strategy
from dspex_lab.variables._variable import Categorical, Demos

if TYPE_CHECKING:
    from dspex_lab.programs.signature import Signature
    from dspex_lab.variables._space import Space
    from dspex_lab.variables._spec import Budget, Spec

__all__ = [
    "DEFAULT_DATASET_SIZE",
    "DEFAULT_TRIALS",
    "SAMPLE_CONFIGS",
    "SAMPLE_ROWS",
    "TRIAL_OVERHEAD_S",
    "Analysis",
    "BudgetExceededError",
    "Estimate",
    "analyze_spec",
    "config_sample",
    "effective_config",
]

TRIAL_OVERHEAD_S = 0.05
"""Optimizer bookkeeping per trial (ask, tell, record)."""
DEFAULT_DATASET_SIZE = 50
"""Examples per trial assumed when neither the spec nor the caller says."""
DEFAULT_TRIALS = 30
"""Trials assumed when neither the budget nor the caller says."""
SAMPLE_ROWS = 8
"""Dataset rows whose prompts are rendered (evenly spread over the split)."""
SAMPLE_CONFIGS = 24
"""Configurations estimated: every one when the valid space is this small, else a sample."""


class BudgetExceededError(DspexError):
    """A run's pre-flight estimate exceeds its budget; pass ``force=True`` to run anyway.

    ``analysis`` is the :class:`Analysis` that refused (None when the optimizer's own
    estimate for a Python program refused).
    """

    kind = "budget_exceeded"

    def __init__(self, message: str, analysis: Analysis | None = None) -> None:
        super().__init__(message)
        self.analysis = analysis


# --------------------------------------------------------------------------- whole-run estimate


@dataclass(frozen=True)
class Estimate:
    """Expected totals for a run of ``trials`` trials of ``dataset_size`` examples each.

    ``dollars`` is None when a model's price is unknown. ``trial_dollars``
    gives (cheapest, mean, dearest) configuration for one trial.
    """

    trials: int
    dataset_size: int
    calls: float
    prompt_tokens: float
    completion_tokens: float
    dollars: float | None
    wall_time_s: float
    trial_dollars: tuple[float, float, float] | None
    configs_estimated: int
    configs_exhaustive: bool
    concurrency: int

    @property
    def tokens(self) -> float:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Analysis:
    """The pre-flight report of a spec (``spec.analyze(...)``); see ``docs/spec.md``."""

    name: str | None
    variables: list[tuple[str, str, str, int | None, str | None]]  # name, kind, domain, n, when
    space_size: int | None
    size_exact: bool
    raw_size: int | None
    dependencies: dict[str, list[str]]
    couplings: list[tuple[str, list[str]]]
    capabilities: list[dict[str, Any]]
    strategy: StrategyChoice
    estimate: Estimate | None
    budget: Budget
    dataset_size_source: str
    trials_source: str
    notes: list[str] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    # -- budget ---------------------------------------------------------------
    @property
    def budget_problems(self) -> list[str]:
        problems: list[str] = []
        est, budget = self.estimate, self.budget
        if est is None:
            return problems
        if budget.dollars is not None and est.dollars is not None \
                and est.dollars > budget.dollars:
            problems.append(f"estimated ${est.dollars:.4f} exceeds budget.dollars "
                            f"${budget.dollars:g}")
        limit = budget.time_limit_s
        if limit is not None and est.wall_time_s > limit:
            problems.append(f"estimated {est.wall_time_s / 60:.1f} min exceeds the budget's "
                            f"{limit / 60:g} min")
        return problems

    @property
    def exceeds_budget(self) -> bool:
        """True when the estimated dollars (or wall time) exceed the budget."""
        return bool(self.budget_problems)

    def check_budget(self, force: bool = False) -> None:
        """Raise :class:`BudgetExceededError` when the estimate exceeds the budget, unless
        ``force``; a run calls this before its first trial."""
        if self.exceeds_budget and not force:
            raise BudgetExceededError(
                "The run would exceed its budget: " + "; ".join(self.budget_problems)
                + ". Raise the budget, lower trials or dataset size, or pass force=True.",
                self)

    # -- rendering ---------------------------------------------------------------
    def text(self) -> str:
        lines = [f"Pre-flight analysis of {self.name or 'the spec'}"]
        size = ("continuous" if self.space_size is None
                else f"{self.space_size}{'' if self.size_exact else ' (estimated)'}")
        lines.append(f"  space: {len(self.variables)} variables, size {size}"
                     + (f" (of {self.raw_size} unconstrained)"
                        if self.raw_size is not None and self.raw_size != self.space_size
                        else ""))
        for name, kind, domain, _, when in self.variables:
            lines.append(f"    {name} [{kind}] {domain}" + (f"  when {when}" if when else ""))
        if self.dependencies or self.couplings:
            lines.append("  dependencies:")
            for name, deps in self.dependencies.items():
                lines.append(f"    {name} is active depending on {', '.join(deps) or '-'}")
            for text, names in self.couplings:
                lines.append(f"    `{text}` links {', '.join(names) or '(constants only)'}")
        if self.capabilities:
            lines.append("  models:")
            for cap in self.capabilities:
                lines.append("    " + _capability_text(cap))
        lines.append(f"  strategy: {self.strategy.name} ({self.strategy.reason})")
        est = self.estimate
        if est is not None:
            lines.append(f"  estimate: {est.trials} trials x {est.dataset_size} examples "
                         f"[{self.trials_source}; {self.dataset_size_source}]")
            lines.append(f"    LM calls {est.calls:,.0f}, tokens {est.tokens:,.0f} "
                         f"({est.prompt_tokens:,.0f} in, {est.completion_tokens:,.0f} out)")
            dollars = "unknown (a model has no price)" if est.dollars is None \
                else f"${est.dollars:,.4f}"
            lines.append(f"    dollars {dollars}, wall time {_duration(est.wall_time_s)} at "
                         f"{est.concurrency} in flight")
            if est.trial_dollars is not None:
                lo, mean, hi = est.trial_dollars
                lines.append(f"    one trial: ${lo:.4f} cheapest, ${mean:.4f} mean, "
                             f"${hi:.4f} dearest ({est.configs_estimated} configurations "
                             f"{'(all)' if est.configs_exhaustive else 'sampled'})")
        budget = self.budget
        shown = ", ".join(f"{k} {v}" for k, v in (("dollars", budget.dollars),
                                                  ("trials", budget.trials),
                                                  ("minutes", budget.minutes),
                                                  ("seconds", budget.seconds)) if v is not None)
        lines.append(f"  budget: {shown or 'none'}"
                     + (f" -- EXCEEDED: {'; '.join(self.budget_problems)}"
                        if self.exceeds_budget else ""))
        lines += [f"  note: {n}" for n in self.notes]
        errors = [d for d in self.diagnostics if d.severity != "info"]
        if errors:
            lines.append(f"  diagnostics: {len(errors)} (see spec.diagnostics)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        esc = html.escape
        size = ("continuous" if self.space_size is None
                else f"{self.space_size}{'' if self.size_exact else ' (estimated)'}")
        parts = [f"<div><b>Pre-flight analysis of {esc(self.name or 'the spec')}</b></div>",
                 f"<div>space: {len(self.variables)} variables, size {esc(size)}</div>"]
        rows = "".join(f"<tr><td>{esc(n)}</td><td>{esc(k)}</td><td>{esc(d)}</td>"
                       f"<td>{esc(w or '')}</td></tr>" for n, k, d, _, w in self.variables)
        parts.append("<table><thead><tr><th>variable</th><th>kind</th><th>values</th>"
                     f"<th>when</th></tr></thead><tbody>{rows}</tbody></table>")
        if self.capabilities:
            cap_rows = "".join(
                f"<tr><td>{esc(c['model'])}</td><td>{'yes' if c['known'] else 'no'}</td>"
                f"<td>{_opt(c['input_per_million'])}</td><td>{_opt(c['output_per_million'])}"
                f"</td><td>{_opt(c['json_mode'])}</td><td>{_opt(c['context_window'])}</td>"
                f"<td>{_opt(c.get('fits_context'))}</td></tr>" for c in self.capabilities)
            parts.append("<table><thead><tr><th>model</th><th>known</th><th>$/M in</th>"
                         "<th>$/M out</th><th>JSON mode</th><th>context</th>"
                         f"<th>prompts fit</th></tr></thead><tbody>{cap_rows}</tbody></table>")
        parts.append(f"<div>strategy: <b>{esc(self.strategy.name)}</b> — "
                     f"{esc(self.strategy.reason)}</div>")
        est = self.estimate
        if est is not None:
            dollars = "unknown" if est.dollars is None else f"${est.dollars:,.4f}"
            color = "#b00020" if self.exceeds_budget else "inherit"
            parts.append(
                f"<div style='color:{color}'>estimate: {est.trials} trials × "
                f"{est.dataset_size} examples: {est.calls:,.0f} LM calls, "
                f"{est.tokens:,.0f} tokens, {dollars}, {_duration(est.wall_time_s)}</div>")
        if self.exceeds_budget:
            parts.append(f"<div style='color:#b00020'>budget exceeded: "
                         f"{esc('; '.join(self.budget_problems))}</div>")
        parts += [f"<div><i>note:</i> {esc(n)}</div>" for n in self.notes]
        parts.append(render_diagnostics_html(self.diagnostics))
        return "".join(parts)


def _opt(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return html.escape(str(value))


def _capability_text(cap: Mapping[str, Any]) -> str:
    if not cap["known"]:
        return f"{cap['model']}: unknown to the price map (cost unknown)"
    return (f"{cap['model']}: ${cap['input_per_million']:g}/M in, "
            f"${cap['output_per_million']:g}/M out, JSON mode "
            f"{_opt(cap['json_mode'])}, context {_opt(cap['context_window'])}"
            + ("" if cap.get("fits_context") in (None, True)
               else " -- the longest prompt does not fit"))


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _domain_text(var: Any) -> str:
    if isinstance(var, Categorical):
        shown = [c if not isinstance(c, str) or len(c) < 30 else c[:27] + "..."
                 for c in var.choices]
        return repr(shown)
    if isinstance(var, Demos):
        return f"k in [{var.k_low}, {var.k_high}] ({var.select})"
    low, high = var.low, var.high
    extra = " log" if var.log else ""
    if var.step is not None and not (var.domain == "int" and var.step == 1):
        extra += f" step {var.step}"
    return f"[{low}, {high}]{extra}"


# --------------------------------------------------------------------------- analysing a spec


def _rows_for(spec: Spec, n: int) -> list[dict[str, Any]]:
    """``n`` rows spread evenly over the rows a trial evaluates (the first ``dataset.size``
    rows of the split)."""
    data = spec._shared_dataset()
    if data is None or spec.dataset is None:
        return []
    rows = data.split(spec.dataset.split)[: spec.dataset.size]
    if len(rows) <= n:
        return rows
    step = len(rows) / n
    return [rows[int(i * step)] for i in range(n)]


def _base_config(spec: Spec) -> dict[str, Any]:
    return {"model": spec.model, "adapter": spec.adapter or "chat",
            "module": spec.module or "predict", "instructions": None,
            "max_tokens": spec.max_tokens, "demos": [],
            "max_code_retries": 2}


def effective_config(space: Space, base: Mapping[str, Any],
                     assignment: Mapping[str, Any]) -> dict[str, Any]:
    """The settings one configuration runs with (a spec has one module, so targeted
    variables apply to it)."""
    config = dict(base)
    for name, value in assignment.items():
        var = space.variables[name]
        if var.key is None:
            continue
        if isinstance(var, Demos):
            # without a pool, the count: estimate_config renders placeholder demos
            config["demos"] = var.config_value(value) if var.pool is not None else len(value)
            config["demo_keys"] = [(name, i) for i in value]
        else:
            config[var.key] = value
    return config


def config_sample(space: Space, trials: int, strategy: str, n: int, seed: int
                  ) -> tuple[list[dict[str, Any]], bool]:
    """The assignments to estimate: the whole valid space when small (or the grid a grid
    run would try), else ``n`` random valid ones. Returns (assignments, exhaustive)."""
    size = space.size
    if size is not None and space.size_exact and (size <= n or (
            strategy == "grid" and size <= 4 * n)):
        configs = list(space.grid())
        if strategy == "grid" and trials < len(configs):
            return configs[:trials], True
        return configs, True
    costly = [name for name, var in space.variables.items() if var.key is not None]
    if not costly:
        return [{}], True
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        try:
            out.append(space.sample(rng, only=costly))
        except DspexError:
            break
    return out, False


def analyze_spec(spec: Spec, *, dataset_size: int | None = None, trials: int | None = None,
                 concurrency: int = 16, sample_rows: int = SAMPLE_ROWS,
                 sample_configs: int = SAMPLE_CONFIGS, seed: int = 0,
                 space: Space | None = None) -> Analysis:
    """The :class:`Analysis` behind ``spec.analyze`` (``space``: the spec's space with its
    demo pools bound, if the caller has it)."""
    from dspex_lab.programs.signature import Signature

    notes: list[str] = []
    if space is None:
        space = spec.space(bind_demos=True, check=False)
    # sizes and sources
    if dataset_size is not None:
        n_examples, size_source = int(dataset_size), "dataset_size argument"
    elif spec.dataset is not None and spec.dataset.size is not None:
        n_examples, size_source = spec.dataset.size, "dataset.size"
    elif spec.dataset is not None:
        n_examples = len(spec._shared_dataset().split(spec.dataset.split))  # type: ignore[union-attr]
        size_source = f"the {spec.dataset.split} split of {spec.dataset.name}"
    else:
        n_examples, size_source = DEFAULT_DATASET_SIZE, "assumed (no dataset)"
    if trials is not None:
        n_trials, trials_source = int(trials), "trials argument"
    elif spec.budget.trials is not None:
        n_trials, trials_source = spec.budget.trials, "budget.trials"
    else:
        n_trials, trials_source = DEFAULT_TRIALS, "assumed (no budget.trials)"
    variables = list(space.variables.values())
    objectives = spec.resolved_objectives()
    choice = choose_strategy(
        requested=spec.strategy, n_variables=len(variables), discrete=space.is_discrete,
        size=space.size, trials=n_trials, n_objectives=len(objectives),
        weighted=bool(spec.weights), conditional=bool(space.conditions),
        n_numeric=sum(1 for v in variables if v.domain in ("float", "int")))
    effective_trials = n_trials
    if choice.name == "grid" and space.size is not None and space.size_exact:
        effective_trials = min(n_trials, space.size)
        if effective_trials < n_trials:
            notes.append(f"a grid run stops after its {space.size} configurations")
    # the estimate
    estimate: Estimate | None = None
    capabilities: list[dict[str, Any]] = []
    sig: Signature | None = None
    try:
        sig = Signature(spec.signature or "", instructions=spec.instructions)
    except DspexError:
        notes.append("no estimate: the signature does not parse")
    per_config: list[ConfigEstimate] = []
    if sig is not None:
        tokens = TokenModel(sig, _rows_for(spec, sample_rows))
        if not tokens.rows:
            notes.append(f"no dataset: prompts use {PLACEHOLDER_INPUT_TOKENS}-token "
                         f"placeholder inputs")
        assignments, exhaustive = config_sample(space, effective_trials, choice.name,
                                                sample_configs, seed)
        if not assignments:
            notes.append("no estimate: no valid configuration was found")
        base = _base_config(spec)
        for a in assignments:
            per_config.append(estimate_config(tokens, effective_config(space, base, a)))
        if per_config:
            k = len(per_config)
            calls = sum(e.calls for e in per_config) / k
            prompt = sum(e.prompt_tokens for e in per_config) / k
            completion = sum(e.completion_tokens for e in per_config) / k
            latency = sum(e.latency_s for e in per_config) / k
            costs = [e.cost for e in per_config]
            dollars = None
            trial_dollars = None
            if all(c is not None for c in costs):
                known = [float(c) for c in costs if c is not None]
                mean = sum(known) / k
                dollars = mean * n_examples * effective_trials
                trial_dollars = (min(known) * n_examples, mean * n_examples,
                                 max(known) * n_examples)
            work = latency * n_examples * effective_trials
            wall = work / max(1, min(concurrency, n_examples)) \
                + TRIAL_OVERHEAD_S * effective_trials
            estimate = Estimate(effective_trials, n_examples,
                                calls * n_examples * effective_trials,
                                prompt * n_examples * effective_trials,
                                completion * n_examples * effective_trials, dollars, wall,
                                trial_dollars, k, exhaustive, concurrency)
    # capabilities
    longest = max((e.max_prompt_tokens for e in per_config), default=None)
    for model in _models_of(spec, space):
        info = model_info(model)
        fits = None if longest is None or info.context_window is None \
            else longest <= info.context_window
        capabilities.append({"model": model, "known": info.known, "source": info.source,
                             "input_per_million": info.input_per_million,
                             "output_per_million": info.output_per_million,
                             "json_mode": info.json_mode,
                             "context_window": info.context_window, "fits_context": fits})
    if any(c["json_mode"] is False for c in capabilities) and _uses_json(spec, space):
        notes.append("some models lack JSON mode: the json adapter asks for JSON in the "
                     "prompt only, and breaks the format more often")
    return Analysis(
        name=spec.name,
        variables=[(v.name, v.kind, _domain_text(v), v.cardinality, v.when) for v in variables],
        space_size=space.size, size_exact=space.size_exact, raw_size=space.raw_size,
        dependencies=space.dependencies, couplings=space.couplings,
        capabilities=capabilities, strategy=choice, estimate=estimate, budget=spec.budget,
        dataset_size_source=size_source, trials_source=trials_source, notes=notes,
        diagnostics=list(spec.diagnostics))


def _models_of(spec: Spec, space: Space) -> list[str]:
    models: list[str] = [spec.model] if spec.model else []
    for var in space.variables.values():
        if var.key == "model" and isinstance(var, Categorical):
            models += [c for c in var.choices if isinstance(c, str)]
    return list(dict.fromkeys(models))


def _uses_json(spec: Spec, space: Space) -> bool:
    if spec.adapter == "json":
        return True
    return any(var.key == "adapter" and isinstance(var, Categorical) and "json" in var.choices
               for var in space.variables.values())
