"""Pareto fronts and hypervolume, for any number of objectives.

Everything here works on *minimization* vectors: a maximized objective is
negated by the caller (see :mod:`dspex_lab.optimize._objectives`). Fronts in
this project are small (tens to a few hundred points), so the exact
hypervolume is computed by recursive slicing ("HSO"): sort by the last
objective, and sum slab volumes of the lower-dimensional fronts. That is
exact, dependency-free and fast enough for 3-4 objectives and hundreds of
points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["dominates", "hypervolume", "hypervolume_gains", "non_dominated"]

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """True when ``a`` is no worse than ``b`` everywhere and better somewhere (minimizing)."""
    better = False
    for x, y in zip(a, b, strict=True):
        if x > y:
            return False
        if x < y:
            better = True
    return better


def non_dominated(points: Sequence[Point]) -> list[int]:
    """Indices of the points no other point dominates (duplicates are all kept)."""
    keep: list[int] = []
    for i, p in enumerate(points):
        if not any(dominates(q, p) for j, q in enumerate(points) if j != i):
            keep.append(i)
    return keep


def hypervolume(points: Sequence[Point], reference: Point) -> float:
    """The volume dominated by ``points`` and bounded by ``reference`` (minimizing).

    Points not strictly better than the reference in every objective add nothing.
    """
    dims = len(reference)
    inside = [tuple(p) for p in points
              if len(p) == dims and all(x < r for x, r in zip(p, reference, strict=True))]
    if not inside:
        return 0.0
    front = [inside[i] for i in non_dominated(inside)]
    return _hso(sorted(set(front)), tuple(reference))


def _hso(points: list[tuple[float, ...]], ref: tuple[float, ...]) -> float:
    dims = len(ref)
    if dims == 1:
        return ref[0] - min(p[0] for p in points)
    if dims == 2:
        volume, best_y = 0.0, ref[1]
        for x, y in sorted(points):
            if y < best_y:
                volume += (ref[0] - x) * (best_y - y)
                best_y = y
        return volume
    # slice along the last objective
    ordered = sorted(points, key=lambda p: p[-1])
    volume = 0.0
    active: list[tuple[float, ...]] = []
    for i, p in enumerate(ordered):
        active.append(p[:-1])
        upper = ordered[i + 1][-1] if i + 1 < len(ordered) else ref[-1]
        depth = upper - p[-1]
        if depth > 0:
            sub = [active[j] for j in non_dominated(active)]
            active = sub
            volume += depth * _hso(sorted(set(sub)), ref[:-1])
    return volume


def hypervolume_gains(front: Sequence[Point], points: Sequence[Point]
                      ) -> tuple[float, list[float]]:
    """The hypervolume of ``front`` and what each of ``points`` would add to it on its
    own, every objective scaled to [0, 1] over front and points together and the
    reference at 1.1 (minimizing). Used to rank proposals and to prune trials."""
    everything = [*front, *points]
    dims = len(points[0])
    lows = [min(p[i] for p in everything) for i in range(dims)]
    spans = [max(p[i] for p in everything) - lows[i] or 1.0 for i in range(dims)]

    def scaled(p: Point) -> tuple[float, ...]:
        return tuple((v - lo) / sp for v, lo, sp in zip(p, lows, spans, strict=True))

    ref = (1.1,) * dims
    base_points = [scaled(p) for p in front]
    base = [base_points[i] for i in non_dominated(base_points)] if base_points else []
    base_hv = hypervolume(base, ref) if base else 0.0
    out = []
    for p in points:
        q = scaled(p)
        if any(all(b[i] <= q[i] for i in range(dims)) for b in base):
            out.append(0.0)  # dominated (or equalled) even optimistically
            continue
        out.append(hypervolume([*base, q], ref) - base_hv)
    return base_hv, [0.0 if math.isnan(g) else g for g in out]
