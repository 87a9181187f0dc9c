"""Cross-checks of a spec once its keys are read: expressions, the space, the optimization.

Names and values in constraints and conditions are checked against the
variables; the space is built and analysed component by component
(unsatisfiable constraint sets, reduced to a minimal core; dead variables and
values; redundant constraints; defaults that violate a constraint); then
objectives, weights, strategy and budget. See ``docs/spec.md`` ("Diagnostics").
"""

from __future__ import annotations

import math
from typing import Any

from yaml.nodes import Node

from dspex_lab.errors import ConfigurationError, DspexError
from dspex_lab.programs.config import MODULE_KINDS
from dspex_lab.variables._components import SAMPLES
from dspex_lab.variables._constraints import Constraint
from dspex_lab.variables._space import Space, derived_source
from dspex_lab.variables._spec import DEFAULT_OBJECTIVES, Budget, Spec
from dspex_lab.variables._spec_nodes import is_num, objective_direction, same, suggest
from dspex_lab.variables._spec_vars import VariableReader
from dspex_lab.variables._variable import (
    Categorical,
    Demos,
    Variable,
    config_key,
    key_value_problem,
)

__all__ = ["Checker"]


class Checker(VariableReader):
    """The cross-checking part of the spec parser."""

    def expressions(self) -> list[tuple[str, Node, str | None]]:
        """(text, node, variable whose condition it is or None) of every parsed expression."""
        out: list[tuple[str, Node, str | None]] = []
        for text, node in zip(self.fields.get("constraints", []), self.constraint_nodes,
                              strict=False):
            out.append((text, node, None))
        for name, node in self.when_nodes.items():
            var = self.fields.get("variables", {}).get(name)
            if var is not None and var.when is not None:
                out.append((var.when, node, name))
        return out

    def draft(self) -> Spec:
        """The spec read so far (sharing the parser's cache, so the space and analysis
        built while checking are the final spec's)."""
        return Spec(**self.fields, _cache=self.cache)

    def names_in_scope(self) -> tuple[dict[str, Variable], dict[str, Any]]:
        variables: dict[str, Variable] = self.fields.get("variables", {})
        return variables, self.draft().constants()

    def check_expressions(self) -> None:
        variables, constants = self.names_in_scope()
        known = list(variables) + list(constants)
        known += [n[:-len("model")] + "provider" for n in known
                  if n == "model" or n.endswith(".model")]
        for text, node, owner in self.expressions():
            expr = Constraint(text)
            for name_node in expr.name_nodes():
                name = name_node.name
                source = derived_source(name)
                if name in known:
                    continue
                close = suggest(name, known)
                what = "declared variable, derived name or fixed setting"
                fix = close or (f"vary it under variables, or set `{source}:`" if source
                                else "declare it under variables")
                hint = f" Did you mean {close!r}?" if close else ""
                if any(isinstance(v, Categorical) and name in v.choices
                       for v in variables.values()):
                    hint = f" To compare with the value {name!r}, quote it: \"{name}\"."
                    fix = f'"{name}"'
                self.error(self.expr_pos(node, name_node.pos), "unknown-variable",
                           f"{name!r} is no {what}.{hint}", fix)
                self.expr_errors = True
            if owner is not None and owner in expr.names:
                self.error(self.expr_pos(node, 0), "when-cycle", f"the condition of "
                           f"{owner!r} reads {owner!r} itself", "condition on other variables")
                self.expr_errors = True
            for name_node, op, lit in expr.comparisons():
                self.check_literal(node, name_node.name, op, lit, variables, constants)

    def check_literal(self, node: Node, name: str, op: str, lit: Any,
                      variables: dict[str, Variable], constants: dict[str, Any]) -> None:
        value = lit.value
        if value is None:
            return
        where = self.expr_pos(node, lit.pos)
        source = derived_source(name)
        if source is not None and name not in variables and name not in constants:
            model_var = variables.get(source)
            if isinstance(model_var, Categorical) and op in ("==", "!=", "in", "not in"):
                providers = list(dict.fromkeys(str(c).partition("/")[0]
                                               for c in model_var.choices))
                if value not in providers:
                    close = suggest(str(value), providers)
                    self.error(where, "unknown-value", f"{name} is never {value!r}: the "
                               f"models' providers are {providers}."
                               + (f" Did you mean {close!r}?" if close else ""), close)
                    self.expr_errors = True
            return
        var = variables.get(name)
        if var is None:
            key = config_key(name)
            if name in constants and op in ("==", "!=", "in", "not in"):
                problem = key_value_problem(key, value)
                if problem:
                    from dspex_lab.programs.adapters import ADAPTER_NAMES

                    pool = ADAPTER_NAMES if key == "adapter" else MODULE_KINDS \
                        if key == "module" else ()
                    close = suggest(str(value), pool) if pool else None
                    self.error(where, "unknown-value", f"{name} is never {value!r}: it "
                               f"{problem}." + (f" Did you mean {close!r}?" if close else ""),
                               close)
                    self.expr_errors = True
            return
        if isinstance(var, Categorical):
            if op in ("==", "!=", "in", "not in") and not any(same(value, c)
                                                               for c in var.choices):
                strings = [c for c in var.choices if isinstance(c, str)]
                close = suggest(str(value), strings) if isinstance(value, str) else None
                self.error(where, "unknown-value", f"{name} is never {value!r}: its choices "
                           f"are {list(var.choices)!r}."
                           + (f" Did you mean {close!r}?" if close else ""), close)
                self.expr_errors = True
            elif op in ("<", "<=", ">", ">=") and not any(
                    (is_num(value) and is_num(c)) or (isinstance(value, str)
                                                         and isinstance(c, str))
                    for c in var.choices):
                self.error(where, "type-mismatch", f"{name}'s choices never compare with "
                           f"{value!r}")
                self.expr_errors = True
        elif not is_num(value):
            unit = "its count of demos" if isinstance(var, Demos) else "a number"
            self.error(where, "type-mismatch", f"{name} is {unit}; it never equals "
                       f"{value!r}", "compare with a number")
            self.expr_errors = True

    # -- the space ----------------------------------------------------------------------------
    def check_space(self) -> Space | None:
        if self.expr_errors:
            return None
        try:
            space = self.draft().space(bind_demos=False, check=False)
        except ConfigurationError as exc:
            if "cycle" in str(exc):
                name = next(iter(self.when_nodes), None)
                self.error(self.when_nodes[name] if name else (0, 0), "when-cycle", str(exc),
                           "make one of the conditions independent of the others")
            else:  # pragma: no cover - names were checked above
                self.error((0, 0), "internal-error", str(exc))
            return None
        nodes = dict(zip(self.fields.get("constraints", []), self.constraint_nodes,
                         strict=False))
        for comp in space.components():
            if comp.exact and comp.count == 0:
                self.report_unsat(space, comp.names, comp.constraints, nodes)
                continue
            if not comp.exact and not comp.valid:
                first = comp.constraints[0] if comp.constraints else None
                self.warn(nodes.get(first.text) if first else (0, 0), "maybe-unsatisfiable",
                          f"no valid configuration of {', '.join(comp.names)} was found in "
                          f"{SAMPLES} random samples; the constraints may be unsatisfiable")
                continue
            if comp.exact and (comp.constraints or any(n in space.conditions
                                                       for n in comp.names)):
                self.report_dead(space, comp, nodes)
        if self.has_errors():
            return space
        for c in space.constraints:
            if space.rejects_nothing(c):
                self.warn(nodes.get(c.text), "redundant-constraint", "this constraint holds "
                          "for every value of its variables: it rejects nothing",
                          "remove it, or check its values")
        try:
            defaults = space.default()
        except DspexError:  # pragma: no cover - defaults were checked per variable
            return space
        for c in space.rejecting(defaults):
            shown = ", ".join(f"{n}={defaults[n]!r}" for n in sorted(
                {s for name in c.names for s in space.sources(name)}) if n in defaults)
            self.warn(nodes.get(c.text), "bad-default", f"the default configuration "
                      f"({shown}) violates this constraint",
                      "change a default so the baseline configuration is valid")
        return space

    def report_unsat(self, space: Space, names: list[str], constraints: list[Constraint],
                     nodes: dict[str, Node]) -> None:
        core = list(constraints)
        for c in list(core):
            trial = [x for x in core if x is not c]
            if not space.satisfiable(trial, names):
                core = trial
        if not core:  # pragma: no cover - with no constraint something is always valid
            return
        last = core[-1]
        if len(core) == 1:
            message = ("this constraint never holds: no value of "
                       f"{', '.join(names) or 'the fixed settings'} satisfies it")
        else:
            message = ("no configuration satisfies these constraints together: "
                       + "; ".join(f"`{c.text}`" for c in core))
        self.error(nodes.get(last.text), "unsatisfiable", message,
                   "relax or remove one of them" if len(core) > 1 else "relax or remove it")

    def report_dead(self, space: Space, comp: Any, nodes: dict[str, Node]) -> None:
        for name in comp.names:
            var = space.variables[name]
            key_node = self.var_nodes.get(name, (None, None))[0]
            if not comp.active[name]:
                self.warn(key_node, "dead-variable", f"{name!r} is never active: its condition "
                          f"`{var.when}` never holds in a valid configuration",
                          "fix the condition or remove the variable")
                continue
            seen = comp.seen[name]
            if var.discrete and (var.cardinality or 0) > 1 and comp.seen_count[name] == 1:
                self.warn(key_node, "dead-variable", f"the constraints pin {name!r} to "
                          f"{seen[0]!r}: no other value is ever valid",
                          "relax the constraints or make it a fixed setting")
                continue
            if isinstance(var, Categorical) and name not in comp.compressed:
                for i, choice in enumerate(var.choices):
                    if not any(same(choice, s) for s in seen):
                        mentions = [c.text for c in comp.constraints
                                    if {s for n in c.names for s in space.sources(n)}
                                    & {name}]
                        self.warn(self.choice_nodes.get((name, i), key_node), "dead-value",
                                  f"no valid configuration uses {name}={choice!r}"
                                  + (f" (see `{mentions[0]}`)" if mentions else ""),
                                  "remove the choice or relax the constraint")

    # -- optimization -------------------------------------------------------------------------
    def check_optimization(self, space: Space | None) -> None:
        objectives: dict[str, str] = self.fields.get("objectives", {})
        weights: dict[str, float] = self.fields.get("weights", {})
        if weights:
            targets = objectives or {n: objective_direction(n) for n in weights}
            for name in weights:
                if name not in targets:
                    close = suggest(name, list(targets))
                    self.error(self.sub_nodes[("weights", name)][0], "objective-mismatch",
                               f"weight for {name!r}, which is not an objective "
                               f"({', '.join(targets)})."
                               + (f" Did you mean {close!r}?" if close else ""),
                               close or f"add {name} to objectives")
            for name in objectives:
                if name not in weights:
                    self.error(self.sub_nodes[("objectives", name)][0], "objective-mismatch",
                               f"objective {name!r} has no weight, but other objectives do",
                               f"add {name}: <weight> to weights, or remove the weights")
            total = sum(weights.values())
            node = self.key_nodes["weights"][0]
            if total == 0:
                self.error(node, "bad-weights", "every weight is 0", "give some weight > 0")
            elif abs(total - 1.0) > 1e-6:
                self.warn(node, "bad-weights", f"the weights sum to {total:g}; they are "
                          f"normalised to sum to 1", "make them sum to 1")
        strategy = self.fields.get("strategy", "auto")
        budget: Budget = self.fields.get("budget", Budget())
        if space is not None and "strategy" in self.key_nodes:
            node = self.key_nodes["strategy"][1]
            if strategy == "grid" and not space.is_discrete:
                continuous = [n for n, v in space.variables.items() if not v.discrete]
                self.error(node, "strategy-mismatch", f"a grid needs discrete variables; "
                           f"{', '.join(continuous)} {'is' if len(continuous) == 1 else 'are'} "
                           f"continuous", "give them a step, or use strategy: tpe")
            elif strategy == "grid" and budget.trials is not None and space.size is not None \
                    and space.size > budget.trials:
                self.warn(node, "strategy-mismatch", f"the grid has {space.size} "
                          f"configurations but the budget allows {budget.trials} trials",
                          "raise budget.trials, shrink the space, or use strategy: tpe")
            elif strategy == "nsga2" and len(objectives or DEFAULT_OBJECTIVES) < 2:
                self.warn(node, "strategy-mismatch", "NSGA-II searches a Pareto front; with "
                          "one objective use tpe", "tpe")
        if space is not None and not self.has_errors() and (
                budget.dollars is not None or budget.time_limit_s is not None):
            self.check_budget(budget)

    def check_budget(self, budget: Budget) -> None:
        """``budget-too-small`` when even the cheapest configuration's trial costs more than
        the dollars (all configurations when few, else the cheapest sampled one);
        ``budget-exceeded`` when the whole run's estimate does."""
        spec = self.draft()
        try:
            analysis = spec.analyze()
        except DspexError:  # pragma: no cover - an estimate is a bonus, never a crash
            return
        est = analysis.estimate
        if est is None:
            return
        known_size = spec.dataset is not None
        if budget.dollars is not None and est.trial_dollars is not None:
            node = self.sub_nodes[("budget", "dollars")][1]
            cheapest = est.trial_dollars[0] if known_size else \
                est.trial_dollars[0] / max(1, est.dataset_size)
            examples = f"{est.dataset_size} examples" if known_size else "a single example"
            which = "configuration" if est.configs_exhaustive else \
                f"of {est.configs_estimated} sampled configurations"
            if cheapest > budget.dollars:
                self.error(node, "budget-too-small", f"one trial costs about ${cheapest:.4g} "
                           f"even with the cheapest {which} ({examples}); the budget "
                           f"is ${budget.dollars:g}",
                           f"raise dollars to at least {_round_up(cheapest)}"
                           + (", or lower dataset.size" if known_size else ""))
                return
        if known_size and analysis.exceeds_budget:
            key = "dollars" if budget.dollars is not None and est.dollars is not None \
                and est.dollars > budget.dollars else \
                "minutes" if ("budget", "minutes") in self.sub_nodes else "seconds"
            node = self.sub_nodes[("budget", key)][1]
            self.warn(node, "budget-exceeded", "; ".join(analysis.budget_problems)
                      + f" ({est.trials} trials x {est.dataset_size} examples); the run will "
                      "not start unless forced", "raise the budget or lower trials")


def _round_up(x: float) -> str:
    if x <= 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(x)))
    factor = 10 ** digits
    return f"{math.ceil(x * factor) / factor:g}"
