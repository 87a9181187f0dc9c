"""``Space``: variables composed, constrained, enumerated, sampled, and turned into configs.

An *assignment* maps each active variable's name to a value (plain data);
:meth:`Space.to_config` turns it into the dict ``program.with_config`` takes.
Constraints and ``when`` conditions are read by name from an *environment*:
the assignment (demos as their count), the space's ``constants`` (settings
that are fixed, such as the spec's model when it is not a variable), and the
*derived* names: for every ``model`` variable or constant, ``provider`` is the
part of the model before ``/`` (``gen.model`` gives ``gen.provider``).

Variables that share a constraint or a condition form a *component*; the
components are independent, so size, satisfiability and grids are computed
per component (exhaustively when small, by sampling otherwise) and multiplied.
"""

from __future__ import annotations

import difflib
import itertools
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from dspex_lab.errors import ConfigurationError
from dspex_lab.variables._components import (
    Component,
    analyse,
    analysis_domain,
    enumerate_assignments,
    groups,
    provider,
    sample_one,
)
from dspex_lab.variables._constraints import Constraint
from dspex_lab.variables._variable import Demos, Variable

__all__ = ["Component", "InvalidConfigError", "Space", "derived_source"]

_INACTIVE = object()


class InvalidConfigError(ConfigurationError):
    """An assignment is not a valid configuration of a space; ``reasons`` says why."""

    kind = "invalid_config"

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = list(reasons)
        super().__init__("Invalid configuration:\n" + "\n".join(f"- {r}" for r in reasons))


def derived_source(name: str) -> str | None:
    """The model name a derived name reads (``"provider"`` -> ``"model"``), or None."""
    path, dot, last = name.rpartition(".")
    if last == "provider":
        return f"{path}{dot}model"
    return None


class Space:
    """Variables plus constraints: size, sampling, grids, validation, configs.

    ``variables`` is a list (or a name -> variable mapping); ``constraints``
    are expression strings (see :mod:`dspex_lab.variables._constraints`);
    ``constants`` are fixed settings constraints may read. Raises
    :class:`ConfigurationError` (or :class:`ConstraintError`) for duplicate
    variables, unparsable expressions, unknown names and cyclic conditions.
    """

    def __init__(self, variables: Iterable[Variable] | Mapping[str, Variable] = (),
                 constraints: Iterable[str | Constraint] = (), *,
                 constants: Mapping[str, Any] | None = None) -> None:
        items = list(variables.values()) if isinstance(variables, Mapping) else list(variables)
        self.variables: dict[str, Variable] = {}
        for var in items:
            if not isinstance(var, Variable):
                raise ConfigurationError(f"a Space holds variables, not {var!r}")
            if var.name in self.variables:
                raise ConfigurationError(f"variable {var.name!r} is declared twice")
            self.variables[var.name] = var
        self.constants: dict[str, Any] = dict(constants or {})
        self.constraints: tuple[Constraint, ...] = tuple(
            c if isinstance(c, Constraint) else Constraint(c) for c in constraints)
        self.conditions: dict[str, Constraint] = {
            v.name: Constraint(v.when) for v in self.variables.values() if v.when is not None}
        for text, expr in [(c.text, c) for c in self.constraints] + [
                (f"when of {n!r}", c) for n, c in self.conditions.items()]:
            for name in sorted(expr.names):
                if not self.knows(name):
                    raise ConfigurationError(
                        f"{text}: unknown name {name!r}."
                        f"{_did_you_mean(name, self.known_names())}")
        self.order = self._topological()
        self._components: list[Component] | None = None
        self._reads: dict[Constraint, frozenset[str]] = {}
        self._condition_readers: dict[str, list[Constraint]] | None = None

    # -- names ---------------------------------------------------------------
    def known_names(self) -> list[str]:
        """Names expressions may use: variables, constants and derived names."""
        names = [*self.variables, *self.constants]
        names += [f"{n[:-len('model')]}provider" for n in names
                  if n == "model" or n.endswith(".model")]
        return list(dict.fromkeys(names))

    def knows(self, name: str) -> bool:
        if name in self.variables or name in self.constants:
            return True
        source = derived_source(name)
        return source is not None and (source in self.variables or source in self.constants)

    def sources(self, name: str) -> list[str]:
        """The variables a name reads (a derived name reads its model variable)."""
        if name in self.variables:
            return [name]
        source = derived_source(name)
        if source is not None and source in self.variables and name not in self.constants:
            return [source]
        return []

    def _topological(self) -> list[str]:
        deps = {name: {s for n in self.conditions[name].names for s in self.sources(n)}
                if name in self.conditions else set() for name in self.variables}
        order: list[str] = []
        state: dict[str, int] = {}

        def visit(name: str, path: list[str]) -> None:
            if state.get(name) == 2:
                return
            if state.get(name) == 1:
                cycle = [*path[path.index(name):], name]
                raise ConfigurationError("conditional variables depend on each other in a "
                                         f"cycle: {' -> '.join(cycle)}")
            state[name] = 1
            for dep in sorted(deps[name], key=list(self.variables).index):
                visit(dep, [*path, name])
            state[name] = 2
            order.append(name)

        for name in self.variables:
            visit(name, [])
        return order

    @property
    def dependencies(self) -> dict[str, list[str]]:
        """For each conditional variable, the variables its ``when`` reads."""
        return {name: sorted({s for n in c.names for s in self.sources(n)})
                for name, c in self.conditions.items()}

    @property
    def couplings(self) -> list[tuple[str, list[str]]]:
        """Each constraint's text and the variables it reads."""
        return [(c.text, sorted({s for n in c.names for s in self.sources(n)}))
                for c in self.constraints]

    # -- environments ----------------------------------------------------------
    def env(self, assignment: Mapping[str, Any]) -> dict[str, Any]:
        """What expressions see for ``assignment``: constants, values, derived names."""
        env: dict[str, Any] = dict(self.constants)
        for name, value in list(self.constants.items()):
            if name == "model" or name.endswith(".model"):
                env[name[:-len("model")] + "provider"] = provider(value)
        for name, value in assignment.items():
            var = self.variables.get(name)
            env[name] = var.constraint_value(value) if var is not None else value
            if var is not None and var.key == "model":
                env[name[:-len("model")] + "provider"] = provider(value)
        return env

    def is_active(self, name: str, assignment: Mapping[str, Any]) -> bool:
        cond = self.conditions.get(name)
        return cond is None or cond.evaluate(self.env(assignment))

    # -- size ------------------------------------------------------------------
    @property
    def is_discrete(self) -> bool:
        return all(v.discrete for v in self.variables.values())

    @property
    def raw_size(self) -> int | None:
        """The product of the variables' cardinalities (conditions and constraints ignored)."""
        total = 1
        for var in self.variables.values():
            n = var.cardinality
            if n is None:
                return None
            total *= n
        return total

    @property
    def size(self) -> int | None:
        """The number of valid configurations (None when a variable is continuous).

        Exact when every component could be enumerated; see :attr:`size_exact`.
        """
        if not self.is_discrete:
            return None
        total = 1
        for comp in self.components():
            total *= comp.count or 0
        return total

    @property
    def size_exact(self) -> bool:
        return all(c.exact for c in self.components())

    # -- components --------------------------------------------------------------
    def reads(self, expression: Constraint) -> frozenset[str]:
        """The variables an expression reads (a derived name reads its model variable)."""
        found = self._reads.get(expression)
        if found is None:
            found = self._reads[expression] = frozenset(
                s for n in expression.names for s in self.sources(n))
        return found

    def condition_readers(self, name: str) -> list[Constraint]:
        """The conditions of other variables that read ``name``."""
        if self._condition_readers is None:
            found: dict[str, list[Constraint]] = {}
            for owner, c in self.conditions.items():
                for source in self.reads(c):
                    if source != owner:
                        found.setdefault(source, []).append(c)
            self._condition_readers = found
        return self._condition_readers.get(name, [])

    def components(self) -> list[Component]:
        """The independent groups of variables, analysed (cached); see
        :mod:`dspex_lab.variables._components`."""
        if self._components is None:
            self._components = [analyse(self, names, cons) for names, cons in groups(self)]
        return self._components

    def satisfiable(self, constraints: Sequence[Constraint] | None = None,
                    names: Sequence[str] | None = None) -> bool:
        """Whether some assignment of ``names`` (default: every variable) satisfies
        ``constraints`` (default: the space's), searched exhaustively (continuous variables
        at probe points)."""
        cons = list(self.constraints if constraints is None else constraints)
        order = [n for n in self.order if names is None or n in names]
        found = enumerate_assignments(self, order, cons,
                                      lambda var: analysis_domain(self, var, cons))
        return next(found, None) is not None

    def rejects_nothing(self, constraint: Constraint, limit: int = 2000) -> bool:
        """Whether ``constraint`` holds for every combination of its own variables' values
        (null included for conditional ones); False when there are more than ``limit``."""
        sources = sorted(self.reads(constraint))
        domains: list[list[Any]] = []
        total = 1
        for name in sources:
            values = [v for v, _ in analysis_domain(self, self.variables[name], [constraint])]
            if name in self.conditions:
                values.append(_INACTIVE)
            total *= len(values)
            if total > limit:
                return False
            domains.append(values)
        for combo in itertools.product(*domains):
            env = self.env({n: v for n, v in zip(sources, combo, strict=True)
                            if v is not _INACTIVE})
            for name, value in zip(sources, combo, strict=True):
                if value is _INACTIVE:
                    env[name] = None
            if not constraint.evaluate(env):
                return False
        return True

    # -- sampling --------------------------------------------------------------------
    def sample(self, rng: random.Random | int | None = None, *, max_tries: int = 1000,
               only: Iterable[str] | None = None) -> dict[str, Any]:
        """A random valid assignment: each component by rejection sampling (values drawn
        independently, then constraints checked); a component where that fails
        ``max_tries`` times falls back to a pick among its enumerated valid assignments.
        ``only``: sample just the components holding these variables."""
        if not isinstance(rng, random.Random):
            rng = random.Random(rng)
        wanted = None if only is None else set(only)
        merged: dict[str, Any] = {}
        for comp in self.components():
            if wanted is not None and not wanted.intersection(comp.names):
                continue
            if not comp.names:
                if comp.exact and comp.count == 0:
                    raise InvalidConfigError(self._unsat_reasons())
                continue
            for _ in range(max_tries):
                a = sample_one(self, comp.names, rng)
                env = self.env(a)
                if all(c.evaluate(env) for c in comp.constraints):
                    break
            else:
                if not comp.valid:
                    raise InvalidConfigError(
                        [f"no valid value of {', '.join(comp.names)} found in {max_tries} "
                         f"tries", *self._unsat_reasons()])
                a = dict(comp.valid[rng.randrange(len(comp.valid))])
            merged.update(a)
        return {n: merged[n] for n in self.variables if n in merged}

    def _unsat_reasons(self) -> list[str]:
        return [f"constraint `{c.text}` can never hold together with the others"
                for comp in self.components() if comp.exact and comp.count == 0
                for c in comp.constraints]

    # -- grids -------------------------------------------------------------------------
    def grid(self, points: int | None = None) -> Iterator[dict[str, Any]]:
        """Every valid assignment, in a deterministic order.

        Continuous variables need ``points``: that many evenly spread values
        (log-spaced for log ranges); otherwise a :class:`ConfigurationError`.
        """
        lists: list[list[dict[str, Any]]] = []
        for names, cons in groups(self):
            for name in names:
                if not self.variables[name].discrete and points is None:
                    list(self.variables[name].values(None))  # raises with the explanation
            found = enumerate_assignments(
                self, names, cons, lambda var: [(v, 1) for v in var.values(points)])
            lists.append([a for a, _ in found])
        for parts in itertools.product(*lists):
            merged: dict[str, Any] = {}
            for part in parts:
                merged.update(part)
            yield {n: merged[n] for n in self.variables if n in merged}

    # -- validation ------------------------------------------------------------------------
    def validate(self, assignment: Mapping[str, Any], *, raise_: bool = False) -> list[str]:
        """Human-readable reasons ``assignment`` is not a valid configuration ([] if valid).

        With ``raise_=True`` a non-empty list is raised as :class:`InvalidConfigError`.
        """
        reasons: list[str] = []
        if not isinstance(assignment, Mapping):
            reasons.append(f"a configuration is a dict of variable values, not "
                           f"{type(assignment).__name__}")
        else:
            for name in assignment:
                if name not in self.variables:
                    reasons.append(f"unknown variable {name!r}."
                                   f"{_did_you_mean(str(name), list(self.variables))}")
            env = self.env({k: v for k, v in assignment.items() if k in self.variables})
            for name in self.order:
                var = self.variables[name]
                cond = self.conditions.get(name)
                active = cond is None or cond.evaluate(env)
                if not active:
                    if name in assignment:
                        reasons.append(f"{name!r} is set but only used when {var.when}")
                    env[name] = None
                    continue
                if name not in assignment:
                    reasons.append(f"no value for {name!r}")
                    continue
                problem = var.problem(assignment[name])
                if problem:
                    reasons.append(f"{name}: {problem}")
            if not reasons:
                reasons += self._violations(env)
        if reasons and raise_:
            raise InvalidConfigError(reasons)
        return reasons

    def _violations(self, env: Mapping[str, Any]) -> list[str]:
        out = []
        for c in self.rejecting_env(env):
            shown = ", ".join(f"{n}={env.get(n)!r}" for n in sorted(c.names))
            out.append(f"violates the constraint `{c.text}` ({shown})")
        return out

    def rejecting_env(self, env: Mapping[str, Any]) -> list[Constraint]:
        return [c for c in self.constraints if not c.evaluate(env)]

    def rejecting(self, assignment: Mapping[str, Any]) -> list[Constraint]:
        """The constraints ``assignment`` violates."""
        env = self.env(assignment)
        for name in self.order:
            if name not in assignment:
                env.setdefault(name, None)
        return self.rejecting_env(env)

    def evaluate(self, assignment: Mapping[str, Any]) -> bool:
        """True when ``assignment`` satisfies every constraint (values not checked)."""
        return not self.rejecting(assignment)

    def is_valid(self, assignment: Mapping[str, Any]) -> bool:
        return not self.validate(assignment)

    def check(self, assignment: Mapping[str, Any]) -> None:
        """Raise :class:`InvalidConfigError` unless ``assignment`` is valid."""
        self.validate(assignment, raise_=True)

    # -- configs ------------------------------------------------------------------------------
    def complete(self, partial: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``partial`` with every missing active variable at its default (inactive ones
        dropped)."""
        partial = dict(partial or {})
        out: dict[str, Any] = {}
        env = self.env({})
        for name in self.order:
            var = self.variables[name]
            cond = self.conditions.get(name)
            if cond is not None and not cond.evaluate(env):
                env[name] = None
                continue
            value = partial[name] if name in partial else var.default_value()
            out[name] = value
            env.update(self.env({name: value}))
        return {n: out[n] for n in self.variables if n in out}

    def default(self) -> dict[str, Any]:
        """Every variable at its default (the first value when it has none)."""
        return self.complete({})

    def to_config(self, assignment: Mapping[str, Any]) -> dict[str, Any]:
        """The dict for ``program.with_config``: config-key variables only (free variables
        stay in the assignment), demos as lists of demo dicts."""
        config: dict[str, Any] = {}
        for name, value in assignment.items():
            var = self.variables.get(name)
            if var is None:
                raise ConfigurationError(f"unknown variable {name!r}."
                                         f"{_did_you_mean(name, list(self.variables))}")
            if var.key is not None:
                config[name] = var.config_value(value)
        return config

    def free_values(self, assignment: Mapping[str, Any]) -> dict[str, Any]:
        """The values of free variables (those that are no config key)."""
        return {n: v for n, v in assignment.items()
                if n in self.variables and self.variables[n].key is None}

    def with_variables(self, variables: Iterable[Variable]) -> Space:
        """A space with other variables and the same constraints and constants; the
        component analysis is kept when every variable keeps its name, kind and number of
        values (binding a demo pool of the announced size, say)."""
        space = Space(variables, self.constraints, constants=self.constants)
        old, new = list(self.variables.values()), list(space.variables.values())
        if self._components is not None and len(old) == len(new) and all(
                a.name == b.name and type(a) is type(b) and a.cardinality == b.cardinality
                and a.when == b.when for a, b in zip(old, new, strict=True)):
            space._components = self._components
        return space

    def with_demo_pool(self, pool: Sequence[Mapping[str, Any]]) -> Space:
        """A copy whose demos variables without a pool draw from ``pool`` (its first
        ``n_pool`` rows)."""
        rows = list(pool)
        return self.with_variables([v.with_pool(rows[: max(v.n_pool, v.k_high)])
                                    if isinstance(v, Demos) and v.pool is None else v
                                    for v in self.variables.values()])

    def check_program(self, program: Any) -> None:
        """Raise :class:`ConfigurationError` if a variable targets a module ``program`` lacks."""
        paths = list(program.named_modules())
        for var in self.variables.values():
            if var.target is not None and var.target not in paths:
                raise ConfigurationError(
                    f"variable {var.name!r} targets module {var.target!r}, which the program "
                    f"does not have.{_did_you_mean(var.target, paths)} Modules: "
                    f"{', '.join(paths) or '(none)'}.")

    def __repr__(self) -> str:
        size = self.size
        shown = "continuous" if size is None else f"size={size}"
        return (f"Space({len(self.variables)} variables, {len(self.constraints)} constraints, "
                f"{shown})")

    def _repr_html_(self) -> str:
        """A notebook table: size, one row per variable, the constraints and constants."""
        import html

        size = self.size
        shown = "continuous" if size is None else f"{size:,}" + ("" if self.size_exact
                                                                   else " (estimated)")
        rows = "".join(
            f"<tr><td>{html.escape(v.name)}</td><td>{html.escape(v.kind)}</td>"
            f"<td>{html.escape(_domain(v))}</td><td>{html.escape(v.when or '')}</td></tr>"
            for v in self.variables.values())
        extra = "".join(f"<li><code>{html.escape(c.text)}</code></li>"
                        for c in self.constraints)
        fixed = ", ".join(f"{k} = {v!r}" for k, v in self.constants.items())
        return (f"<div><b>Space</b>: {len(self.variables)} variables, size {shown}"
                "<table><tr><th>variable</th><th>kind</th><th>values</th><th>when</th></tr>"
                f"{rows}</table>"
                + (f"constraints:<ul>{extra}</ul>" if extra else "")
                + (f"fixed: {html.escape(fixed)}" if fixed else "") + "</div>")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Space) and other.variables == self.variables
                and other.constraints == self.constraints and other.constants == self.constants)

    __hash__ = None  # type: ignore[assignment]

    def __getstate__(self) -> dict[str, Any]:
        return {"variables": list(self.variables.values()),
                "constraints": [c.text for c in self.constraints], "constants": self.constants}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["variables"], state["constraints"],  # type: ignore[misc]
                      constants=state["constants"])


def _domain(var: Variable) -> str:
    """A short text of a variable's values, for displays."""
    body = {k: v for k, v in var.to_spec().items() if k not in ("default", "when")} \
        if isinstance(var.to_spec(), dict) else var.to_spec()
    if isinstance(body, dict) and "pool" in body and not isinstance(body["pool"], int):
        body = {**body, "pool": f"<{len(body['pool'])} demos>"}
    text = str(body)
    return text if len(text) <= 120 else text[:117] + "..."


def _did_you_mean(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""

