"""Turning what the user passed to ``dx.optimize`` into one checked :class:`RunSetup`.

All validation happens here, before anything runs and before ``dx.optimize``
returns, so a mistake is an exception in the user's cell, not a failed
background run: unknown objectives, weights for objectives the run does not
have, a missing validation set, rows without the program's inputs, a spec
with errors, a budget the pre-flight estimate already exceeds.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from dspex_lab.errors import ConfigurationError
from dspex_lab.optimize._objectives import Objective, normalize_directions, resolve_objectives
from dspex_lab.optimize._pruning import DEFAULT_RUNGS, rung_sizes
from dspex_lab.optimize._run import check_weights
from dspex_lab.variables import Budget, Demos, Float, Int, Space, Spec, StrategyChoice

if TYPE_CHECKING:
    from dspex_lab.programs.module import Module

__all__ = ["DEFAULT_TRIALS", "RunSetup", "fingerprint", "make_setup"]

DEFAULT_TRIALS = 30
"""Trials of a run whose budget names no trials, dollars or time (never run forever)."""

STRATEGY_TRIALS_UNBOUNDED = 100
"""The trial count strategy rules assume when only dollars or time bound the run."""


@dataclass
class RunSetup:
    """Everything a run needs, checked."""

    program: Module
    space: Space
    trainset: list[dict[str, Any]]
    valset: list[dict[str, Any]]
    metric: Any
    objectives: tuple[Objective, ...]
    weights: dict[str, float] | None
    strategy: StrategyChoice
    budget: Budget
    max_trials: int | None
    concurrency: int
    example_concurrency: int
    rungs: tuple[int, ...]
    pruning: bool | list[float]
    seed: int
    name: str | None
    warm_start: bool
    bootstrap: bool
    teacher: dict[str, Any] | None
    propose_instructions: int
    spec_text: str | None
    dataset_name: str | None
    program_id: str
    space_id: str
    tags: dict[str, str] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The run's settings as JSON-friendly data (kept in the store's ``runs.config``;
        enough to resume a spec run after a restart)."""
        return {"spec": self.spec_text, "dataset": self.dataset_name,
                "n_train": len(self.trainset), "n_val": len(self.valset),
                "metric": self.metric if isinstance(self.metric, str) or self.metric is None
                else getattr(self.metric, "__name__", type(self.metric).__name__),
                "max_trials": self.max_trials, "concurrency": self.concurrency,
                "example_concurrency": self.example_concurrency, "rungs": list(self.rungs),
                "pruning": self.pruning,
                "seed": self.seed, "warm_start": self.warm_start, "bootstrap": self.bootstrap,
                "teacher": self.teacher, "propose_instructions": self.propose_instructions,
                "weights": self.weights}


def fingerprint(data: Any) -> str:
    """A short stable hash of JSON-friendly data (program and space identities)."""
    raw = orjson.dumps(data, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(raw).hexdigest()[:16]


def program_identity(program: Module) -> dict[str, Any]:
    return {"class": type(program).__qualname__,
            "modules": {path: {"signature": str(m.signature), "config": m.own_config()}
                        for path, m in program.named_modules().items()}}


def space_identity(space: Space) -> dict[str, Any]:
    variables = []
    for var in space.variables.values():
        body = var.to_spec()
        if isinstance(var, Demos):  # the pool is data, not the space's shape
            body = {k: v for k, v in body.items() if k != "pool"}
        variables.append({"name": var.name, **body})
    return {"variables": variables, "constraints": [c.text for c in space.constraints],
            "constants": space.constants}


def _dataset_rows(data: Any, split: str, what: str) -> tuple[list[dict[str, Any]], str | None]:
    from dspex_lab.datasets import Dataset, load

    if isinstance(data, str):
        try:
            dataset = load(data)
        except Exception as exc:
            raise ConfigurationError(f"{what}: {exc}") from None
        return [dict(r) for r in dataset.split(split)], dataset.name
    if isinstance(data, Dataset):
        return [dict(r) for r in data.split(split)], data.name
    if hasattr(data, "to_dict") and hasattr(data, "columns"):  # a DataFrame
        return [dict(r) for r in data.to_dict("records")], None
    if isinstance(data, Mapping) or not isinstance(data, Sequence | list | tuple):
        raise ConfigurationError(f"{what} is a list of dicts, a DataFrame or a built-in "
                                 f"dataset name, not {type(data).__name__}")
    rows = list(data)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ConfigurationError(f"{what}[{i}] is not a dict of field values: {row!r}")
    return [dict(r) for r in rows], None


def _check_inputs(program: Module, rows: Sequence[Mapping[str, Any]], what: str) -> None:
    needed = program.input_names()
    for i, row in enumerate(rows):
        missing = [n for n in needed if n not in row]
        if missing:
            raise ConfigurationError(
                f"{what}[{i}] lacks the program's input field(s) {missing}; the program "
                f"needs {needed} and the row has {sorted(row)}")


def _from_spec(spec: Spec) -> tuple[Module, Space]:
    spec.raise_for_errors()
    return spec.build()


def _strategy(requested: str, space: Space, trials: int, n_objectives: int, weighted: bool
              ) -> StrategyChoice:
    from dspex_lab.variables import STRATEGIES, choose_strategy

    if requested not in STRATEGIES:
        raise ConfigurationError(f"strategy {requested!r} is not one of "
                                 f"{', '.join(STRATEGIES)}")
    numeric = sum(isinstance(v, Float | Int) for v in space.variables.values())
    return choose_strategy(requested=requested, n_variables=len(space.variables),
                           discrete=space.is_discrete, size=space.size, trials=trials,
                           n_objectives=n_objectives, weighted=weighted,
                           conditional=bool(space.conditions), n_numeric=numeric)


def _lm_aware(choice: StrategyChoice, program: Module, space: Space,
              rows: Sequence[Mapping[str, Any]], objectives: tuple[Objective, ...]
              ) -> StrategyChoice:
    """Where ``auto`` picked a generic model-based sampler, prefer the LM-aware surrogate
    when it applies: the standard objectives and costs estimable before any call."""
    from dspex_lab.optimize._costs import CostEstimator
    from dspex_lab.optimize._surrogate import supported

    if choice.requested != "auto" or choice.name not in ("tpe", "gp", "nsga2"):
        return choice
    if not supported(objectives) or not CostEstimator(program, rows).available:
        return choice
    return StrategyChoice(
        "surrogate", "auto", "lm-surrogate",
        f"{choice.reason.split(':')[0]}; the objectives are accuracy, cost and latency and "
        f"the program's costs can be estimated from its prompts before any call: an "
        f"LM-aware model (estimated cost and latency, learned accuracy) proposes the "
        f"configuration with the largest expected hypervolume gain")


def make_setup(program_or_spec: Any, space: Space | None, trainset: Any, valset: Any,
               metric: Any, *, objectives: Any, weights: Mapping[str, float] | None,
               strategy: str | None, budget: Budget | Mapping[str, Any] | None,
               concurrency: int, example_concurrency: int,
               pruning: bool | Sequence[float], warm_start: bool, bootstrap: bool,
               teacher: Mapping[str, Any] | None, propose_instructions: int,
               seed: int | None, name: str | None, tags: Mapping[str, str] | None
               ) -> RunSetup:
    """Check and normalize the arguments of ``dx.optimize`` (see its docstring)."""
    from dspex_lab.programs.module import Module
    from dspex_lab.variables import parse_spec

    spec: Spec | None = None
    if isinstance(program_or_spec, str):
        spec = parse_spec(program_or_spec)
    elif isinstance(program_or_spec, Spec):
        spec = program_or_spec
    dataset_name: str | None = None
    if spec is not None:
        if space is not None:
            raise ConfigurationError("a spec brings its own variable space: pass space= only "
                                     "with a program")
        program, space = _from_spec(spec)
        name = name or spec.name
        if spec.dataset is not None:
            dataset_name = spec.dataset.name
            if valset is None:
                valset = dataset_name
            if trainset is None:
                trainset = dataset_name
        metric = metric if metric is not None else spec.metric
        objectives = objectives if objectives is not None else normalize_directions(
            spec.resolved_objectives())
        weights = weights if weights is not None else (spec.weights or None)
        budget = budget if budget is not None else spec.budget
        strategy = strategy or spec.strategy
    elif isinstance(program_or_spec, Module):
        program = program_or_spec
        if space is None:
            raise ConfigurationError("dx.optimize(program, space, ...) needs a variable space: "
                                     "dx.Space([dx.variables.model([...]), ...]), or pass a "
                                     "spec instead of a program")
        if not isinstance(space, Space):
            raise ConfigurationError(f"space must be a dx.Space, not {type(space).__name__}")
        space.check_program(program)
    else:
        raise ConfigurationError(f"dx.optimize takes a program (a dx module), a dx.Spec or "
                                 f"spec text, not {type(program_or_spec).__name__}")
    if valset is None:
        if isinstance(trainset, str):
            valset = trainset
        else:
            raise ConfigurationError("dx.optimize needs a validation set (valset=...): the rows "
                                     "each configuration is scored on")
    val_rows, val_name = _dataset_rows(valset, "val", "valset")
    if spec is not None and spec.dataset is not None and isinstance(valset, str) \
            and valset == spec.dataset.name:
        val_rows = _dataset_rows(valset, spec.dataset.split, "valset")[0]
        if spec.dataset.size is not None:
            val_rows = val_rows[: spec.dataset.size]
    train_rows = _dataset_rows(trainset, "train", "trainset")[0] if trainset is not None else []
    dataset_name = dataset_name or val_name
    if not val_rows:
        raise ConfigurationError("the validation set is empty")
    _check_inputs(program, val_rows, "valset")
    if metric is None and dataset_name is not None:
        from dspex_lab.datasets import load

        metric = load(dataset_name).default_metric
    resolved = resolve_objectives(objectives)
    checked_weights = check_weights(weights, resolved) if weights else None
    if budget is None:
        budget = Budget()
    elif isinstance(budget, Mapping):
        budget = Budget(**budget)
    elif not isinstance(budget, Budget):
        raise ConfigurationError(f"budget is a dx.Budget(dollars=, trials=, seconds=), not "
                                 f"{budget!r}")
    unbounded = budget.dollars is None and budget.time_limit_s is None
    max_trials = budget.trials if budget.trials is not None else (
        DEFAULT_TRIALS if unbounded else None)
    choice = _strategy(strategy or "auto", space, max_trials or STRATEGY_TRIALS_UNBOUNDED,
                       len(resolved), bool(checked_weights))
    choice = _lm_aware(choice, program, space, val_rows, resolved)
    if concurrency < 1 or example_concurrency < 1:
        raise ConfigurationError("concurrency and example_concurrency must be >= 1")
    if propose_instructions < 0:
        raise ConfigurationError("propose_instructions is a count >= 0")
    if pruning is True:
        rungs = rung_sizes(len(val_rows), DEFAULT_RUNGS)
    elif pruning is False or pruning is None:
        rungs = (len(val_rows),)
    else:
        rungs = rung_sizes(len(val_rows), list(pruning))
    if seed is None:
        seed = random.SystemRandom().randrange(2**31)
    return RunSetup(
        program=program, space=space, trainset=train_rows, valset=val_rows, metric=metric,
        objectives=resolved, weights=checked_weights, strategy=choice, budget=budget,
        max_trials=max_trials, concurrency=concurrency,
        example_concurrency=example_concurrency, rungs=rungs,
        pruning=pruning if isinstance(pruning, bool) else [float(r) for r in pruning],
        seed=int(seed), name=name,
        warm_start=warm_start, bootstrap=bootstrap,
        teacher=dict(teacher) if teacher else None,
        propose_instructions=propose_instructions,
        spec_text=spec.to_text() if spec is not None else None, dataset_name=dataset_name,
        program_id=fingerprint(program_identity(program)),
        space_id=fingerprint(space_identity(space)), tags=dict(tags or {}))
