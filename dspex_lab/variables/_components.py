"""Components of a space: grouping, exact enumeration with compressed domains, sampling.

Variables that share a constraint or a condition form a component; different
components are independent, so counts multiply and satisfiability is per
component. Within a component the search enumerates assignments depth-first,
checking each constraint as soon as its variables are decided.

Domains are *compressed* where that is exact, so spaces with wide ranges stay
cheap to analyse:

- a variable no expression reads (it only has its own ``when``) takes one
  representative value weighing its whole cardinality;
- a wide integer (or stepped float) range compared only with literal numbers
  is cut into the intervals those numbers delimit, one representative each,
  weighing the number of values inside;
- demos are read by constraints as their count k, so one representative per k
  weighs the number of demo sets of that size;
- a continuous range takes *probe points*: its bounds, its middle and every
  number it is compared with, plus a hair either side. That decides
  satisfiability of comparisons with literals exactly; counts are then None.

A component whose compressed product exceeds :data:`ENUMERATION_LIMIT` is
sampled instead (and ``exact`` is False).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dspex_lab.variables._constraints import Constraint
from dspex_lab.variables._variable import Demos, Float, Int, Variable

if TYPE_CHECKING:
    from dspex_lab.variables._space import Space

__all__ = ["ENUMERATION_LIMIT", "KEEP", "SAMPLES", "Component", "Domain", "analyse",
           "analysis_domain", "enumerate_assignments", "groups", "probe_values", "provider",
           "sample_one"]

ENUMERATION_LIMIT = 20_000
"""Largest compressed component product enumerated exhaustively; larger ones are sampled."""
SAMPLES = 2_000
"""Random assignments drawn to analyse a component too large to enumerate."""
KEEP = 5_000
"""Valid assignments an exhaustive analysis keeps (the fallback pool of ``Space.sample``)."""
_COMPRESS_FROM = 16

Domain = list[tuple[Any, int]]
"""(value, weight): the values an enumeration tries, each standing for ``weight`` values."""


def provider(value: Any) -> Any:
    """The derived ``provider`` of a model value (the part before ``/``)."""
    return value.partition("/")[0] if isinstance(value, str) else None


@dataclass
class Component:
    """Variables linked by constraints or conditions, and what analysing them found.

    ``exact``: enumerated exhaustively (else sampled). ``count``: the number of
    valid assignments (None with continuous variables; an estimate when not
    exact; 0 when there is none). ``valid``: the valid assignments found, at most
    :data:`KEEP` (representative values for compressed domains). ``seen``: the values
    each variable takes in valid assignments;
    ``seen_count``: how many domain values those stand for; ``active``:
    whether each variable is ever active; ``compressed``: variables whose
    domain was compressed (their ``seen`` lists representatives only).
    """

    names: list[str]
    constraints: list[Constraint]
    exact: bool = True
    count: int | None = 0
    product: float = 1.0
    valid: list[dict[str, Any]] = field(default_factory=list)
    seen: dict[str, list[Any]] = field(default_factory=dict)
    seen_count: dict[str, int] = field(default_factory=dict)
    active: dict[str, bool] = field(default_factory=dict)
    compressed: set[str] = field(default_factory=set)


def _key(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return ("repr", repr(value))
    return (isinstance(value, bool), value)


def groups(space: Space) -> list[tuple[list[str], list[Constraint]]]:
    """The components' variable names (in the space's order) and constraints; constraints
    over constants only form a component without variables."""
    parent = {name: name for name in space.variables}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def link(names: Iterable[str]) -> None:
        names = list(names)
        for other in names[1:]:
            parent[find(other)] = find(names[0])

    for c in space.constraints:
        link(space.reads(c))
    for name, c in space.conditions.items():
        link({name, *space.reads(c)})
    found: dict[str, list[str]] = {}
    for name in space.order:
        found.setdefault(find(name), []).append(name)
    by_root: dict[str, list[Constraint]] = {}
    constant_only: list[Constraint] = []
    for c in space.constraints:
        reads = space.reads(c)
        if reads:
            by_root.setdefault(find(next(iter(reads))), []).append(c)
        else:
            constant_only.append(c)
    out = [(names, by_root.get(root, [])) for root, names in found.items()]
    if constant_only:
        out.append(([], constant_only))
    return out


def probe_values(var: Variable, expressions: Sequence[Constraint]) -> list[Any]:
    """Values of a continuous variable that decide every comparison with a literal."""
    low, high = float(getattr(var, "low", 0.0)), float(getattr(var, "high", 0.0))
    points = {low, high, (low + high) / 2}
    eps = max((high - low) * 1e-6, 1e-12)
    for c in expressions:
        for value in c.literals_for(var.name):
            if isinstance(value, int | float) and not isinstance(value, bool):
                for p in (value - eps, value, value + eps):
                    if low <= p <= high:
                        points.add(float(p))
    return sorted(points)


def _continuous_points(var: Variable, reading: Sequence[Constraint]) -> list[float]:
    """One point per region the compared numbers cut a continuous range into (each number
    itself, and the middle of each open interval); probe points when the variable is
    compared with another variable."""
    low, high = float(getattr(var, "low", 0.0)), float(getattr(var, "high", 0.0))
    cuts: set[float] = set()
    for c in reading:
        found = c.breakpoints(var.name)
        if found is None:
            return probe_values(var, reading)
        cuts.update(x for x in found if low <= x <= high)
    edges = sorted({low, high, *cuts})
    points = set(cuts)
    points.update((a + b) / 2 for a, b in itertools.pairwise(edges))
    return sorted(points or {low})


def _intervals(var: Int | Float, cuts: Sequence[float]) -> Domain:
    """One representative per interval of an arithmetic range cut at ``cuts``."""
    low, step = float(var.low), float(var.step or 1)
    n = var.cardinality or 1

    def position(b: float) -> tuple[int, int]:
        """(values strictly below b, 1 if b is a value else 0)."""
        units = (b - low) / step
        nearest = round(units)
        on_grid = abs(units - nearest) < 1e-9
        below = nearest if on_grid else math.ceil(units)
        below = min(max(below, 0), n)
        return below, int(on_grid and 0 <= nearest < n)

    bounds = [0]
    for b in cuts:
        below, equal = position(b)
        bounds += [below, below + equal]
    bounds.append(n)
    out: Domain = []
    start = 0
    for end in sorted(set(bounds))[1:]:
        if end > start:
            value: Any = int(var.low) + start * int(var.step or 1) if isinstance(var, Int) \
                else round(low + start * step, 12)
            out.append((value, end - start))
        start = end
    return out


def analysis_domain(space: Space, var: Variable, expressions: Sequence[Constraint]) -> Domain:
    """The compressed domain of ``var`` given the expressions that may read it."""
    reading = [c for c in expressions if var.name in space.reads(c)]
    reading += [c for c in space.condition_readers(var.name) if c not in reading]
    if not reading:
        return [(var.default_value(), var.cardinality or 1)]
    if not var.discrete:
        return [(v, 1) for v in _continuous_points(var, reading)]
    n = var.cardinality or 1
    if isinstance(var, Demos):
        if var.select == "first":
            return [(v, 1) for v in var.values()]
        pool = var.n_pool
        return [(tuple(range(k)), math.comb(pool, k)) for k in range(var.k_low, var.k_high + 1)]
    if n > _COMPRESS_FROM and isinstance(var, Int | Float):
        cuts: set[float] = set()
        for c in reading:
            found = c.breakpoints(var.name)
            if found is None:
                return [(v, 1) for v in var.values()]
            cuts.update(found)
        return _intervals(var, sorted(cuts))
    return [(v, 1) for v in var.values()]


def enumerate_assignments(space: Space, names: Sequence[str], constraints: Sequence[Constraint],
                          domain: Callable[[Variable], Domain]
                          ) -> Iterator[tuple[dict[str, Any], int]]:
    """Every valid (assignment, weight) of ``names`` (in an order where conditions come after
    what they read), checking each constraint as soon as its variables are decided."""
    vars_ = [space.variables[n] for n in names]
    domains = [domain(v) for v in vars_]
    position = {n: i for i, n in enumerate(names)}
    checks: list[list[Constraint]] = [[] for _ in names]
    base_env = space.env({})
    for c in constraints:
        idx = [position[s] for s in space.reads(c) if s in position]
        if idx:
            checks[max(idx)].append(c)
        elif not c.evaluate(base_env):
            return
    fns = [[c.fn for c in cs] for cs in checks]
    conds = [space.conditions.get(n) for n in names]
    derived = [n[:-len("model")] + "provider" if v.key == "model" else None
               for n, v in zip(names, vars_, strict=True)]
    assignment: dict[str, Any] = {}
    env = dict(base_env)

    def rec(i: int, weight: int) -> Iterator[tuple[dict[str, Any], int]]:
        if i == len(vars_):
            yield dict(assignment), weight
            return
        var, name, slot, tests = vars_[i], names[i], derived[i], fns[i]
        cond = conds[i]
        if cond is not None and not cond.fn(env):
            env[name] = None
            if slot:
                env[slot] = None
            if all(f(env) for f in tests):
                yield from rec(i + 1, weight)
            return
        demos = isinstance(var, Demos)
        for value, w in domains[i]:
            env[name] = len(value) if demos else value
            if slot:
                env[slot] = provider(value)
            for f in tests:
                if not f(env):
                    break
            else:
                assignment[name] = value
                yield from rec(i + 1, weight * w)
        assignment.pop(name, None)
        env.pop(name, None)

    yield from rec(0, 1)


def sample_one(space: Space, names: Sequence[str], rng: random.Random) -> dict[str, Any]:
    """Values for ``names`` drawn independently (inactive conditional variables left out)."""
    assignment: dict[str, Any] = {}
    env = space.env({})
    for name in names:
        var = space.variables[name]
        cond = space.conditions.get(name)
        if cond is not None and not cond.evaluate(env):
            env[name] = None
            continue
        value = var.sample(rng)
        assignment[name] = value
        env[name] = var.constraint_value(value)
        if var.key == "model":
            env[name[:-len("model")] + "provider"] = provider(value)
    return assignment


def _search(space: Space, names: Sequence[str], constraints: Sequence[Constraint],
            domains: Sequence[Domain], keep: int
            ) -> tuple[int, list[set[int]], list[bool], list[dict[str, Any]]]:
    """Exhaustive search without materialising every assignment: the weighted number of
    valid assignments, for each variable the indices of its domain values some valid
    assignment uses and whether it is ever active, and up to ``keep`` valid assignments.

    Subtrees are memoised on the values they depend on, so a star of constraints around
    one variable costs a sum, not a product."""
    vars_ = [space.variables[n] for n in names]
    position = {n: i for i, n in enumerate(names)}
    tests: list[list[Callable[[Any], Any]]] = [[] for _ in names]
    base_env = space.env({})
    for c in constraints:
        idx = [position[s] for s in space.reads(c) if s in position]
        if idx:
            tests[max(idx)].append(c.fn)
        elif not c.evaluate(base_env):
            return 0, [set() for _ in names], [False] * len(names), []
    conds = [space.conditions.get(n) for n in names]
    slots = [n[:-len("model")] + "provider" if v.key == "model" else None
             for n, v in zip(names, vars_, strict=True)]
    demos = [isinstance(v, Demos) for v in vars_]
    seen: list[set[int]] = [set() for _ in names]
    active = [False] * len(names)
    valid: list[dict[str, Any]] = []
    assignment: dict[str, Any] = {}
    env = dict(base_env)
    n_vars = len(names)
    # What the rest of the search depends on: the names, set above depth i, that the
    # expressions checked at depth >= i read. Equal values there mean equal subtrees.
    set_at = {n: i for i, n in enumerate(names)}
    set_at.update({s: i for i, s in enumerate(slots) if s})
    checked_at: dict[int, list[Constraint]] = {}
    for c in constraints:
        last = max((set_at.get(x, -1) for x in space.reads(c)), default=-1)
        checked_at.setdefault(last, []).append(c)
    read_below: set[str] = set()
    frontier: list[tuple[str, ...]] = [()] * (n_vars + 1)
    for i in range(n_vars - 1, -1, -1):
        cond = conds[i]
        if cond is not None:
            read_below.update(cond.names)
        for c in checked_at.get(i, ()):
            read_below.update(c.names)
        frontier[i] = tuple(sorted(n for n in read_below if set_at.get(n, n_vars) < i))
    memo: dict[tuple[Any, ...], int] = {}

    def rec(i: int) -> int:
        if i == n_vars:
            if len(valid) < keep:
                valid.append(dict(assignment))
            return 1
        key = (i, *[(v.__class__, v) for v in [env.get(n) for n in frontier[i]]])
        try:
            found = memo.get(key)
        except TypeError:  # an unhashable value: no memo for this subtree
            return explore(i)
        if found is None:
            found = memo[key] = explore(i)
        return found

    def explore(i: int) -> int:
        name, slot, checks = names[i], slots[i], tests[i]
        cond = conds[i]
        if cond is not None and not cond.fn(env):
            env[name] = None
            if slot:
                env[slot] = None
            return rec(i + 1) if all(f(env) for f in checks) else 0
        total = 0
        is_demos = demos[i]
        for idx, (value, weight) in enumerate(domains[i]):
            env[name] = len(value) if is_demos else value
            if slot:
                env[slot] = provider(value)
            for f in checks:
                if not f(env):
                    break
            else:
                assignment[name] = value
                below = rec(i + 1)
                if below:
                    seen[i].add(idx)
                    total += weight * below
        assignment.pop(name, None)
        env.pop(name, None)
        if total:
            active[i] = True
        return total

    return rec(0), seen, active, valid


def analyse(space: Space, names: list[str], constraints: list[Constraint]) -> Component:
    """Enumerate (or sample) one component; see :class:`Component`."""
    comp = Component(names, constraints)
    vars_ = [space.variables[n] for n in names]
    comp.active = {n: False for n in names}
    comp.seen = {n: [] for n in names}
    if not constraints and not any(n in space.conditions for n in names):
        count: int | None = 1
        for var in vars_:
            card = var.cardinality
            count = None if count is None or card is None else count * card
        comp.count = count
        comp.active = {n: True for n in names}
        comp.seen_count = {n: vars_[i].cardinality or 0 for i, n in enumerate(names)}
        comp.compressed = set(names)
        return comp
    domains = [analysis_domain(space, var, constraints) for var in vars_]
    comp.compressed = {n for n, d in zip(names, domains, strict=True)
                       if sum(w for _, w in d) != len(d) or len(d) != (
                           space.variables[n].cardinality or len(d))}
    product = 1.0
    for d in domains:
        product *= len(d)
    comp.product = product
    discrete = all(v.discrete for v in vars_)
    if product <= ENUMERATION_LIMIT:
        total, seen, active, comp.valid = _search(space, names, constraints, domains, KEEP)
        comp.count = total if discrete or not total else None
        comp.active = dict(zip(names, active, strict=True))
        comp.seen = {n: [domains[i][j][0] for j in sorted(seen[i])]
                     for i, n in enumerate(names)}
        comp.seen_count = {n: sum(domains[i][j][1] for j in seen[i])
                           for i, n in enumerate(names)}
        return comp
    rng = random.Random(0)
    comp.exact = False
    for _ in range(SAMPLES):
        a = sample_one(space, names, rng)
        env = space.env(a)
        if all(c.evaluate(env) for c in constraints):
            comp.valid.append(a)
    size = 1
    for var in vars_:
        size *= var.cardinality or 0
    comp.count = (round(size * len(comp.valid) / SAMPLES) or (1 if comp.valid else 0)) \
        if discrete else (None if comp.valid else 0)
    found: dict[str, dict[Any, Any]] = {n: {} for n in names}
    for a in comp.valid:
        for name, value in a.items():
            comp.active[name] = True
            found[name].setdefault(_key(value), value)
    comp.seen = {n: list(f.values()) for n, f in found.items()}
    comp.seen_count = {n: len(f) for n, f in found.items()}
    return comp
