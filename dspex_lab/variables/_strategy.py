"""Which optimizer strategy a run uses, and why.

``strategy: auto`` applies these rules in order; the first that matches wins
(the plan's ``prefer_strategy :grid_search when discrete_space_size() < 50``
and ``prefer_strategy :bayesian_optimization when variable_count() > 5``,
completed for the cases the plan leaves open):

1. ``grid`` — the valid space is discrete, has fewer than :data:`GRID_MAX`
   configurations, and the trial budget covers all of them: trying every
   configuration is exact and no sampler can do better.
2. ``random`` — fewer than :data:`STARTUP_TRIALS` trials: model-based samplers
   spend their first trials sampling at random anyway (Optuna's TPE starts
   with 10), so a model would never be used.
3. ``tpe`` — more than :data:`MANY_VARIABLES` variables (the plan's rule), or
   conditional variables (TPE handles tree-structured spaces; GP and NSGA-II
   do not).
4. ``nsga2`` — two or more objectives without weights (a Pareto front is
   wanted, not a scalar) and at least :data:`NSGA2_MIN_TRIALS` trials (five
   generations of a population of 20). NSGA-II's asks are also ~10x cheaper
   than multivariate TPE's on these machines.
5. ``gp`` — at most :data:`MANY_VARIABLES` variables, all numeric, and at most
   :data:`GP_MAX_TRIALS` trials: a Gaussian process models a small smooth
   surface best, and its cubic cost stays small.
6. ``tpe`` otherwise.

An explicit strategy is always used as given; the reason then notes any
mismatch (a grid larger than the trial budget, NSGA-II with one objective).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["GP_MAX_TRIALS", "GRID_MAX", "MANY_VARIABLES", "NSGA2_MIN_TRIALS", "STARTUP_TRIALS",
           "STRATEGIES", "StrategyChoice", "choose_strategy"]

STRATEGIES = ("auto", "grid", "random", "tpe", "nsga2", "gp", "surrogate")
GRID_MAX = 50
STARTUP_TRIALS = 10
MANY_VARIABLES = 5
NSGA2_MIN_TRIALS = 100
GP_MAX_TRIALS = 200


@dataclass(frozen=True, slots=True)
class StrategyChoice:
    """The strategy, what was asked for, the rule that decided (``"requested"`` when
    explicit) and the reason in words."""

    name: str
    requested: str
    rule: str
    reason: str


def choose_strategy(*, requested: str = "auto", n_variables: int, discrete: bool,
                    size: int | None, trials: int, n_objectives: int, weighted: bool,
                    conditional: bool, n_numeric: int) -> StrategyChoice:
    """Apply the rules in the module docstring."""
    if requested != "auto":
        notes: list[str] = []
        if requested == "grid" and not discrete:
            notes.append("the space has continuous variables: the grid uses a few evenly "
                         "spread values of each")
        if requested == "grid" and size is not None and size > trials:
            notes.append(f"the grid has {size} configurations but the budget allows {trials} "
                         f"trials: it will not finish")
        if requested == "nsga2" and (n_objectives < 2 or weighted):
            notes.append("NSGA-II searches a Pareto front; with one objective or weights "
                         "a scalar sampler (tpe) is usually better")
        if requested == "gp" and n_numeric < n_variables:
            notes.append("a Gaussian process encodes categorical variables one-hot and "
                         "models them poorly")
        reason = "requested in the spec" + (f" ({'; '.join(notes)})" if notes else "")
        return StrategyChoice(requested, requested, "requested", reason)
    if discrete and size is not None and size < GRID_MAX and size <= trials:
        return StrategyChoice("grid", requested, "small-discrete",
                              f"the valid space has {size} configurations (< {GRID_MAX}) and "
                              f"the budget allows {trials} trials: trying every configuration "
                              f"is exact")
    if trials < STARTUP_TRIALS:
        return StrategyChoice("random", requested, "few-trials",
                              f"only {trials} trials (< {STARTUP_TRIALS}): a model-based "
                              f"sampler would still be in its random start-up phase")
    if n_variables > MANY_VARIABLES or conditional:
        why = (f"{n_variables} variables (> {MANY_VARIABLES})" if n_variables > MANY_VARIABLES
               else "conditional variables (a tree-structured space)")
        return StrategyChoice("tpe", requested, "many-variables",
                              f"{why}: Bayesian optimization with TPE")
    if n_objectives >= 2 and not weighted and trials >= NSGA2_MIN_TRIALS:
        return StrategyChoice("nsga2", requested, "pareto",
                              f"{n_objectives} objectives without weights (a Pareto front) "
                              f"and {trials} trials (>= {NSGA2_MIN_TRIALS}): NSGA-II")
    if n_variables and n_numeric == n_variables and trials <= GP_MAX_TRIALS:
        return StrategyChoice("gp", requested, "few-numeric",
                              f"{n_variables} numeric variables and {trials} trials: a "
                              f"Gaussian process")
    return StrategyChoice("tpe", requested, "default",
                          f"{n_variables} variables, {trials} trials: Bayesian optimization "
                          f"with TPE (the default)")
