"""Overlay several sweeps: one Pareto plot and one markdown table for a set of results folders.

Numbers of sweeps run differently (other prompts, fewer of them, shorter replies, another beta
or grid) do not measure the same thing, so `compare` refuses to overlay them unless told to
(`allow_mixed`), and then the report names what differs. Sweeps of another task or oracle are
on other axes or another scale: no opt-in overlays those. What each sweep was run with is read
from its folder: `eval.json` (the run's settings), `summary.json` and `scores.jsonl` (the
prompts actually decoded).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from uniarm.errors import UniarmError
from uniarm.evaluation.config import REFERENCE_POINTS
from uniarm.evaluation.metrics import SweepResult, summarise_sweep
from uniarm.evaluation.plots import plot_fronts
from uniarm.evaluation.report import write_report

# The settings that make two sweeps' numbers comparable, with the flag that sets each. The HV
# reference is not among them: every HV of a comparison is measured again from one point.
ALIKE = {
    "task": "--task",
    "oracle": "--oracle",
    "split": "--split",
    "prompts": "--num-prompts",
    "max_new_tokens": "--max-new-tokens",
    "beta": "--beta",
    "grid": "--edge-step / --interior-step",
}
NEVER_MIXED = ("task", "oracle")


def read_summary(folder: str | Path) -> dict:
    path = Path(folder) / "summary.json"
    if not path.is_file():
        raise UniarmError(f"{folder} holds no summary.json", "run `uniarm evaluate` into it first")
    return json.loads(path.read_text())


def read_settings(folder: str | Path, summary: dict) -> dict:
    """What a stored sweep's numbers come from; None where its folder does not say or the
    setting does not apply (beta, to the base model alone).

    The prompts are counted in `scores.jsonl` when it is there: an older eval.json or
    summary.json recorded the count asked for, which the split may not have held.
    """
    folder = Path(folder)
    marker = folder / "eval.json"
    recorded = json.loads(marker.read_text()) if marker.is_file() else {}
    return {
        "task": summary["task"],
        "oracle": summary["oracle"],
        # a test run's eval.json names no split (it predates the option)
        "split": recorded.get("split", "test") if recorded else None,
        "prompts": decoded_prompts(folder, summary),
        "max_new_tokens": recorded.get("max_new_tokens"),
        "beta": recorded.get("beta") if summary.get("guided", True) else None,
        "grid": len(summary["grid"]),
        "arm": recorded.get("arm"),
    }


def decoded_prompts(folder: Path, summary: dict) -> int:
    path = folder / "scores.jsonl"
    if not path.is_file():
        return summary["num_prompts"]
    with open(path) as f:
        return len({json.loads(line)["prompt_id"] for line in f if line.strip()})


def differences(settings: Sequence[dict]) -> list[str]:
    """The settings of `ALIKE` whose values are not the same for every sweep that has one."""
    return [key for key in ALIKE if len({repr(s[key]) for s in settings if s[key] is not None}) > 1]


def check_alike(methods: Sequence[str], settings: Sequence[dict], allow_mixed: bool) -> None:
    """Refuse sweeps that were not run alike: always for another task or oracle, otherwise
    unless `allow_mixed`. The error names, per differing setting, each sweep's value."""
    differ = differences(settings)
    never = [key for key in differ if key in NEVER_MIXED]
    if not differ or (allow_mixed and not never):
        return
    each = "; ".join(
        f"{key}: "
        + ", ".join(
            f"{m} {s[key]}" for m, s in zip(methods, settings, strict=True) if s[key] is not None
        )
        for key in differ
    )
    if never:
        raise UniarmError(
            f"the sweeps are not comparable: their scores lie on other axes or scales ({each})",
            f"evaluate every method with the same {' and '.join(never)}",
        )
    flags = ", ".join(ALIKE[key] for key in differ)
    raise UniarmError(
        f"the sweeps were not run alike ({each})",
        f"re-run them with the same {flags} (`uniarm evaluate ... --overwrite` replaces the "
        "run in a folder), or pass --allow-mixed to overlay them anyway (the report then lists "
        "the differences)",
    )


def as_result(summary: dict, reference: Sequence[float], label: str | None = None) -> SweepResult:
    """HV and MIP of a stored sweep, measured from `reference`; the base model's one point
    stands at every preference of the grid. `label` names it (default: its method)."""
    points = {tuple(p["preference"] or ()): tuple(p["scores"]) for p in summary["points"]}
    sweep = {tuple(g): points.get(tuple(g)) or points[()] for g in summary["grid"]}
    return summarise_sweep(label or summary["method"], sweep, reference)  # repeats: no volume


def run_labels(methods: Sequence[str], folders: Sequence[str | Path]) -> list[str]:
    """Each sweep's name in the plot and tables: its method, with its folder's name added
    where two sweeps share a method (two seeds of one method, say)."""
    return [
        m if methods.count(m) == 1 else f"{m} ({Path(f).name})"
        for m, f in zip(methods, folders, strict=True)
    ]


def compare(
    folders: Sequence[str | Path],
    plot_path: Path,
    report_path: Path,
    title: str,
    reference: Sequence[float] | None = None,
    *,
    allow_mixed: bool = False,
) -> list[dict]:
    """Write the overlay plot and report of the sweeps in `folders`; return their summaries,
    with HV and MIP measured from one reference point (default: the task's).

    Args:
        allow_mixed: overlay sweeps run with other prompts, replies or grids (see `ALIKE`);
            the report states what differs. Nothing overlays sweeps of another task or oracle.
    """
    summaries = [read_summary(f) for f in folders]
    settings = [read_settings(f, s) for f, s in zip(folders, summaries, strict=True)]
    methods = [s["method"] for s in summaries]
    # an error names each sweep by its method, or by its folder where two share one
    names = methods if len(set(methods)) == len(methods) else [str(f) for f in folders]
    check_alike(names, settings, allow_mixed)
    first = summaries[0]
    reference = tuple(reference or REFERENCE_POINTS[first["task"]])
    labels = run_labels(methods, folders)
    results = [as_result(s, reference, label) for s, label in zip(summaries, labels, strict=True)]
    summaries = [
        {
            **s,
            "reference": list(reference),
            "hypervolume": r.hypervolume,
            "mean_inner_product": r.mean_inner_product,
            "label": r.method,
        }
        for s, r in zip(summaries, results, strict=True)
    ]
    fronts = {
        label: [
            (None if p["preference"] is None else tuple(p["preference"]), p["scores"])
            for p in s["points"]
        ]
        for label, s in zip(labels, summaries, strict=True)
    }
    plot_fronts(fronts, first["objectives"], plot_path, title, first["oracle"], reference=reference)
    write_report(
        report_path, results, first["objectives"], first["oracle"], title=title, settings=settings
    )
    return summaries
