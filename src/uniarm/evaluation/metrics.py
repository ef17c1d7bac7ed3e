"""Front-quality metrics of a preference sweep: hypervolume and mean inner product (METHOD.md §6).

A sweep maps each preference vector λ of the evaluation grid to `v(λ)`, the mean oracle score
per objective of the responses generated under λ. Every objective here is *maximised*: a
higher score is better. An objective that is a cost (lower is better, e.g. a harmfulness
score) must be negated by the caller before it reaches this module.

    result = summarise_sweep("uniarm", {(0.0, 1.0): [0.2, 1.3], (1.0, 0.0): [1.1, -0.4]},
                             reference=[-1.0, -1.0])
    print(result.summary())
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import moocore
import numpy as np

from uniarm.errors import UniarmError
from uniarm.preference import as_tensor


def _as_matrix(values: object, name: str, k: int | None = None) -> np.ndarray:
    """`values` as a finite (N, k) float64 array with N >= 1, or a UniarmError saying why not."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UniarmError(f"{name} are not numbers", f"pass an (N, k) array of {name}") from None
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise UniarmError(
            f"{name} of shape {array.shape} are not an (N, k) array with N, k >= 1",
            f"pass one row of {name} per point",
        )
    if k is not None and array.shape[1] != k:
        raise UniarmError(
            f"{name} have {array.shape[1]} objectives per row but {k} were expected",
            "give one value per objective, in the task's objective order",
        )
    if not np.isfinite(array).all():
        raise UniarmError(f"{name} hold NaN or infinity", "check the scores that produced them")
    return array


def _as_reference(reference: object, k: int) -> np.ndarray:
    try:
        ref = np.asarray(reference, dtype=np.float64)
    except (TypeError, ValueError):
        raise UniarmError("the reference point is not numbers", f"pass {k} numbers") from None
    if ref.shape != (k,):
        raise UniarmError(
            f"the reference point has shape {ref.shape} but the points have {k} objectives",
            f"give one reference value per objective ({k} numbers)",
        )
    if not np.isfinite(ref).all():
        raise UniarmError("the reference point holds NaN or infinity", "use finite values")
    return ref


def hypervolume(
    points: Sequence[Sequence[float]] | np.ndarray, reference: Sequence[float]
) -> float:
    """Volume of the region that the points dominate and that dominates `reference` (§6, HV).

    Maximisation: a point `p` covers the box `[reference, p]`; the hypervolume is the volume of
    the union of these boxes. A point that is not strictly above the reference in every
    objective covers nothing and contributes 0. Dominated and duplicate points change nothing.

    Args:
        points: an (N, k) array, one row of mean scores per preference, higher = better.
        reference: k values, the lower corner of every box; the same for every method compared.
    """
    points = _as_matrix(points, "points")
    reference = _as_reference(reference, points.shape[1])

    # Drop what lies on or below the reference in some objective ourselves, rather than relying
    # on how the library treats such points; it also settles the case where nothing is left.
    points = points[(points > reference).all(axis=1)]
    if len(points) == 0:
        return 0.0

    # moocore minimises. This negation is the one place where the direction is turned around:
    # maximising p above reference r is minimising -p below -r, with the same volume.
    return float(moocore.hypervolume(-points, ref=-reference))


def pareto_front(points: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `points` (maximisation, higher = better).

    A row is dominated if another row is at least as good in every objective and better in
    one. Of several equal non-dominated rows only the first is kept in the mask.
    """
    points = _as_matrix(points, "points")
    return np.asarray(moocore.is_nondominated(points, maximise=True, keep_weakly=False))


def mean_inner_product(
    preferences: Sequence[Sequence[float]] | np.ndarray,
    values: Sequence[Sequence[float]] | np.ndarray,
) -> float:
    """`(1/N) Σ_j <λ_j, v(λ_j)>` over the N preferences of a sweep (§6, MIP).

    Args:
        preferences: an (N, k) array, each row a point of the simplex.
        values: an (N, k) array, row j the mean scores `v(λ_j)` obtained under preference j.
    """
    values = _as_matrix(values, "values")
    n, k = values.shape
    weights = _as_matrix(preferences, "preferences", k)
    as_tensor(weights, k)  # each row must be a point of the simplex
    if len(weights) != n:
        raise UniarmError(
            f"{len(weights)} preferences but {n} rows of values",
            "give exactly one row of mean scores per preference",
        )
    return float(np.mean(np.sum(weights * values, axis=1)))


def preference_label(preference: Sequence[float]) -> str:
    """'0.3/0.7' for (0.3, 0.7): short enough for a plot label or a table cell."""
    return "/".join(f"{w:g}" for w in preference)


@dataclass(frozen=True)
class SweepResult:
    """One method's sweep and its metrics, kept together so they are printed and stored as one.

    `reference` is the point the hypervolume was measured from: an HV means nothing without it.
    """

    method: str
    preferences: tuple[tuple[float, ...], ...]
    scores: tuple[tuple[float, ...], ...]
    reference: tuple[float, ...]
    hypervolume: float
    mean_inner_product: float

    def to_dict(self) -> dict:
        """Plain lists and floats, ready for JSON."""
        row = asdict(self)
        for key in ("preferences", "scores", "reference"):
            row[key] = [list(v) if isinstance(v, tuple) else v for v in row[key]]
        return row

    def summary(self) -> str:
        """One line for a terminal: method, HV (with its reference), MIP, number of points."""
        ref = ", ".join(f"{v:g}" for v in self.reference)
        return (
            f"{self.method}: HV {self.hypervolume:.4f} (reference ({ref})) "
            f"MIP {self.mean_inner_product:.4f} over {len(self.preferences)} preferences"
        )


def summarise_sweep(
    method: str,
    sweep: Mapping[Sequence[float], Sequence[float]],
    reference: Sequence[float],
) -> SweepResult:
    """HV and MIP of a sweep `{preference: mean score vector}` measured from `reference`.

    The preferences keep the mapping's order. Scores follow the module's convention: one value
    per objective, higher = better.
    """
    if not sweep:
        raise UniarmError(f"the sweep of {method!r} has no preferences", "evaluate at least one")
    preferences = [tuple(float(w) for w in p) for p in sweep]
    scores = _as_matrix([list(v) for v in sweep.values()], f"mean scores of {method!r}")
    ref = _as_reference(reference, scores.shape[1])
    return SweepResult(
        method=method,
        preferences=tuple(preferences),
        scores=tuple(tuple(float(x) for x in row) for row in scores),
        reference=tuple(float(x) for x in ref),
        hypervolume=hypervolume(scores, ref),
        mean_inner_product=mean_inner_product(preferences, scores),
    )
