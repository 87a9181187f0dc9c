"""Pareto fronts and hypervolume against brute force."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dspex_lab.optimize import dominates, hypervolume, non_dominated


def _grid_volume(points: list[tuple[float, ...]], ref: tuple[float, ...], n: int) -> float:
    """Share of a regular grid of cells dominated by some point (a slow, obvious oracle)."""
    dims = len(ref)
    hit = 0
    for cell in itertools.product(range(n), repeat=dims):
        x = [(c + 0.5) / n * r for c, r in zip(cell, ref, strict=True)]
        if any(all(p[d] <= x[d] for d in range(dims)) for p in points):
            hit += 1
    volume = 1.0
    for r in ref:
        volume *= r
    return volume * hit / n**dims


def test_dominance() -> None:
    assert dominates((1, 1), (2, 2)) and dominates((1, 2), (1, 3))
    assert not dominates((1, 1), (1, 1)) and not dominates((1, 3), (2, 2))


def test_non_dominated_keeps_the_front() -> None:
    points = [(1, 5), (2, 2), (5, 1), (3, 3), (2, 2)]
    assert non_dominated(points) == [0, 1, 2, 4]


def test_hypervolume_2d_exact() -> None:
    assert hypervolume([(0.5, 0.5)], (1, 1)) == pytest.approx(0.25)
    assert hypervolume([(0, 0.5), (0.5, 0)], (1, 1)) == pytest.approx(0.75)
    assert hypervolume([(2, 2)], (1, 1)) == 0.0  # outside the reference box


@pytest.mark.parametrize("dims, seed", [(3, 1), (3, 2), (4, 3)])
def test_hypervolume_matches_brute_force(dims: int, seed: int) -> None:
    rng = random.Random(seed)
    points = [tuple(rng.random() for _ in range(dims)) for _ in range(10)]
    ref = (1.0,) * dims
    n = 40 if dims == 3 else 16
    assert hypervolume(points, ref) == pytest.approx(_grid_volume(points, ref, n), abs=0.02)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.floats(0, 1, allow_nan=False)] * 3), min_size=1, max_size=12))
def test_hypervolume_is_monotone_and_bounded(points: list[tuple[float, float, float]]) -> None:
    ref = (1.0, 1.0, 1.0)
    hv = hypervolume(points, ref)
    assert 0.0 <= hv <= 1.0 + 1e-12
    assert hypervolume([*points, (0.5, 0.5, 0.5)], ref) >= hv - 1e-12
