"""Preference vectors: parsing, validation and the evaluation grids (METHOD.md §6).

A preference vector λ has one non-negative weight per objective and sums to 1. Everything that
takes a preference from a user goes through `validate_preference`, so bad input fails here,
before any model runs.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import torch

from uniarm.errors import UniarmError

SUM_TOLERANCE = 1e-4


def validate_preference(values: Sequence[float], objectives: Sequence[str]) -> tuple[float, ...]:
    """Check that `values` is a point of the simplex over `objectives`; return it as a tuple."""
    values = tuple(float(v) for v in values)
    names = ", ".join(objectives)
    if len(values) != len(objectives):
        raise UniarmError(
            f"preference {values} has {len(values)} weights but there are {len(objectives)} "
            f"objectives ({names})",
            "give one weight per objective",
        )
    if any(math.isnan(v) or math.isinf(v) for v in values):
        raise UniarmError(f"preference {values} holds NaN or infinity", "use finite weights")
    if any(v < 0 for v in values):
        raise UniarmError(f"preference {values} has a negative weight", "weights must be >= 0")
    total = sum(values)
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise UniarmError(
            f"preference {values} sums to {total:.6g}, not 1",
            "weights must sum to 1, e.g. helpful=0.3,harmless=0.7",
        )
    return values


def parse_preference(text: str, objectives: Sequence[str]) -> tuple[float, ...]:
    """Parse 'helpful=0.3,harmless=0.7' (any order) or '0.3,0.7' (the objectives' order)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if not parts:
        raise UniarmError("empty preference", "write e.g. helpful=0.3,harmless=0.7")
    if all("=" in p for p in parts):
        weights: dict[str, float] = {}
        for part in parts:
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in objectives:
                raise UniarmError(
                    f"unknown objective {name!r} in preference {text!r}",
                    f"known objectives: {', '.join(objectives)}",
                )
            if name in weights:
                raise UniarmError(
                    f"objective {name!r} appears twice in preference {text!r}",
                    "give each objective once, e.g. helpful=0.3,harmless=0.7",
                )
            weights[name] = _to_float(value, text)
        values = [weights.get(name, 0.0) for name in objectives]
    elif any("=" in p for p in parts):
        raise UniarmError(f"preference {text!r} mixes named and unnamed weights")
    else:
        values = [_to_float(p, text) for p in parts]
    return validate_preference(values, objectives)


def _to_float(value: str, text: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise UniarmError(
            f"{value!r} in preference {text!r} is not a number",
            "write name=weight pairs, e.g. helpful=0.3,harmless=0.7, or the weights alone",
        ) from None


def format_preference(values: Sequence[float], objectives: Sequence[str]) -> str:
    return ",".join(f"{name}={v:g}" for name, v in zip(objectives, values, strict=True))


def as_tensor(
    preferences: Sequence[Sequence[float] | Mapping[str, float]] | torch.Tensor,
    k: int,
    objectives: Sequence[str] | None = None,
) -> torch.Tensor:
    """A (batch, k) float tensor of validated preference rows.

    A row is k weights in the objectives' order, or (with `objectives`) a mapping from
    objective name to weight, in which an objective left out weighs 0.
    """
    if isinstance(preferences, Mapping):
        preferences = [preferences]
    if not torch.is_tensor(preferences) and any(isinstance(r, Mapping) for r in preferences):
        preferences = [
            _by_name(r, objectives) if isinstance(r, Mapping) else r for r in preferences
        ]
    try:
        tensor = torch.as_tensor(preferences, dtype=torch.float32)
    except (TypeError, ValueError) as error:
        raise UniarmError(
            f"preferences {preferences!r} are not rows of numbers ({error})",
            f"pass one row of {k} weights per prompt, or a {{objective: weight}} mapping",
        ) from None
    if tensor.dim() == 1:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 2 or tensor.shape[1] != k:
        raise UniarmError(
            f"preferences of shape {tuple(tensor.shape)} do not fit {k} objectives",
            f"pass a (batch, {k}) array of weights",
        )
    if not torch.isfinite(tensor).all():
        raise UniarmError("preferences hold NaN or infinity", "use finite weights")
    if (tensor < 0).any():
        raise UniarmError("a preference has a negative weight", "weights must be >= 0")
    sums = tensor.sum(dim=1)
    if ((sums - 1).abs() > SUM_TOLERANCE).any():
        raise UniarmError(
            f"preference rows sum to {sums.tolist()}, not 1", "each row's weights must sum to 1"
        )
    return tensor


def _by_name(row: Mapping[str, float], objectives: Sequence[str] | None) -> list[float]:
    if objectives is None:
        raise UniarmError(
            f"preference {dict(row)} names its objectives, but their order is not known here",
            "pass the weights as a list in the objectives' order",
        )
    unknown = sorted(set(row) - set(objectives))
    if unknown:
        raise UniarmError(
            f"preference {dict(row)} names {', '.join(map(repr, unknown))}, not an objective of "
            f"the guides ({', '.join(objectives)})",
            "use these objectives' names",
        )
    return [row.get(name, 0.0) for name in objectives]


def simplex_grid(k: int, step: float) -> list[tuple[float, ...]]:
    """All points of the k-simplex whose weights are multiples of `step`."""
    n = round(1 / step)
    if not math.isclose(n * step, 1.0, abs_tol=1e-9):
        raise UniarmError(f"grid step {step} does not divide 1", "use e.g. 0.1, 0.2 or 0.25")
    points = []
    for combo in itertools.product(range(n + 1), repeat=k - 1):
        if sum(combo) <= n:
            counts = (*combo, n - sum(combo))
            points.append(tuple(round(c / n, 10) for c in counts))
    return sorted(points, reverse=True)


def task_grid(
    k: int, edge_step: float = 0.1, interior_step: float = 0.2
) -> list[tuple[float, ...]]:
    """The evaluation grid: for k = 2 the line at `edge_step` (11 points at 0.1); for k >= 3 the
    simplex edges at `edge_step` plus the interior points at `interior_step` (METHOD.md §6)."""
    edges = [p for p in simplex_grid(k, edge_step) if sum(v == 0 for v in p) >= k - 2]
    if k <= 2:
        return edges
    interior = [p for p in simplex_grid(k, interior_step) if all(v > 0 for v in p)]
    return edges + [p for p in interior if p not in edges]
