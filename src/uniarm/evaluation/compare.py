"""Overlay several sweeps: one Pareto plot and one markdown table for a set of results folders."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from uniarm.errors import UniarmError
from uniarm.evaluation.metrics import SweepResult
from uniarm.evaluation.plots import plot_fronts
from uniarm.evaluation.report import write_report


def read_summary(folder: str | Path) -> dict:
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise UniarmError(f"{folder} holds no summary.json", "run `uniarm evaluate` into it first")
    return json.loads(path.read_text())


def as_result(summary: dict) -> SweepResult:
    """The summary as a SweepResult; the base model's one point stands at every preference."""
    points = {tuple(p["preference"] or ()): tuple(p["scores"]) for p in summary["points"]}
    grid = [tuple(g) for g in summary["grid"]]
    scores = [points.get(g) or points[()] for g in grid]
    return SweepResult(
        method=summary["method"],
        preferences=tuple(grid),
        scores=tuple(scores),
        reference=tuple(summary["reference"]),
        hypervolume=summary["hypervolume"],
        mean_inner_product=summary["mean_inner_product"],
    )


def compare(
    folders: Sequence[str | Path], plot_path: Path, report_path: Path, title: str
) -> list[dict]:
    """Write the overlay plot and report of the sweeps in `folders`; return their summaries."""
    summaries = [read_summary(f) for f in folders]
    first = summaries[0]
    for s in summaries[1:]:
        if (s["task"], s["oracle"], s["reference"]) != (
            first["task"],
            first["oracle"],
            first["reference"],
        ):
            raise UniarmError(
                f"results of {s['method']} and {first['method']} are not comparable "
                "(task, oracle or reference point differ)",
                "evaluate every method with the same task, oracle and reference point",
            )
    fronts = {
        s["method"]: [
            (None if p["preference"] is None else tuple(p["preference"]), p["scores"])
            for p in s["points"]
        ]
        for s in summaries
    }
    plot_fronts(
        fronts, first["objectives"], plot_path, title, first["oracle"], reference=first["reference"]
    )
    results = [as_result(s) for s in summaries]
    write_report(report_path, results, first["objectives"], first["oracle"], title=title)
    return summaries
