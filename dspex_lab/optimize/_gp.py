"""A Gaussian-process sampler for Optuna that needs nothing but numpy.

Why it exists: Optuna's own ``GPSampler`` depends on PyTorch, a multi-gigabyte
install we will not impose for one strategy. Our spaces are small (a handful
of categorical and numeric knobs, tens to a few hundred trials, every trial a
batch of LM calls), so a deliberately plain GP is enough:

- **Encoding.** Every numeric parameter maps to one column in [0, 1] (log
  space for ``log=True``; stepped and integer ones get half a step of padding
  so each value owns an equal cell). A categorical parameter is one-hot,
  scaled so that changing the choice counts like crossing a numeric range.
- **Model.** A zero-mean GP on standardized targets with a Matern-5/2 kernel:
  one shared length scale and a noise ratio picked by the largest log marginal
  likelihood over a small fixed grid, the amplitude in closed form. A grid has
  no optimizer to diverge and costs a few dozen Cholesky factorizations.
- **Acquisition.** Log expected improvement, maximized over random candidates,
  local moves around the best observed points and a second, finer round of
  local moves around the best candidates. A finite space no larger than
  ``n_candidates`` is enumerated instead, so nothing is left to chance.
- **Duplicates.** Each proposal costs LM calls, so the sampler never proposes
  the parameters of a completed, running or infeasible trial while an untried
  configuration exists. Running trials (and enqueued ones) also enter the fit
  as a "constant liar" (observed at the mean), which spreads concurrent
  proposals apart.
- **Several objectives.** ParEGO: objectives are normalized to [0, 1] and
  scalarized by an augmented Chebyshev function with a fresh random weight
  vector per proposal, then treated as one objective.
- **Constraints** (``trial.set_constraint``): infeasible trials are left out
  of the fit; their parameters are not proposed again, even once the space
  is exhausted, unless nothing else is left.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

from dspex_lab.errors import ConfigurationError

__all__ = ["GPSampler"]

Array = npt.NDArray[np.float64]
Key = tuple[float, ...]

_ATTR_PREFIX = "dspex_gp:"
_LOCAL_SCALES = (0.02, 0.08, 0.25)
"""Standard deviations (in the unit cube) of local moves around the best points."""
_REFINE_SCALES = (0.005, 0.02)
_TOP_POINTS = 5
_MAX_FIT_POINTS = 300
"""Beyond this many observations the fit keeps the best half and a random rest (speed)."""
_HYPER_POINTS = 100
"""Observations used to choose the hyperparameters (the grid costs dozens of fits)."""
_ENUMERATION_LIMIT = 8192
"""Finite spaces up to this size are enumerated once random candidates are all tried."""
_LENGTH_SCALES = np.geomspace(0.05, 5.0, 11)
"""Length scales tried, per unit of sqrt(dimension): distances grow like sqrt(d)."""
_NOISE_RATIOS = (1e-6, 1e-4, 1e-2, 0.1, 0.3)
"""Noise variance over signal variance; LM metrics on small dev sets are noisy."""
_PAREGO_RHO = 0.05


# -- Encoding --------------------------------------------------------------------------


class _Numeric:
    """One float or int parameter as one unit column (log-warped when ``log``).

    Stepped parameters (all ints, floats with ``step``) round to their grid
    and get half a step of padding at both ends, so a uniform draw in [0, 1]
    is a uniform draw over the grid.
    """

    width = 1

    def __init__(self, dist: FloatDistribution | IntDistribution) -> None:
        self.low, self.high, self.log = float(dist.low), float(dist.high), dist.log
        self.step = None if dist.step is None else float(dist.step)
        pad = 0.0 if self.step is None else self.step / 2
        self._a = self._warp(self.low - pad)
        self._b = self._warp(self.high + pad)
        self.size = (math.inf if self.step is None
                     else float(round((self.high - self.low) / self.step) + 1))

    def _warp(self, x: float | Array) -> Any:
        return np.log(x) if self.log else x

    def encode(self, values: Array) -> Array:
        span = self._b - self._a
        unit: Array = (self._warp(values) - self._a) / span
        return unit.reshape(-1, 1)

    def values(self, block: Array) -> Array:
        z = self._a + np.clip(block[:, 0], 0.0, 1.0) * (self._b - self._a)
        x = np.exp(z) if self.log else z
        if self.step is not None:
            k = np.clip(np.round((x - self.low) / self.step), 0, self.size - 1)
            x = self.low + k * self.step
        return np.asarray(np.clip(x, self.low, self.high), dtype=np.float64)

    def identity(self, values: Array) -> Array:
        """Grid indices for stepped values (immune to last-bit differences), else values."""
        if self.step is None:
            return values
        return np.round((values - self.low) / self.step)

    def grid(self) -> Array:
        assert self.step is not None
        return np.minimum(self.low + np.arange(self.size) * self.step, self.high)

    def sample(self, n: int, rng: np.random.Generator) -> Array:
        return rng.random((n, 1))

    def perturb(self, block: Array, scale: Array, rng: np.random.Generator) -> Array:
        moved = block + rng.standard_normal(block.shape) * scale[:, None]
        return np.asarray(np.clip(moved, 0.0, 1.0), dtype=np.float64)


class _Choice:
    """One categorical parameter as a one-hot block; internal values are choice indices.

    The one-hot is scaled by 1/sqrt(2) so two different choices are at distance
    1, like the two ends of a numeric range.
    """

    _HOT = 1.0 / math.sqrt(2.0)

    def __init__(self, dist: CategoricalDistribution) -> None:
        self.width = len(dist.choices)
        self.size = float(self.width)

    def encode(self, values: Array) -> Array:
        block = np.zeros((len(values), self.width))
        block[np.arange(len(values)), values.astype(np.int64)] = self._HOT
        return block

    def values(self, block: Array) -> Array:
        index: Array = np.argmax(block, axis=1).astype(np.float64)
        return index

    def identity(self, values: Array) -> Array:
        return values

    def grid(self) -> Array:
        return np.arange(self.size)

    def sample(self, n: int, rng: np.random.Generator) -> Array:
        return self.encode(rng.integers(self.width, size=n).astype(np.float64))

    def perturb(self, block: Array, scale: Array, rng: np.random.Generator) -> Array:
        """Switch to a random choice with a probability that grows with the move size."""
        switch = rng.random(len(block)) < np.clip(2.0 * scale, 0.05, 0.5)
        fresh = self.sample(len(block), rng)
        return np.where(switch[:, None], fresh, block)


_Coder = _Numeric | _Choice


def _coder(dist: BaseDistribution) -> _Coder:
    if isinstance(dist, CategoricalDistribution):
        return _Choice(dist)
    if isinstance(dist, FloatDistribution | IntDistribution):
        return _Numeric(dist)
    raise TypeError(f"GPSampler cannot handle {type(dist).__name__}")


class _Space:
    """A relative search space as a unit cube: encode trials, make and decode candidates.

    Three representations: *internal* values (Optuna's: floats, choice
    indices), one row per configuration and one column per parameter; the
    *encoded* matrix the GP sees; and *keys*, hashable configuration
    identities used to recognise duplicates.
    """

    def __init__(self, search_space: dict[str, BaseDistribution]) -> None:
        self.names = list(search_space)
        self.dists = list(search_space.values())
        self.coders = [_coder(d) for d in self.dists]
        edges = np.cumsum([0] + [c.width for c in self.coders])
        self.slices = [slice(int(a), int(b)) for a, b in itertools.pairwise(edges)]
        self.width = int(edges[-1])
        self.size = math.prod(c.size for c in self.coders)

    def internal_of(self, params: dict[str, Any]) -> list[float] | None:
        """Internal values of a trial's parameters, or None unless all are in the space.

        Running trials of a define-by-run objective may lack parameters or have
        used other ranges. Checking values rather than comparing distribution
        objects is also several times faster.
        """
        row = []
        for name, dist in zip(self.names, self.dists, strict=True):
            if name not in params:
                return None
            try:
                value = float(dist.to_internal_repr(params[name]))
            except (TypeError, ValueError):
                return None
            if not dist._contains(value):
                return None
            row.append(value)
        return row

    def encode(self, internal: Array) -> Array:
        out = np.empty((len(internal), self.width))
        for j, (coder, cols) in enumerate(zip(self.coders, self.slices, strict=True)):
            out[:, cols] = coder.encode(internal[:, j])
        return out

    def internal(self, encoded: Array) -> Array:
        columns = [c.values(encoded[:, s]) for c, s in zip(self.coders, self.slices, strict=True)]
        return np.stack(columns, axis=1)

    def keys(self, internal: Array) -> list[Key]:
        ids = [c.identity(internal[:, j]) for j, c in enumerate(self.coders)]
        return [tuple(row) for row in np.stack(ids, axis=1).tolist()]

    def snap(self, encoded: Array) -> Array:
        """Move encoded points onto representable configurations (what would be proposed)."""
        return self.encode(self.internal(encoded))

    def sample(self, n: int, rng: np.random.Generator) -> Array:
        return np.hstack([c.sample(n, rng) for c in self.coders])

    def perturb(self, encoded: Array, scale: Array, rng: np.random.Generator) -> Array:
        blocks = [c.perturb(encoded[:, s], scale, rng)
                  for c, s in zip(self.coders, self.slices, strict=True)]
        return self.snap(np.hstack(blocks))

    def enumerate(self) -> Array:
        """Every configuration, encoded (only for finite spaces of modest size)."""
        grids = [c.grid() for c in self.coders]
        internal = np.array(list(itertools.product(*grids)), dtype=np.float64)
        return self.encode(internal.reshape(-1, len(self.coders)))

    def params(self, encoded_row: Array) -> dict[str, Any]:
        internal = self.internal(encoded_row.reshape(1, -1))[0]
        return {name: dist.to_external_repr(float(v))
                for name, dist, v in zip(self.names, self.dists, internal, strict=True)}


def _intersection(trials: Sequence[FrozenTrial], current: int) -> dict[str, BaseDistribution]:
    """Parameters every completed trial shares with the same distribution.

    Before any trial completes, the running trials stand in, so a batch asked
    at once is already de-duplicated from its second member on. Single-valued
    distributions are left out: Optuna fills them in without asking.
    """
    pool = [t for t in trials if t.state == TrialState.COMPLETE]
    if not pool:
        pool = [t for t in trials
                if t.state == TrialState.RUNNING and t.number != current and t.distributions]
    if not pool:
        return {}
    space = dict(pool[0].distributions)
    for t in pool[1:]:
        space = {k: d for k, d in space.items() if t.distributions.get(k) == d}
    return {k: space[k] for k in sorted(space) if not space[k].single()}


# -- History ---------------------------------------------------------------------------


@dataclass
class _History:
    """What the study says about a search space, in the forms the sampler needs."""

    observed: Array  # encoded feasible completed trials with finite values
    values: Array  # their objective values, turned into minimization, one column each
    pending: Array  # encoded running or enqueued trials (the constant liar's points)
    tried: set[Key] = field(default_factory=set)  # complete (any outcome) or pending
    infeasible: set[Key] = field(default_factory=set)


def _feasible(trial: FrozenTrial) -> bool:
    return all(v <= 0.0 for v in trial.constraints.values())


def _known_params(trial: FrozenTrial) -> dict[str, Any]:
    """Parameters a trial has or will have: an enqueued (``enqueue_trial``) trial
    keeps its fixed parameters in a system attribute until they are suggested."""
    if trial.state == TrialState.COMPLETE:
        return trial.params
    return {**trial.system_attrs.get("fixed_params", {}), **trial.params}


def _collect(study: Study, current: FrozenTrial, space: _Space) -> _History:
    signs = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
    done: list[list[float]] = []
    values: list[Array] = []
    running: list[list[float]] = []
    tried: list[list[float]] = []
    infeasible: list[list[float]] = []
    states = (TrialState.COMPLETE, TrialState.RUNNING, TrialState.WAITING)
    for t in study.get_trials(deepcopy=False, states=states):
        row = None if t.number == current.number else space.internal_of(_known_params(t))
        if row is None:
            continue
        tried.append(row)
        if t.state != TrialState.COMPLETE:
            running.append(row)
        elif not _feasible(t):
            infeasible.append(row)
        elif t.values is not None and all(math.isfinite(v) for v in t.values):
            done.append(row)
            values.append(signs * np.asarray(t.values, dtype=np.float64))

    def encoded(rows: list[list[float]]) -> Array:
        return space.encode(np.array(rows, dtype=np.float64).reshape(-1, len(space.names)))

    def keys(rows: list[list[float]]) -> set[Key]:
        return set(space.keys(np.array(rows, dtype=np.float64).reshape(-1, len(space.names))))

    return _History(
        observed=encoded(done),
        values=np.array(values, dtype=np.float64).reshape(-1, len(signs)),
        pending=encoded(running),
        tried=keys(tried),
        infeasible=keys(infeasible),
    )


def _parego(values: Array, weights: Array) -> Array:
    """Augmented Chebyshev scalarization of minimization values normalized to [0, 1].

    The max term reaches every Pareto-optimal point for some weights (a plain
    weighted sum misses concave parts of the front); the small sum term breaks
    ties in favour of points that are not weakly dominated.
    """
    low, high = values.min(axis=0), values.max(axis=0)
    scaled = (values - low) / np.where(high > low, high - low, 1.0)
    weighted = scaled * weights
    return np.asarray(weighted.max(axis=1) + _PAREGO_RHO * weighted.sum(axis=1))


# -- Gaussian process --------------------------------------------------------------------


def _sq_dist(a: Array, b: Array) -> Array:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.asarray(np.maximum(d, 0.0))


def _matern52(sq_dist: Array, length: float) -> Array:
    r = np.sqrt(5.0 * sq_dist) / length
    return np.asarray((1.0 + r + r * r / 3.0) * np.exp(-r))


def _cholesky(matrix: Array) -> Array:
    """Cholesky factor, adding growing diagonal jitter when rounding breaks definiteness."""
    scale = float(np.mean(np.diag(matrix)))
    for jitter in (0.0, 1e-10, 1e-8, 1e-6, 1e-4):
        try:
            factor = np.linalg.cholesky(matrix + jitter * scale * np.eye(len(matrix)))
            return np.asarray(factor, dtype=np.float64)
        except np.linalg.LinAlgError:
            continue
    raise np.linalg.LinAlgError("covariance is not positive definite even with jitter")


def _factor(cov: Array, y: Array, noise: float) -> tuple[Array, Array]:
    """``L`` with ``L @ L.T == cov`` and ``v = L^-1 y``, from a single factorization.

    numpy has no triangular solve, and a general solve per grid point would
    cost more than the factorization. Bordering ``cov`` with ``y`` (and a
    corner large enough to stay positive definite, since ``cov``'s smallest
    eigenvalue is at least ``noise``) makes the last row of the bordered
    factor exactly ``L^-1 y``.
    """
    n = len(y)
    bordered = np.empty((n + 1, n + 1))
    bordered[:n, :n] = cov
    bordered[:n, n] = bordered[n, :n] = y
    bordered[n, n] = 2.0 + 2.0 * float(y @ y) / noise
    full = _cholesky(bordered)
    return full[:n, :n], full[n, :n]


@dataclass(frozen=True)
class _GP:
    """A fitted GP: covariance ``amplitude * (C + noise * I)``, C the unit Matern kernel."""

    x: Array
    chol: Array  # of C + noise * I
    v: Array  # chol^-1 y
    length: float
    amplitude: float

    @classmethod
    def fit(cls, x: Array, y: Array, length: float, noise: float,
            kernel: Array | None = None) -> _GP:
        """Condition on ``(x, y)``; the amplitude takes its maximum-likelihood value.

        ``kernel`` is the unit kernel matrix of ``x`` if the caller has it already.
        """
        if kernel is None:
            kernel = _matern52(_sq_dist(x, x), length)
        chol, v = _factor(kernel + noise * np.eye(len(y)), y, noise)
        return cls(x, chol, v, length, max(float(v @ v) / len(y), 1e-12))

    def log_likelihood(self) -> float:
        """Log marginal likelihood with the amplitude profiled out (constants dropped)."""
        log_det = float(np.log(np.diag(self.chol)).sum())
        return -0.5 * len(self.v) * math.log(self.amplitude) - log_det

    def predict(self, points: Array) -> tuple[Array, Array]:
        """Posterior mean and standard deviation of the latent function (noise excluded)."""
        cross = _matern52(_sq_dist(self.x, points), self.length)
        w = np.linalg.solve(self.chol, cross)
        mean = w.T @ self.v
        var = self.amplitude * np.maximum(1.0 - (w * w).sum(axis=0), 1e-12)
        return mean, np.sqrt(var)


def _hyperparameters(x: Array, y: Array) -> tuple[float, float]:
    """The (length scale, noise ratio) grid point of largest log marginal likelihood.

    Profiling out the amplitude (its optimum is ``y' K^-1 y / n`` for fixed
    length and noise ratio) keeps the grid 2-D.
    """
    best, best_lml = (1.0, _NOISE_RATIOS[-1]), -math.inf
    sq = _sq_dist(x, x)
    for length in _LENGTH_SCALES * math.sqrt(max(x.shape[1], 1)):
        kernel = _matern52(sq, float(length))
        for noise in _NOISE_RATIOS:
            try:
                lml = _GP.fit(x, y, float(length), noise, kernel).log_likelihood()
            except np.linalg.LinAlgError:
                continue
            if lml > best_lml:
                best, best_lml = (float(length), noise), lml
    return best


def _subset(x: Array, y: Array, limit: int, rng: np.random.Generator) -> tuple[Array, Array]:
    """At most ``limit`` observations: the best half and a random sample of the rest.

    GP cost is cubic in the number of points. The best region is what the
    acquisition must resolve; the random rest keeps the global shape.
    """
    if len(y) <= limit:
        return x, y
    order = np.argsort(y, kind="stable")
    rest = rng.choice(order[limit // 2:], size=limit - limit // 2, replace=False)
    keep = np.sort(np.concatenate([order[: limit // 2], rest]))
    return x[keep], y[keep]


_erfc = np.frompyfunc(math.erfc, 1, 1)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_h(z: Array) -> Array:
    """``log(phi(z) + z * Phi(z))``, finite however far into the left tail ``z`` goes.

    Expected improvement is ``std * h(z)``. Computed directly, ``h`` loses
    about ``log10(z**2)`` digits to cancellation and underflows near
    ``z = -38``, which would leave most candidates tied at zero when the model
    is confident; below ``z = -25`` the asymptotic series (truncation error
    under 1e-8) takes over instead.
    """
    out = np.empty_like(z)
    tail = z < -25.0
    zc = z[~tail]
    cdf = 0.5 * np.asarray(_erfc(-zc / math.sqrt(2.0)), dtype=np.float64)
    pdf = np.exp(-0.5 * zc * zc - _LOG_SQRT_2PI)
    out[~tail] = np.log(np.maximum(pdf + zc * cdf, 1e-300))
    zt = z[tail]
    inv = 1.0 / (zt * zt)
    series = 1.0 - 3.0 * inv + 15.0 * inv**2 - 105.0 * inv**3
    out[tail] = -0.5 * zt * zt - _LOG_SQRT_2PI - np.log(zt * zt) + np.log(series)
    return out


def _log_ei(gp: _GP, points: Array, best: float) -> Array:
    mean, std = gp.predict(points)
    return _log_h((best - mean) / std) + np.log(std)


# -- Candidate choice --------------------------------------------------------------------


def _first_untried(space: _Space, candidates: Array, scores: Array,
                   avoid: set[Key]) -> Array | None:
    """The highest-scoring candidate whose configuration is not in ``avoid``."""
    order = np.argsort(-scores, kind="stable")
    keys = space.keys(space.internal(candidates))
    for i in order:
        if keys[i] not in avoid:
            row: Array = candidates[i]
            return row
    return None


def _choose(space: _Space, candidates: Array, scores: Array, whole: bool, history: _History,
            score: Callable[[Array], Array]) -> tuple[Array, bool]:
    """Best untried candidate; else enumerate a finite space; else, once everything
    has been tried, the best candidate that is not known to be infeasible.

    ``whole`` says ``candidates`` already is the whole space (nothing to
    enumerate). Returns the encoded choice and whether the space was exhausted.
    """
    pick = _first_untried(space, candidates, scores, history.tried)
    if pick is None and not whole and space.size <= _ENUMERATION_LIMIT:
        candidates = space.enumerate()
        scores = score(candidates)
        pick = _first_untried(space, candidates, scores, history.tried)
    if pick is not None:
        return pick, False
    fallback = _first_untried(space, candidates, scores, history.infeasible)
    return (candidates[int(np.argmax(scores))] if fallback is None else fallback), True


# -- The sampler -------------------------------------------------------------------------


class GPSampler(BaseSampler):
    """Bayesian optimization with a numpy-only Gaussian process (no PyTorch).

    Relative sampling covers the parameters every completed trial shares (the
    intersection search space); parameters outside it, and every parameter
    before the first trial has finished, come from a seeded
    :class:`~optuna.samplers.RandomSampler`. Supports float (log, step), int
    (log, step) and categorical parameters, several objectives (ParEGO) and
    constraints set with ``trial.set_constraint``.

    Contract:

    - Until ``n_startup_trials`` feasible trials have completed, proposals are
      uniformly random, yet never a configuration already completed or running.
    - Afterwards: log expected improvement under the GP, with running and
      enqueued trials treated as observed at the mean ("constant liar").
    - A configuration that is completed, running or enqueued is proposed again
      only when every configuration of the space has been tried, and one
      known to be infeasible only when nothing else is left.
    - With a ``seed`` and the same sequence of asks and tells, proposals are
      identical (single-threaded use; :meth:`reseed_rng` breaks this on purpose).

    Each relatively sampled trial gets the system attribute ``dspex_gp:phase``
    ("startup", "model" or "exhausted"), and for several objectives
    ``dspex_gp:weights``, the ParEGO weights it was proposed under.

    Args:
        seed: Seed of both the sampler's and the fallback random sampler's RNG.
        n_startup_trials: Feasible completed trials to collect before modelling
            (at least 2 are always required).
        n_candidates: Random candidates per proposal; local moves add half as
            many, a refinement round a quarter.
    """

    def __init__(self, *, seed: int | None = None, n_startup_trials: int = 8,
                 n_candidates: int = 512) -> None:
        if n_startup_trials < 0:
            raise ConfigurationError(f"n_startup_trials must be >= 0, got {n_startup_trials}")
        if n_candidates < 1:
            raise ConfigurationError(f"n_candidates must be >= 1, got {n_candidates}")
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed)
        self._n_startup = max(n_startup_trials, 2)
        self._n_candidates = n_candidates

    def reseed_rng(self) -> None:
        """Fresh entropy for both RNGs (Optuna calls this for ``n_jobs > 1`` copies)."""
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(self, study: Study,
                                    trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return _intersection(study.get_trials(deepcopy=False), trial.number)

    def sample_relative(self, study: Study, trial: FrozenTrial,
                        search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        if not search_space:
            return {}
        space = _Space(search_space)
        history = _collect(study, trial, space)
        if len(history.values) < self._n_startup:
            choice, exhausted = self._startup(space, history)
            phase = "startup"
        else:
            choice, exhausted = self._model(study, trial, space, history)
            phase = "model"
        _record(study, trial, "phase", "exhausted" if exhausted else phase)
        return space.params(choice)

    def sample_independent(self, study: Study, trial: FrozenTrial, param_name: str,
                           param_distribution: BaseDistribution) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _candidates(self, space: _Space, centres: Array, n_local: int,
                    scales: Sequence[float], n_random: int) -> Array:
        """Uniform random candidates plus ``n_local`` moves around ``centres``."""
        parts = [space.snap(space.sample(n_random, self._rng))] if n_random else []
        if n_local and len(centres):
            picks = centres[self._rng.integers(len(centres), size=n_local)]
            scale = self._rng.choice(np.asarray(scales), size=n_local)
            parts.append(space.perturb(picks, scale, self._rng))
        return np.vstack(parts) if parts else np.empty((0, space.width))

    def _pool(self, space: _Space, centres: Array) -> tuple[Array, bool]:
        """The first candidate set, and whether it is the whole space (when small enough)."""
        if space.size <= self._n_candidates:
            return space.enumerate(), True
        pool = self._candidates(space, centres, self._n_candidates // 2, _LOCAL_SCALES,
                                self._n_candidates)
        return pool, False

    def _startup(self, space: _Space, history: _History) -> tuple[Array, bool]:
        """A uniformly random untried configuration (random scores, same tie rules)."""
        pool, whole = self._pool(space, np.empty((0, space.width)))

        def score(points: Array) -> Array:
            return self._rng.random(len(points))

        return _choose(space, pool, score(pool), whole, history, score)

    def _model(self, study: Study, trial: FrozenTrial, space: _Space,
               history: _History) -> tuple[Array, bool]:
        """Fit the GP to the (scalarized) targets and maximize log-EI over candidates."""
        y = history.values[:, 0]
        if history.values.shape[1] > 1:
            weights = self._rng.dirichlet(np.ones(history.values.shape[1]))
            _record(study, trial, "weights", [float(w) for w in weights])
            y = _parego(history.values, weights)
        x, ys = history.observed, (y - y.mean()) / (float(y.std()) or 1.0)
        length, noise = _hyperparameters(*_subset(x, ys, _HYPER_POINTS, self._rng))
        x, ys = _subset(x, ys, _MAX_FIT_POINTS, self._rng)
        lies = np.zeros(len(history.pending))  # the mean, after standardizing
        gp = _GP.fit(np.vstack([x, history.pending]), np.concatenate([ys, lies]), length, noise)
        best = float(ys.min())

        def score(points: Array) -> Array:
            return _log_ei(gp, points, best)

        pool, whole = self._pool(space, x[np.argsort(ys, kind="stable")[:_TOP_POINTS]])
        scores = score(pool)
        if not whole:
            top = pool[np.argsort(-scores, kind="stable")[:3]]
            refined = self._candidates(space, top, max(self._n_candidates // 4, 1),
                                       _REFINE_SCALES, 0)
            pool, scores = np.vstack([pool, refined]), np.concatenate([scores, score(refined)])
        return _choose(space, pool, scores, whole, history, score)


def _record(study: Study, trial: FrozenTrial, key: str, value: Any) -> None:
    """Note how a trial was proposed, on the trial itself (concurrent asks stay apart)."""
    study._storage.set_trial_system_attr(trial._trial_id, _ATTR_PREFIX + key, value)
