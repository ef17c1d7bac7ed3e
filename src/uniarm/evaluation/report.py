"""A markdown report of one or several methods' sweeps: HV, MIP and mean scores (METHOD.md §6).

    write_report("runs/report.md", [uniarm_result, parm_result],
                 objectives=("helpful", "harmless"), oracle_name="distilled MiniLM oracle")

The first table gives each method's hypervolume, mean inner product and the reference point
the hypervolume was measured from; the second gives the mean score vector at each preference,
one column per method. The oracle is named in the heading, so the numbers are never read as
scores of a different reward model, and, when the caller gives them, one line states the
settings behind the numbers (split, prompts, max_new_tokens, beta, grid size, ARM), naming
any that differ between the methods. An HV of 0 gets a line saying why.

Like a plot, a report is derived from stored results: `write_report` replaces an existing file
(atomically, and says so in the log); the caller decides whether that is allowed.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from uniarm.errors import UniarmError
from uniarm.evaluation.metrics import SweepResult, preference_label
from uniarm.io import write_text

log = logging.getLogger(__name__)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _numbers(values: Sequence[float]) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


# How each setting of `render_report(settings=...)` reads, in the order the line gives them.
SETTING_TEXT = {
    "split": lambda v: f"{v} split",
    "prompts": lambda v: f"{v} prompts",
    "max_new_tokens": lambda v: f"max_new_tokens {v}",
    "beta": lambda v: f"beta {v:g}",
    "grid": lambda v: f"{v} preferences",
}


def hypervolume_note(hypervolume: float, reference: Sequence[float]) -> str | None:
    """Why an HV is 0 (every point lies on or below the reference in some objective); None for
    another HV."""
    if hypervolume != 0.0:
        return None
    ref = ", ".join(f"{v:g}" for v in reference)
    return f"HV 0: no point dominates the reference point ({ref})"


def settings_line(methods: Sequence[str], settings: Sequence[Mapping]) -> str:
    """One line of the settings behind the numbers: those the methods share, then those that
    differ with each method's value, then each method's ARM. A setting given as None (not
    recorded, or not applying to that method) is left out."""

    def raw(value):
        return f"{value:g}" if isinstance(value, float) else str(value)

    shared, mixed = [], []
    for key in SETTING_TEXT:
        known = [
            (m, s[key]) for m, s in zip(methods, settings, strict=True) if s.get(key) is not None
        ]
        if len({v for _, v in known}) == 1:
            shared.append(SETTING_TEXT[key](known[0][1]))
        elif known:
            mixed.append(f"{key} (" + ", ".join(f"{m} {raw(v)}" for m, v in known) + ")")
    line = "Settings: " + ", ".join(shared)
    if mixed:
        line += "; differing (overlaid as asked): " + "; ".join(mixed)
    arms = [s.get("arm") or "none (base model alone)" for s in settings]
    if len(methods) == 1:
        line += f". ARM: {arms[0]}."
    else:
        line += ". ARMs: " + ", ".join(f"{m} {a}" for m, a in zip(methods, arms, strict=True)) + "."
    return line


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
    settings: Sequence[Mapping] | None = None,
) -> str:
    """The markdown text of the report (see the module docstring).

    Args:
        settings: per result, what its numbers come from: `split`, `prompts` (the count
            decoded), `max_new_tokens`, `beta`, `grid` (number of preferences) and `arm`.
    """
    _check(results, objectives)
    if settings is not None and len(settings) != len(results):
        raise UniarmError(f"{len(settings)} settings for {len(results)} results", "give one each")
    names = ", ".join(objectives)
    lines = [
        f"# {title}",
        "",
        f"Oracle: {oracle_name}. Objectives ({names}), each higher = better.",
    ]
    if settings is not None:
        lines += ["", settings_line([r.method for r in results], settings)]
    zero = [r.method for r in results if r.hypervolume == 0.0]
    if zero:  # one reference for all (checked above)
        lines += ["", f"{', '.join(zero)} — {hypervolume_note(0.0, results[0].reference)}."]
    lines += [
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
    settings: Sequence[Mapping] | None = None,
) -> Path:
    """Write `render_report(...)` to `path` atomically, replacing an existing file."""
    text = render_report(results, objectives, oracle_name, title, settings)
    path = Path(path)
    if path.exists():
        log.info("replacing existing report %s", path)
    write_text(path, text)
    log.info("wrote %s", path)
    return path
