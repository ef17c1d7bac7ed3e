"""Overlay several sweeps: one Pareto plot and one markdown table for a set of results folders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from uniarm.errors import UniarmError
from uniarm.evaluation.config import REFERENCE_POINTS
from uniarm.evaluation.metrics import SweepResult, summarise_sweep
from uniarm.evaluation.plots import plot_fronts
from uniarm.evaluation.report import write_report


def read_summary(folder: str | Path) -> dict:
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise UniarmError(f"{folder} holds no summary.json", "run `uniarm evaluate` into it first")
    return json.loads(path.read_text())


def as_result(summary: dict, reference: Sequence[float]) -> SweepResult:
    """HV and MIP of a stored sweep, measured from `reference`; the base model's one point
    stands at every preference of the grid."""
    points = {tuple(p["preference"] or ()): tuple(p["scores"]) for p in summary["points"]}
    sweep = {tuple(g): points.get(tuple(g)) or points[()] for g in summary["grid"]}
    return summarise_sweep(summary["method"], sweep, reference)  # repeats add no volume


def compare(
    folders: Sequence[str | Path],
    plot_path: Path,
    report_path: Path,
    title: str,
    reference: Sequence[float] | None = None,
) -> list[dict]:
    """Write the overlay plot and report of the sweeps in `folders`; return their summaries,
    with HV and MIP measured from one reference point (default: the task's)."""
    summaries = [read_summary(f) for f in folders]
    first = summaries[0]
    for s in summaries[1:]:
        if (s["task"], s["oracle"]) != (first["task"], first["oracle"]):
            raise UniarmError(
                f"results of {s['method']} and {first['method']} are not comparable "
                "(their task or oracle differ)",
                "evaluate every method with the same task and oracle",
            )
    reference = tuple(reference or REFERENCE_POINTS[first["task"]])
    results = [as_result(s, reference) for s in summaries]
    summaries = [
        {
            **s,
            "reference": list(reference),
            "hypervolume": r.hypervolume,
            "mean_inner_product": r.mean_inner_product,
        }
        for s, r in zip(summaries, results, strict=True)
    ]
    fronts = {
        s["method"]: [
            (None if p["preference"] is None else tuple(p["preference"]), p["scores"])
            for p in s["points"]
        ]
        for s in summaries
    }
    plot_fronts(fronts, first["objectives"], plot_path, title, first["oracle"], reference=reference)
    write_report(report_path, results, first["objectives"], first["oracle"], title=title)
    return summaries
