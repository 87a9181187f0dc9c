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

from collections.abc import Sequence

__all__ = ["dominates", "hypervolume", "non_dominated"]

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
