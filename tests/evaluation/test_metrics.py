"""Hypervolume, Pareto front and mean inner product against hand computations (METHOD.md §6)."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uniarm.errors import UniarmError
from uniarm.evaluation.metrics import (
    hypervolume,
    mean_inner_product,
    pareto_front,
    preference_label,
    summarise_sweep,
)

# Three points traced by a sweep, reference at the origin (maximisation):
#
#   y
#   5 ●─┐                 strip x in [0, 1]: height 5 -> 5
#   4   │                 strip x in [1, 3]: height 3 -> 6
#   3   ●───┐             strip x in [3, 5]: height 1 -> 2
#   2       │                                     total 13
#   1       ●───┐
#   0 ──────────┴── x
#     0 1 2 3 4 5
STAIRS = [(1.0, 5.0), (3.0, 3.0), (5.0, 1.0)]


# -- 2-D, by hand --------------------------------------------------------------------------------


def test_staircase_by_hand():
    assert hypervolume(STAIRS, (0.0, 0.0)) == pytest.approx(13.0)


def test_staircase_with_shifted_reference():
    # Reference (-1, -2), points (1, 5) and (3, 3): strip [-1, 1] height 7 -> 14, strip [1, 3]
    # height 5 -> 10.
    assert hypervolume([(1.0, 5.0), (3.0, 3.0)], (-1.0, -2.0)) == pytest.approx(24.0)


def test_negative_scores():
    # Reference (-4, -2); points (-3, 0.5) and (-1, -1): strip [-4, -3] height 2.5 -> 2.5,
    # strip [-3, -1] height 1 -> 2.
    assert hypervolume([(-1.0, -1.0), (-3.0, 0.5)], (-4.0, -2.0)) == pytest.approx(4.5)


def test_dominated_and_duplicate_points_change_nothing():
    assert hypervolume([*STAIRS, (2.0, 2.0), (0.5, 4.0)], (0, 0)) == pytest.approx(13.0)
    assert hypervolume([*STAIRS, *STAIRS, (3.0, 3.0)], (0, 0)) == pytest.approx(13.0)


def test_points_not_above_the_reference_contribute_nothing():
    # (6, 0) lies on the reference's horizontal line, (7, -1) below it, (-1, 9) left of it.
    extra = [(6.0, 0.0), (7.0, -1.0), (-1.0, 9.0)]
    assert hypervolume([*STAIRS, *extra], (0, 0)) == pytest.approx(13.0)
    assert hypervolume(extra, (0, 0)) == 0.0
    assert hypervolume([(0.0, 0.0)], (0, 0)) == 0.0


def test_order_of_points_does_not_matter():
    assert hypervolume(STAIRS[::-1], (0, 0)) == pytest.approx(13.0)


def test_a_cost_must_be_negated_by_the_caller():
    # Objectives: helpful (reward, higher better) and a cost (lower better). Point A has
    # helpful 1, cost 1; point B helpful 3, cost 3; the reference is helpful 0, cost 4.
    # Correct use: harmless = -cost, so A = (1, -1), B = (3, -3), reference (0, -4):
    # strip [0, 1] height 3 -> 3, strip [1, 3] height 1 -> 2; HV 5.
    helpful_cost = np.array([(1.0, 1.0), (3.0, 3.0)])
    ref_cost = np.array([0.0, 4.0])
    flip = np.array([1.0, -1.0])
    assert hypervolume(helpful_cost * flip, ref_cost * flip) == pytest.approx(5.0)

    # Passed raw, the cost is read as "higher is better": with the same reference nothing lies
    # above cost 4, and with a reference at the origin the costlier B dominates A (HV 3 * 3).
    assert hypervolume(helpful_cost, ref_cost) == 0.0
    assert hypervolume(helpful_cost, (0.0, 0.0)) == pytest.approx(9.0)


# -- 3-D, by hand --------------------------------------------------------------------------------


def test_single_point_is_its_box():
    assert hypervolume([(2.0, 3.0, 4.0)], (0, 0, 0)) == pytest.approx(24.0)
    assert hypervolume([(2.0, 3.0, 4.0)], (1, 1, 1)) == pytest.approx(6.0)


def test_two_boxes_by_inclusion_exclusion():
    # Boxes 2*2*2 = 8 and 1*3*1 = 3 overlap in the box up to (1, 2, 1), volume 2: 8 + 3 - 2.
    assert hypervolume([(2.0, 2.0, 2.0), (1.0, 3.0, 1.0)], (0, 0, 0)) == pytest.approx(9.0)


def test_three_boxes_by_inclusion_exclusion():
    # Three 3*1*1 bars along the axes: 3 * 3 - 3 pairwise overlaps (unit cube) + 1 triple.
    bars = [(3.0, 1.0, 1.0), (1.0, 3.0, 1.0), (1.0, 1.0, 3.0)]
    assert hypervolume(bars, (0, 0, 0)) == pytest.approx(7.0)


def test_3d_point_below_reference_in_one_objective():
    assert hypervolume([(2.0, 2.0, 5.0), (1.0, 3.0, -1.0)], (0, 0, 0)) == pytest.approx(20.0)


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", [(0.0,), (0.0, 0.0, 0.0), [[0.0, 0.0]]])
def test_wrong_reference_dimension(reference):
    with pytest.raises(UniarmError, match="reference point"):
        hypervolume(STAIRS, reference)


@pytest.mark.parametrize(
    "points",
    [[(1.0, np.nan)], [(1.0, np.inf)], [(1.0, 2.0, 3.0)], [1.0, 2.0], [], [("a", "b")]],
    ids=["nan", "inf", "k=3 vs reference k=2", "1-D", "empty", "text"],
)
def test_bad_points(points):
    with pytest.raises(UniarmError):
        hypervolume(points, (0.0, 0.0))


def test_non_finite_reference():
    with pytest.raises(UniarmError, match="NaN or infinity"):
        hypervolume(STAIRS, (0.0, -np.inf))


# -- properties ----------------------------------------------------------------------------------


def covered_cells(points: list[tuple[int, ...]], reference: tuple[int, ...]) -> int:
    """Count the unit cells between the reference and the points: a cell with upper corner c is
    covered when some point is >= c in every objective. Exact for integer coordinates."""
    ranges = [range(r + 1, max(p[i] for p in points) + 1) for i, r in enumerate(reference)]
    return sum(
        any(all(p[i] >= c[i] for i in range(len(c))) for p in points)
        for c in itertools.product(*ranges)
    )


def staircase_area(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """2-D area by horizontal slabs: sweep points right to left, each higher one adds a slab."""
    area, top = 0.0, reference[1]
    for x, y in sorted(points, reverse=True):
        if x > reference[0] and y > top:
            area += (x - reference[0]) * (y - top)
            top = y
    return area


def integer_points(k: int):
    return st.lists(st.tuples(*[st.integers(-4, 5)] * k), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(points=integer_points(2), reference=st.tuples(st.integers(-5, 1), st.integers(-5, 1)))
def test_2d_equals_cell_count(points, reference):
    assert hypervolume(points, reference) == pytest.approx(covered_cells(points, reference))


@settings(max_examples=40, deadline=None)
@given(points=integer_points(3), reference=st.tuples(*[st.integers(-4, 0)] * 3))
def test_3d_equals_cell_count(points, reference):
    assert hypervolume(points, reference) == pytest.approx(covered_cells(points, reference))


finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(points=st.lists(st.tuples(finite, finite), min_size=1, max_size=12))
def test_2d_equals_staircase_formula(points):
    reference = (-10.5, -10.5)
    expected = staircase_area(points, reference)
    assert hypervolume(points, reference) == pytest.approx(expected, rel=1e-9, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(
    points=st.lists(st.tuples(finite, finite, finite), min_size=1, max_size=8),
    extra=st.tuples(finite, finite, finite),
)
def test_adding_a_point_never_lowers_hv(points, extra):
    reference = (-5.0, -5.0, -5.0)
    before = hypervolume(points, reference)
    assert hypervolume([*points, extra], reference) >= before - 1e-9 * max(1.0, before)


# -- Pareto front --------------------------------------------------------------------------------


def test_pareto_front_maximises():
    # (2, 2) is dominated by (3, 3); the second (3, 3) is a duplicate. Under minimisation the
    # answer would differ: (2, 2) would dominate (3, 3).
    points = [(1.0, 5.0), (3.0, 3.0), (2.0, 2.0), (5.0, 1.0), (3.0, 3.0)]
    assert pareto_front(points).tolist() == [True, True, False, True, False]


def test_pareto_front_3d():
    points = [(1.0, 1.0, 1.0), (3.0, 1.0, 1.0), (1.0, 3.0, 1.0), (0.0, 0.0, 4.0)]
    assert pareto_front(points).tolist() == [False, True, True, True]


# -- mean inner product --------------------------------------------------------------------------


PREFERENCES = [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)]
VALUES = [(2.0, -1.0), (1.0, 3.0), (4.0, 0.5)]


def test_mean_inner_product_by_hand():
    # <(1, 0), (2, -1)> = 2; <(.5, .5), (1, 3)> = 2; <(0, 1), (4, .5)> = 0.5; mean 4.5 / 3.
    assert mean_inner_product(PREFERENCES, VALUES) == pytest.approx(1.5)


@pytest.mark.parametrize(
    "preferences, values",
    [
        ([(0.6, 0.6), (0.5, 0.5), (0.0, 1.0)], VALUES),  # a row off the simplex
        ([(1.2, -0.2), (0.5, 0.5), (0.0, 1.0)], VALUES),  # a negative weight
        (PREFERENCES[:2], VALUES),  # counts differ
        ([(1.0, 0.0, 0.0)] * 3, VALUES),  # k differs
        (PREFERENCES, [(2.0, np.nan), (1.0, 3.0), (4.0, 0.5)]),
    ],
)
def test_mean_inner_product_rejects(preferences, values):
    with pytest.raises(UniarmError):
        mean_inner_product(preferences, values)


# -- sweep summary -------------------------------------------------------------------------------


def test_summarise_sweep():
    sweep = dict(zip(PREFERENCES, VALUES, strict=True))
    result = summarise_sweep("uniarm", sweep, reference=(0.0, -2.0))

    # Reference (0, -2); points (1, 3), (2, -1), (4, 0.5): strip [0, 1] height 5 -> 5, strip
    # [1, 2] height 2.5 -> 2.5, strip [2, 4] height 2.5 -> 5.
    assert result.hypervolume == pytest.approx(12.5)
    assert result.mean_inner_product == pytest.approx(1.5)
    assert result.reference == (0.0, -2.0)
    assert result.preferences == tuple(PREFERENCES)
    assert "reference (0, -2)" in result.summary()

    stored = json.loads(json.dumps(result.to_dict()))
    assert stored["reference"] == [0.0, -2.0]
    assert stored["scores"][1] == [1.0, 3.0]
    assert stored["hypervolume"] == pytest.approx(12.5)


def test_summarise_sweep_rejects():
    with pytest.raises(UniarmError, match="no preferences"):
        summarise_sweep("m", {}, reference=(0.0, 0.0))
    with pytest.raises(UniarmError, match="reference point"):
        summarise_sweep("m", {(1.0, 0.0): (1.0, 1.0)}, reference=(0.0, 0.0, 0.0))
    with pytest.raises(UniarmError):
        summarise_sweep("m", {(0.7, 0.7): (1.0, 1.0)}, reference=(0.0, 0.0))


def test_preference_label():
    assert preference_label((0.3, 0.7)) == "0.3/0.7"
    assert preference_label((1.0, 0.0, 0.0)) == "1/0/0"
