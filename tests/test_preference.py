"""Preference parsing, validation and the evaluation grids."""

import pytest
import torch

from uniarm.errors import UniarmError
from uniarm.preference import (
    as_tensor,
    format_preference,
    parse_preference,
    simplex_grid,
    task_grid,
    validate_preference,
)

OBJ = ("helpful", "harmless")


def test_named_and_positional_forms():
    assert parse_preference("harmless=0.7,helpful=0.3", OBJ) == (0.3, 0.7)
    assert parse_preference("0.3, 0.7", OBJ) == (0.3, 0.7)
    assert parse_preference("helpful=1", OBJ) == (1.0, 0.0)  # missing weights are 0
    assert format_preference((0.3, 0.7), OBJ) == "helpful=0.3,harmless=0.7"


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "empty"),
        ("funny=1", "unknown objective 'funny'"),
        ("0.5,0.6", "sums to 1.1"),
        ("1.5,-0.5", "negative"),
        ("0.5", "has 1 weights"),
        ("nan,1", "NaN"),
        ("helpful=0.5,0.5", "mixes"),
        ("a,b", "not a number"),
        ("helpful=0.5,helpful=0.5", "'helpful' appears twice"),
        ("helpful:0.5,harmless:0.5", "not a number"),
    ],
)
def test_bad_preferences(text, message):
    with pytest.raises(UniarmError, match=message):
        parse_preference(text, OBJ)


def test_tolerance_on_the_sum():
    assert validate_preference([1 / 3] * 3, ("a", "b", "c"))
    with pytest.raises(UniarmError):
        validate_preference([0.34, 0.34, 0.34], ("a", "b", "c"))


def test_as_tensor_checks_rows():
    assert as_tensor([0.2, 0.8], 2).shape == (1, 2)
    with pytest.raises(UniarmError, match="do not fit 3"):
        as_tensor(torch.ones(4, 2) / 2, 3)


def test_safety_grid_has_eleven_points():
    grid = task_grid(2)
    assert len(grid) == 11 and grid[0] == (1.0, 0.0) and grid[-1] == (0.0, 1.0)
    assert all(abs(sum(p) - 1) < 1e-9 for p in grid)


def test_assistant_grid_edges_plus_interior():
    grid = task_grid(3)
    edges = [p for p in grid if min(p) == 0]
    interior = [p for p in grid if min(p) > 0]
    # 3 edges of 11 points sharing 3 corners: 30; interior at step 0.2: compositions of 5
    # into 3 positive parts: C(4, 2) = 6.
    assert len(edges) == 30 and len(interior) == 6 and len(set(grid)) == len(grid)
    assert (0.2, 0.2, 0.6) in interior


def test_simplex_grid_counts():
    assert len(simplex_grid(3, 0.5)) == 6  # C(2 + 2, 2)
    with pytest.raises(UniarmError, match="does not divide 1"):
        simplex_grid(2, 0.3)


def test_as_tensor_takes_rows_by_objective_name():
    objectives = ("helpful", "harmless", "humor")
    got = as_tensor([{"harmless": 0.7, "helpful": 0.3}, [0.0, 0.0, 1.0]], 3, objectives)
    assert torch.allclose(got, torch.tensor([[0.3, 0.7, 0.0], [0.0, 0.0, 1.0]]))
    one = as_tensor({"humor": 1.0}, 3, objectives)  # a single mapping is one row
    assert one.tolist() == [[0.0, 0.0, 1.0]]


def test_as_tensor_names_what_is_wrong_with_a_named_row():
    with pytest.raises(UniarmError, match="'funny', not an objective of the guides"):
        as_tensor([{"funny": 1.0}], 2, ("helpful", "harmless"))
    with pytest.raises(UniarmError, match="order is not known"):
        as_tensor([{"helpful": 1.0}], 2)
    with pytest.raises(UniarmError, match="sum to"):
        as_tensor([{"helpful": 0.5}], 2, ("helpful", "harmless"))  # the left-out weight is 0
    with pytest.raises(UniarmError, match="not rows of numbers"):
        as_tensor([["a", "b"]], 2)
