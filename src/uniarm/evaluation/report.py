"""A markdown report of one or several methods' sweeps: HV, MIP and mean scores (METHOD.md §6).

    write_report("runs/report.md", [uniarm_result, parm_result],
                 objectives=("helpful", "harmless"), oracle_name="distilled MiniLM oracle")

The first table gives each method's hypervolume, mean inner product and the reference point
the hypervolume was measured from; the second gives the mean score vector at each preference,
one column per method. The oracle is named in the heading, so the numbers are never read as
scores of a different reward model.

Like a plot, a report is derived from stored results: `write_report` replaces an existing file
(atomically, and says so in the log); the caller decides whether that is allowed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from uniarm.errors import UniarmError
from uniarm.evaluation.metrics import SweepResult, preference_label
from uniarm.io import write_text

log = logging.getLogger(__name__)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _numbers(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def _check(results: Sequence[SweepResult], objectives: Sequence[str]) -> None:
    if not results:
        raise UniarmError("no results to report", "pass at least one method's SweepResult")
    k = len(objectives)
    for result in results:
        if len(result.reference) != k:
            raise UniarmError(
                f"{result.method!r} has {len(result.reference)} objectives, the report has {k}",
                "report methods of one task together",
            )
    references = {result.reference for result in results}
    if len(references) > 1:
        raise UniarmError(
            f"the methods' hypervolumes use different reference points {sorted(references)}",
            "compute every method's HV from the task's one reference point",
        )


def render_report(
    results: Sequence[SweepResult],
    objectives: Sequence[str],
    oracle_name: str,
    title: str = "Preference sweep",
) -> str:
    """The markdown text of the report (see the module docstring)."""
    _check(results, objectives)
    names = ", ".join(objectives)
    lines = [
        f"# {title}",
        "",
        f"Oracle: {oracle_name}. Objectives ({names}), each higher = better.",
        "",
        f"| method | HV | MIP | reference ({names}) |",
        "|---|---:|---:|---|",
    ]
    for r in results:
        lines.append(
            f"| {_cell(r.method)} | {r.hypervolume:.3f} | {r.mean_inner_product:.3f} "
            f"| ({_numbers(r.reference)}) |"
        )

    # Union of preferences in first-seen order; a method not run at one gets a dash.
    preferences = list(dict.fromkeys(p for r in results for p in r.preferences))
    by_method = [dict(zip(r.preferences, r.scores, strict=True)) for r in results]
    lines += [
        "",
        f"Mean scores ({names}) at each preference ({'/'.join(objectives)}):",
        "",
        "| preference | " + " | ".join(_cell(r.method) for r in results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for p in preferences:
        cells = [_numbers(scores[p]) if p in scores else "–" for scores in by_method]
        lines.append(f"| {preference_label(p)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    path: str | os.PathLike,
    results: Sequence[SweepResult],
    objectives: Sequence[str],
    oracle_name: str,
    title: str = "Preference sweep",
) -> Path:
    """Write `render_report(...)` to `path` atomically, replacing an existing file."""
    text = render_report(results, objectives, oracle_name, title)
    path = Path(path)
    if path.exists():
        log.info("replacing existing report %s", path)
    write_text(path, text)
    log.info("wrote %s", path)
    return path
