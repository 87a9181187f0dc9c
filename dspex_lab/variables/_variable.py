"""Variables: what may vary in a program, and the values each may take.

Three domains — :class:`Categorical` (a list of choices), :class:`Float` and
:class:`Int` (ranges, linear or log, optionally stepped) — plus
:class:`Demos` (how many few-shot demos, and which, from a pool). What a
variable *means* comes from its name: a name that is a config key
(``adapter``, ``module``, ``model``, ``temperature``, ``max_tokens``,
``instructions``, ``demos``, ``max_code_retries``), optionally prefixed by a
module path (``gen.temperature``), sets that key through
``program.with_config``; any other name is a *free* variable whose value the
optimizer chooses and the program reads from the assignment.

The LM-specific kinds are constructors that build the right domain with the
right name and check the values: :func:`adapter`, :func:`module`,
:func:`model`, :func:`temperature`, :func:`max_tokens`, :func:`instructions`,
:func:`demos`.

A variable may be *conditional* (``when="module == 'pot'"``): it is active,
and present in an assignment, only when the expression holds for the other
variables. Values in assignments are plain data (demos are a tuple of pool
indices), so assignments pickle and serialise as they are.
"""

from __future__ import annotations

import functools
import itertools
import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dspex_lab.errors import ConfigurationError
from dspex_lab.programs.config import CONFIG_KEYS, MODULE_KINDS

__all__ = [
    "LM_KINDS",
    "UNSET",
    "Categorical",
    "Demos",
    "Float",
    "Int",
    "Variable",
    "adapter",
    "config_key",
    "demos",
    "instructions",
    "max_tokens",
    "model",
    "module",
    "temperature",
]

LM_KINDS = ("adapter", "module", "model", "temperature", "max_tokens", "instructions", "demos",
            "max_code_retries")
"""Config keys with LM-specific meaning (the kind of a variable named after them)."""


class _Unset:
    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __reduce__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""The default of a variable that has none (its first value is used)."""


def config_key(name: str) -> str | None:
    """The config key a variable name sets (``"gen.temperature"`` -> ``"temperature"``),
    or None for a free variable."""
    key = name.rpartition(".")[2]
    return key if key in CONFIG_KEYS and key != "lm" else None


def _adapter_names() -> tuple[str, ...]:
    from dspex_lab.programs.adapters import ADAPTER_NAMES

    return ADAPTER_NAMES


def _is_num(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def key_value_problem(key: str | None, value: Any) -> str | None:
    """Why ``value`` is not valid for config key ``key`` (None when it is)."""
    if key is None or value is None:
        return None
    if key == "adapter" and value not in _adapter_names():
        return f"is not an adapter (choose from {', '.join(_adapter_names())})"
    if key == "module" and value not in MODULE_KINDS:
        return f"is not a module kind (choose from {', '.join(MODULE_KINDS)})"
    if key == "model" and (not isinstance(value, str) or "/" not in value):
        return "is not a model name like 'sim/small' or 'openai/gpt-4o-mini'"
    if key == "temperature" and (not _is_num(value) or not 0.0 <= value <= 2.0):
        return "is not a temperature in [0, 2]"
    if key in ("max_tokens", "max_code_retries") and (
            not isinstance(value, int) or isinstance(value, bool)
            or value < (1 if key == "max_tokens" else 0)):
        return "is not a positive integer" if key == "max_tokens" else \
            "is not a non-negative integer"
    if key == "instructions" and not isinstance(value, str):
        return "is not text"
    return None


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a variable name is non-empty text, not {name!r}")
    return name


@dataclass(frozen=True, eq=True, init=False, repr=False)
class Variable:
    """Base of every variable: a name, a default and an optional activation condition.

    Subclasses define the domain. ``kind`` is the config key the name sets
    (``"temperature"``, ...) or the domain (``"categorical"``, ``"float"``,
    ``"int"``) for a free variable.
    """

    name: str
    default: Any
    when: str | None

    domain: ClassVar[str] = "abstract"

    # -- shared ----------------------------------------------------------------
    @functools.cached_property
    def key(self) -> str | None:
        """The config key this variable sets, or None for a free variable."""
        return config_key(self.name)

    @property
    def kind(self) -> str:
        return self.key or self.domain

    @property
    def target(self) -> str | None:
        """The module path a dotted name targets (``"gen"`` for ``"gen.temperature"``)."""
        path, dot, _ = self.name.rpartition(".")
        return path if dot and self.key is not None else None

    def _init_common(self, name: str, default: Any, when: str | None) -> None:
        object.__setattr__(self, "name", _check_name(name))
        if when is not None and not isinstance(when, str):
            raise ConfigurationError(f"variable {name!r}: when= is an expression string")
        object.__setattr__(self, "when", when)
        object.__setattr__(self, "default", default)

    def _check_default(self) -> None:
        if self.default is not UNSET:
            problem = self.problem(self.default)
            if problem:
                raise ConfigurationError(f"variable {self.name!r}: the default {problem}")

    # -- domain interface (overridden) -------------------------------------------
    @property
    def discrete(self) -> bool:
        return True

    @property
    def cardinality(self) -> int | None:
        """The number of values (None when continuous or unknown)."""
        raise NotImplementedError

    def values(self, points: int | None = None) -> Iterator[Any]:
        """Every value (a discrete domain), or ``points`` evenly spread ones (continuous)."""
        raise NotImplementedError

    def sample(self, rng: random.Random) -> Any:
        raise NotImplementedError

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not a value of this variable, or None."""
        raise NotImplementedError

    def first(self) -> Any:
        """The value used when there is no default."""
        raise NotImplementedError

    def to_spec(self) -> dict[str, Any]:
        """The body of this variable in a spec's ``variables:`` mapping."""
        raise NotImplementedError

    def constraint_value(self, value: Any) -> Any:
        """The value constraints see (demos: their count)."""
        return value

    def config_value(self, value: Any) -> Any:
        """The value ``program.with_config`` receives."""
        return value

    # -- derived ----------------------------------------------------------------
    def default_value(self) -> Any:
        return self.first() if self.default is UNSET else self.default

    def _spec_common(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.default is not UNSET:
            body["default"] = list(self.default) if isinstance(self.default, tuple) \
                else self.default
        if self.when is not None:
            body["when"] = self.when
        return body

    def _repr_extra(self) -> str:
        out = ""
        if self.default is not UNSET:
            out += f", default={self.default!r}"
        if self.when is not None:
            out += f", when={self.when!r}"
        return out


@dataclass(frozen=True, eq=True, init=False, repr=False)
class Categorical(Variable):
    """One of a list of values (text, numbers, booleans or null)."""

    choices: tuple[Any, ...]

    domain: ClassVar[str] = "categorical"

    def __init__(self, name: str, choices: Sequence[Any], *, default: Any = UNSET,
                 when: str | None = None) -> None:
        self._init_common(name, default, when)
        if self.key == "demos":
            raise ConfigurationError(f"variable {name!r}: demos vary with demos() or Demos(...), "
                                     f"not choices")
        if isinstance(choices, str) or not isinstance(choices, Sequence):
            raise ConfigurationError(f"variable {name!r}: choices is a list of values")
        values = tuple(choices)
        if not values:
            raise ConfigurationError(f"variable {name!r}: choices is empty")
        for i, a in enumerate(values):
            if any(_same(a, b) for b in values[:i]):
                raise ConfigurationError(f"variable {name!r}: {a!r} is listed twice")
            problem = key_value_problem(self.key, a)
            if problem:
                raise ConfigurationError(f"variable {name!r}: {a!r} {problem}")
        object.__setattr__(self, "choices", values)
        self._check_default()

    @property
    def cardinality(self) -> int:
        return len(self.choices)

    def values(self, points: int | None = None) -> Iterator[Any]:
        return iter(self.choices)

    def sample(self, rng: random.Random) -> Any:
        return self.choices[rng.randrange(len(self.choices))]

    def problem(self, value: Any) -> str | None:
        if any(_same(value, c) for c in self.choices):
            return None
        return f"{value!r} is not one of {list(self.choices)!r}"

    def first(self) -> Any:
        return self.choices[0]

    def to_spec(self) -> dict[str, Any]:
        return self._spec_common({"choices": list(self.choices)})

    def __repr__(self) -> str:
        return f"Categorical({self.name!r}, {list(self.choices)!r}{self._repr_extra()})"


def _same(a: Any, b: Any) -> bool:
    """Equality as constraints see it: null only equals null, booleans never equal numbers."""
    if a is None or b is None:
        return a is b
    if isinstance(a, bool) != isinstance(b, bool):
        return False
    try:
        return bool(a == b)
    except Exception:  # pragma: no cover - exotic user values
        return False


@dataclass(frozen=True, eq=True, init=False, repr=False)
class _Range(Variable):
    low: float
    high: float
    log: bool
    step: float | None

    def _init_range(self, name: str, low: Any, high: Any, log: bool, step: Any) -> None:
        for label, bound in (("low", low), ("high", high)):
            if not _is_num(bound) or not math.isfinite(bound):
                raise ConfigurationError(f"variable {name!r}: {label} must be a finite number, "
                                         f"not {bound!r}")
        if low > high:
            raise ConfigurationError(f"variable {name!r}: low {low!r} > high {high!r}")
        if log and low <= 0:
            raise ConfigurationError(f"variable {name!r}: a log range needs low > 0, "
                                     f"not {low!r}")
        if step is not None and (not _is_num(step) or not math.isfinite(step) or step <= 0):
            raise ConfigurationError(f"variable {name!r}: step must be a positive number, "
                                     f"not {step!r}")
        if log and step is not None and self.domain == "float":
            raise ConfigurationError(f"variable {name!r}: step and log cannot be combined")
        if not isinstance(log, bool):
            raise ConfigurationError(f"variable {name!r}: log is true or false")
        object.__setattr__(self, "log", log)
        key = self.key
        if key in ("adapter", "module", "model", "instructions", "demos"):
            raise ConfigurationError(f"variable {name!r}: {key} takes choices, not a range")
        if key in ("max_tokens", "max_code_retries") and self.domain == "float":
            raise ConfigurationError(f"variable {name!r}: {key} is an integer; use Int")
        for bound in (low, high):
            problem = key_value_problem(key, bound)
            if problem:
                raise ConfigurationError(f"variable {name!r}: {bound!r} {problem}")

    def _repr_extra(self) -> str:
        out = ""
        if self.log:
            out += ", log=True"
        if self.step is not None and not (self.domain == "int" and self.step == 1):
            out += f", step={self.step!r}"
        return out + super()._repr_extra()

    def _spec_range(self) -> dict[str, Any]:
        body: dict[str, Any] = {"range": [self.low, self.high]}
        if self.log:
            body["log"] = True
        return body


@dataclass(frozen=True, eq=True, init=False, repr=False)
class Float(_Range):
    """A real number in ``[low, high]``: uniform, log-uniform (``log=True``), or on a
    ``step`` grid (then it is discrete)."""

    domain: ClassVar[str] = "float"

    def __init__(self, name: str, low: float, high: float, *, log: bool = False,
                 step: float | None = None, default: Any = UNSET,
                 when: str | None = None) -> None:
        self._init_common(name, default, when)
        self._init_range(name, low, high, log, step)
        object.__setattr__(self, "low", float(low))
        object.__setattr__(self, "high", float(high))
        object.__setattr__(self, "step", None if step is None else float(step))
        if self.default is not UNSET and _is_num(self.default):
            object.__setattr__(self, "default", float(self.default))
        self._check_default()

    @property
    def discrete(self) -> bool:
        return self.step is not None

    @property
    def cardinality(self) -> int | None:
        if self.step is None:
            return None
        return math.floor((self.high - self.low) / self.step + 1e-9) + 1

    def values(self, points: int | None = None) -> Iterator[Any]:
        if self.step is not None:
            n = self.cardinality or 1
            return iter([round(self.low + i * self.step, 12) for i in range(n)])
        if points is None:
            raise ConfigurationError(
                f"variable {self.name!r} is continuous: give it a step, or ask for "
                f"grid(points=N) to spread N values over its range")
        if points <= 1 or self.low == self.high:
            return iter([self.low])
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return iter([math.exp(lo + (hi - lo) * i / (points - 1)) for i in range(points)])
        return iter([self.low + (self.high - self.low) * i / (points - 1)
                     for i in range(points)])

    def sample(self, rng: random.Random) -> float:
        if self.step is not None:
            n = self.cardinality or 1
            return round(self.low + rng.randrange(n) * self.step, 12)
        if self.log:
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return rng.uniform(self.low, self.high)

    def problem(self, value: Any) -> str | None:
        if not _is_num(value):
            return f"{value!r} is not a number"
        if not self.low <= value <= self.high:
            return f"{value!r} is outside [{self.low!r}, {self.high!r}]"
        if self.step is not None:
            units = (value - self.low) / self.step
            if abs(units - round(units)) > 1e-6:
                return f"{value!r} is not on the grid {self.low!r} + k * {self.step!r}"
        return None

    def first(self) -> float:
        return self.low

    def to_spec(self) -> dict[str, Any]:
        body = self._spec_range()
        if self.step is not None:
            body["step"] = self.step
        return self._spec_common(body)

    def __repr__(self) -> str:
        return f"Float({self.name!r}, {self.low!r}, {self.high!r}{self._repr_extra()})"


@dataclass(frozen=True, eq=True, init=False, repr=False)
class Int(_Range):
    """An integer in ``[low, high]`` (inclusive), every ``step``-th, or log-uniform."""

    domain: ClassVar[str] = "int"

    def __init__(self, name: str, low: int, high: int, *, log: bool = False, step: int = 1,
                 default: Any = UNSET, when: str | None = None) -> None:
        self._init_common(name, default, when)
        for label, bound in (("low", low), ("high", high), ("step", step)):
            if not isinstance(bound, int) or isinstance(bound, bool):
                raise ConfigurationError(f"variable {name!r}: {label} must be an integer, "
                                         f"not {bound!r}")
        if log and step != 1:
            raise ConfigurationError(f"variable {name!r}: a log integer range has step 1")
        self._init_range(name, low, high, log, step)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "step", step)
        self._check_default()

    @property
    def cardinality(self) -> int:
        return (int(self.high) - int(self.low)) // int(self.step or 1) + 1

    def values(self, points: int | None = None) -> Iterator[Any]:
        return iter(range(int(self.low), int(self.high) + 1, int(self.step or 1)))

    def sample(self, rng: random.Random) -> int:
        low, high, step = int(self.low), int(self.high), int(self.step or 1)
        if self.log:
            x = math.exp(rng.uniform(math.log(low - 0.5) if low > 0.5 else math.log(low),
                                     math.log(high + 0.5)))
            return min(high, max(low, round(x)))
        return low + rng.randrange((high - low) // step + 1) * step

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{value!r} is not an integer"
        if not self.low <= value <= self.high:
            return f"{value!r} is outside [{self.low!r}, {self.high!r}]"
        if (value - int(self.low)) % int(self.step or 1):
            return f"{value!r} is not on the grid {self.low!r} + k * {self.step!r}"
        return None

    def first(self) -> int:
        return int(self.low)

    def to_spec(self) -> dict[str, Any]:
        body = self._spec_range()
        if self.key == "temperature":
            body["type"] = "int"
        if self.step not in (None, 1):
            body["step"] = self.step
        return self._spec_common(body)

    def __repr__(self) -> str:
        return f"Int({self.name!r}, {self.low!r}, {self.high!r}{self._repr_extra()})"


@dataclass(frozen=True, eq=True, init=False, repr=False)
class Demos(Variable):
    """How many few-shot demos (``k`` from ``k_low`` to ``k_high``) and which ones.

    ``select="first"`` uses the first k demos of the pool (one value per k);
    ``select="subset"`` may use any k of them. A value is a tuple of pool
    indices (plain data); ``config_value`` turns it into the list of demo
    dicts ``with_config`` expects, and constraints see its count k. The pool
    may be bound later (:meth:`with_pool`): a spec binds it from its dataset.
    ``pool_size`` asks for that many demos when the pool is bound from a
    dataset (default: ``k_high`` for ``first``, ``2 * k_high`` for ``subset``).
    """

    k_low: int
    k_high: int
    select: str
    pool: tuple[Mapping[str, Any], ...] | None
    pool_size: int | None

    domain: ClassVar[str] = "demos"

    def __init__(self, k: int | Sequence[int] = (0, 4), *,
                 pool: Sequence[Mapping[str, Any]] | None = None, select: str = "first",
                 pool_size: int | None = None, name: str = "demos", default: Any = UNSET,
                 when: str | None = None) -> None:
        self._init_common(name, default, when)
        if config_key(name) != "demos":
            raise ConfigurationError(f"a demos variable is named 'demos' or '<module>.demos', "
                                     f"not {name!r}")
        if isinstance(k, int) and not isinstance(k, bool):
            low, high = k, k
        elif (isinstance(k, Sequence) and len(k) == 2 and not isinstance(k, str)
              and all(isinstance(x, int) and not isinstance(x, bool) for x in k)):
            low, high = int(k[0]), int(k[1])
        else:
            raise ConfigurationError(f"variable {name!r}: k is a count or a [low, high] pair "
                                     f"of integers, not {k!r}")
        if low < 0 or low > high:
            raise ConfigurationError(f"variable {name!r}: k needs 0 <= low <= high, "
                                     f"got [{low}, {high}]")
        if select not in ("first", "subset"):
            raise ConfigurationError(f"variable {name!r}: select is 'first' or 'subset', "
                                     f"not {select!r}")
        rows: tuple[Mapping[str, Any], ...] | None = None
        if pool is not None:
            if isinstance(pool, str) or not isinstance(pool, Sequence) or not all(
                    isinstance(d, Mapping) for d in pool):
                raise ConfigurationError(f"variable {name!r}: pool is a list of demo dicts")
            rows = tuple(dict(d) for d in pool)
            if len(rows) < high:
                raise ConfigurationError(f"variable {name!r}: k goes up to {high} but the pool "
                                         f"has {len(rows)} demos")
        if pool_size is not None and (not isinstance(pool_size, int) or pool_size < high):
            raise ConfigurationError(f"variable {name!r}: pool_size must be an integer >= "
                                     f"{high}")
        object.__setattr__(self, "k_low", low)
        object.__setattr__(self, "k_high", high)
        object.__setattr__(self, "select", select)
        object.__setattr__(self, "pool", rows)
        object.__setattr__(self, "pool_size", pool_size)
        if isinstance(default, list):
            object.__setattr__(self, "default", tuple(default))
        elif isinstance(default, int) and not isinstance(default, bool):
            object.__setattr__(self, "default", tuple(range(default)))
        self._check_default()

    def with_pool(self, pool: Sequence[Mapping[str, Any]]) -> Demos:
        """A copy drawing from ``pool`` (a list of demo dicts)."""
        return Demos((self.k_low, self.k_high), pool=pool, select=self.select,
                     pool_size=self.pool_size, name=self.name, default=self.default,
                     when=self.when)

    @property
    def n_pool(self) -> int:
        """The pool's size (bound, or what binding will draw)."""
        if self.pool is not None:
            return len(self.pool)
        if self.pool_size is not None:
            return self.pool_size
        return self.k_high if self.select == "first" else 2 * self.k_high

    @property
    def cardinality(self) -> int | None:
        if self.select == "first":
            return self.k_high - self.k_low + 1
        n = self.n_pool
        return None if n is None else sum(math.comb(n, k)
                                          for k in range(self.k_low, self.k_high + 1))

    def values(self, points: int | None = None) -> Iterator[Any]:
        if self.select == "first":
            return (tuple(range(k)) for k in range(self.k_low, self.k_high + 1))
        n = self.n_pool or self.k_high
        return (combo for k in range(self.k_low, self.k_high + 1)
                for combo in itertools.combinations(range(n), k))

    def sample(self, rng: random.Random) -> tuple[int, ...]:
        k = rng.randint(self.k_low, self.k_high)
        if self.select == "first":
            return tuple(range(k))
        n = self.n_pool or self.k_high
        return tuple(sorted(rng.sample(range(n), k)))

    def problem(self, value: Any) -> str | None:
        if not isinstance(value, tuple | list) or not all(
                isinstance(i, int) and not isinstance(i, bool) for i in value):
            return f"{value!r} is not a list of pool indices"
        k = len(value)
        if not self.k_low <= k <= self.k_high:
            return f"{k} demos is outside [{self.k_low}, {self.k_high}]"
        if self.select == "first" and tuple(value) != tuple(range(k)):
            return f"{list(value)!r} is not the first {k} demos (select is 'first')"
        n = self.n_pool
        if len(set(value)) != k or (n is not None and any(i < 0 or i >= n for i in value)):
            return f"{list(value)!r} has repeated indices or indices outside the pool"
        return None

    def first(self) -> tuple[int, ...]:
        return tuple(range(self.k_low))

    def constraint_value(self, value: Any) -> Any:
        return len(value) if isinstance(value, tuple | list) else value

    def config_value(self, value: Any) -> list[dict[str, Any]]:
        if self.pool is None and value:
            raise ConfigurationError(
                f"variable {self.name!r} has no demo pool yet: bind one with "
                f"space.with_demo_pool(rows) or give the spec a dataset")
        return [dict(self.pool[i]) for i in value] if self.pool is not None else []

    def to_spec(self) -> dict[str, Any]:
        body: dict[str, Any] = {"k": [self.k_low, self.k_high]}
        if self.select != "first":
            body["select"] = self.select
        if self.pool_size is not None:
            body["pool"] = self.pool_size
        elif self.pool is not None:
            body["pool"] = [dict(d) for d in self.pool]
        return self._spec_common(body)

    def __repr__(self) -> str:
        pool = "" if self.pool is None else f", pool=<{len(self.pool)} demos>"
        select = "" if self.select == "first" else f", select={self.select!r}"
        return f"Demos(({self.k_low}, {self.k_high}){pool}{select}{self._repr_extra()})"


# --------------------------------------------------------------------------- LM kinds


def adapter(choices: Sequence[str] | None = None, *, name: str = "adapter",
            default: Any = UNSET, when: str | None = None) -> Categorical:
    """The prompt adapter: a choice among ``chat``, ``json``, ``markdown`` (default all)."""
    return Categorical(_named(name, "adapter"), list(choices or _adapter_names()),
                       default=default, when=when)


def module(choices: Sequence[str] | None = None, *, name: str = "module", default: Any = UNSET,
           when: str | None = None) -> Categorical:
    """The reasoning module: ``predict``, ``cot``, ``pot`` (default all)."""
    return Categorical(_named(name, "module"), list(choices or MODULE_KINDS), default=default,
                       when=when)


def model(choices: Sequence[str], *, name: str = "model", default: Any = UNSET,
          when: str | None = None) -> Categorical:
    """The model, as ``provider/name`` strings; constraints also see ``provider``."""
    return Categorical(_named(name, "model"), list(choices), default=default, when=when)


def temperature(low: float = 0.0, high: float = 1.0, *, choices: Sequence[float] | None = None,
                step: float | None = None, name: str = "temperature", default: Any = UNSET,
                when: str | None = None) -> Float | Categorical:
    """Sampling temperature: a range within [0, 2], or explicit ``choices``."""
    if choices is not None:
        return Categorical(_named(name, "temperature"), list(choices), default=default,
                           when=when)
    return Float(_named(name, "temperature"), low, high, step=step, default=default, when=when)


def max_tokens(low: int = 64, high: int = 1024, *, choices: Sequence[int] | None = None,
               log: bool = False, name: str = "max_tokens", default: Any = UNSET,
               when: str | None = None) -> Int | Categorical:
    """The completion length cap: an integer range (``log=True`` for wide ones) or choices."""
    if choices is not None:
        return Categorical(_named(name, "max_tokens"), list(choices), default=default,
                           when=when)
    return Int(_named(name, "max_tokens"), low, high, log=log, default=default, when=when)


def instructions(candidates: Sequence[str], *, name: str = "instructions",
                 default: Any = UNSET, when: str | None = None) -> Categorical:
    """A set of candidate instruction texts."""
    return Categorical(_named(name, "instructions"), list(candidates), default=default,
                       when=when)


def demos(k: int | Sequence[int] = (0, 4), *, pool: Sequence[Mapping[str, Any]] | None = None,
          select: str = "first", pool_size: int | None = None, name: str = "demos",
          default: Any = UNSET, when: str | None = None) -> Demos:
    """Few-shot demos: ``k`` (a count or ``(low, high)``) drawn from ``pool``."""
    return Demos(k, pool=pool, select=select, pool_size=pool_size, name=name, default=default,
                 when=when)


def _named(name: str, key: str) -> str:
    if config_key(name) != key:
        raise ConfigurationError(f"a {key} variable is named {key!r} or '<module>.{key}', "
                                 f"not {name!r}")
    return name
