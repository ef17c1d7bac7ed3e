"""Pictures of the fronts that preference sweeps trace in objective space (METHOD.md §6).

    plot_fronts({"uniarm": [((0.0, 1.0), [0.2, 1.3]), ((1.0, 0.0), [1.1, -0.4])],
                 "base": [(None, [0.1, 0.0])]},
                objectives=("helpful", "harmless"), path="runs/front.png",
                title="safety task", oracle_name="distilled MiniLM oracle")

Two objectives give one scatter-and-line plot with each point labelled by its preference
(points that coincide get one label for the group). Three give the three pairwise projections
plus a 3-D view. The figure names the oracle that scored the objectives (in its title, or on
each axis when each objective has its own), so that a distilled scorer is never read as the
original reward model.

A plot is a derived artefact: `plot_fronts` replaces an existing file at `path` (atomically,
and says so in the log). Whether an existing plot may be replaced is the caller's decision.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from uniarm.errors import UniarmError
from uniarm.evaluation.metrics import preference_label
from uniarm.io import atomic_path

log = logging.getLogger(__name__)

# One (preference, mean score vector) pair per evaluated preference; preference None marks a
# point that no preference produced, such as the unguided base model.
FrontPoint = tuple[Sequence[float] | None, Sequence[float]]

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
BASE_STYLE = {"marker": "*", "s": 180, "color": "black", "zorder": 5}


def _axis_labels(objectives: Sequence[str], oracle_name: str | Sequence[str]) -> list[str]:
    """The objective names, each with its own oracle when there is one per objective (a name
    such as "distilled-minilm (ridge on beaver-7b scores)" may hold parentheses itself)."""
    if isinstance(oracle_name, str):
        return list(objectives)
    names = list(oracle_name)
    if len(names) != len(objectives):
        raise UniarmError(
            f"{len(names)} oracle names for {len(objectives)} objectives",
            "give one oracle name, or one per objective",
        )
    return [
        f"{objective} — oracle: {name}" for objective, name in zip(objectives, names, strict=True)
    ]


def _coinciding(swept: Sequence[FrontPoint], i: int, j: int, tolerance: tuple[float, float]):
    """The swept points grouped by where they land on the (i, j) panel: points closer than
    `tolerance` (per axis) to a group's first point join it. Groups keep the sweep's order."""
    groups: list[list[FrontPoint]] = []
    for point in swept:
        s = point[1]
        for group in groups:
            anchor = group[0][1]
            if abs(s[i] - anchor[i]) <= tolerance[0] and abs(s[j] - anchor[j]) <= tolerance[1]:
                group.append(point)
                break
        else:
            groups.append([point])
    return groups


def _group_label(group: Sequence[FrontPoint], order: Sequence[tuple], label_all: bool):
    """One label for points that coincide: the preference, a run `first … last` of the sweep's
    order, or the count. Without `label_all` only a group holding a simplex corner gets one."""
    preferences = [tuple(p) for p, _ in group]
    corners = [p for p in preferences if max(p) == 1.0]
    if not label_all and not corners:
        return None
    if len(preferences) == 1:
        return preference_label(preferences[0])
    if not label_all:
        return f"{len(preferences)} preferences with " + ", ".join(map(preference_label, corners))
    positions = sorted(order.index(p) for p in preferences)
    if positions == list(range(positions[0], positions[-1] + 1)):
        return f"{preference_label(order[positions[0]])} … {preference_label(order[positions[-1]])}"
    return f"{len(preferences)} preferences"


def _tolerance(fronts, i: int, j: int) -> tuple[float, float]:
    """What counts as one spot on a panel: 1% of the spread of all its points, per axis."""
    scores = [s for points in fronts.values() for _, s in points]
    spans = [max(s[a] for s in scores) - min(s[a] for s in scores) for a in (i, j)]
    return tuple(0.01 * span for span in spans)


def _check_fronts(fronts: Mapping[str, Sequence[FrontPoint]], k: int) -> None:
    if not fronts:
        raise UniarmError("no fronts to plot", "pass at least one method's sweep")
    for method, points in fronts.items():
        if not points:
            raise UniarmError(f"the front of {method!r} has no points")
        for preference, scores in points:
            if len(scores) != k or not all(math.isfinite(float(s)) for s in scores):
                raise UniarmError(
                    f"{method!r} has a score vector {tuple(scores)} that is not {k} finite numbers",
                    "give one finite mean score per objective",
                )
            if preference is not None and len(preference) != k:
                raise UniarmError(f"{method!r} has a preference {tuple(preference)} of wrong size")


def _split(points: Sequence[FrontPoint]) -> tuple[list[FrontPoint], list[Sequence[float]]]:
    """Points that a preference produced, sorted along the first weight; and the others."""
    swept = sorted(((tuple(p), tuple(s)) for p, s in points if p is not None), key=lambda ps: ps[0])
    loose = [tuple(s) for p, s in points if p is None]
    return swept, loose


def _draw_pair(ax, fronts, i: int, j: int, label_all: bool, reference) -> None:
    """One 2-D panel: objective i across, objective j up."""
    tolerance = _tolerance(fronts, i, j)
    for n, (method, points) in enumerate(fronts.items()):
        swept, loose = _split(points)
        if swept:
            xs = [s[i] for _, s in swept]
            ys = [s[j] for _, s in swept]
            marker = MARKERS[n % len(MARKERS)]
            ax.plot(
                xs,
                ys,
                marker=marker,
                linestyle="-" if label_all else "none",
                color=f"C{n}",
                label=method,
                alpha=0.85,
            )
            order = [p for p, _ in swept]
            for group in _coinciding(swept, i, j, tolerance):
                # With three objectives only the simplex corners are named; all 36 would pile up.
                text = _group_label(group, order, label_all)
                if text:
                    ax.annotate(
                        text,
                        (group[0][1][i], group[0][1][j]),
                        fontsize=7,
                        xytext=(4, 4),
                        textcoords="offset points",
                        color=f"C{n}",
                    )
        if loose:
            ax.scatter(
                [s[i] for s in loose],
                [s[j] for s in loose],
                label=method if not swept else f"{method} (no preference)",
                **BASE_STYLE,
            )
    if reference is not None:
        # Named, not drawn: a reference far below the fronts would squash them into a corner.
        ax.plot([], [], " ", label=f"HV reference: ({reference[i]:g}, {reference[j]:g})")
    ax.grid(True, alpha=0.3)


def _draw_3d(ax, fronts) -> None:
    for n, (method, points) in enumerate(fronts.items()):
        swept, loose = _split(points)
        if swept:
            xs, ys, zs = zip(*(s for _, s in swept), strict=True)
            ax.scatter(xs, ys, zs, marker=MARKERS[n % len(MARKERS)], color=f"C{n}", label=method)
        if loose:
            xs, ys, zs = zip(*loose, strict=True)
            ax.scatter(xs, ys, zs, label=method, **BASE_STYLE)


def front_figure(
    fronts: Mapping[str, Sequence[FrontPoint]],
    objectives: Sequence[str],
    title: str,
    oracle_name: str | Sequence[str],
    *,
    reference: Sequence[float] | None = None,
) -> Figure:
    """The figure `plot_fronts` writes, for a caller that wants to place or save it itself.

    Drawn on a `Figure` with the Agg canvas, never through pyplot, so no global backend or
    figure registry is touched.
    """
    k = len(objectives)
    if k not in (2, 3):
        raise UniarmError(f"cannot plot {k} objectives", "plot_fronts draws 2 or 3 objectives")
    if reference is not None and len(reference) != k:
        raise UniarmError(f"reference point {tuple(reference)} does not have {k} values")
    labels = _axis_labels(objectives, oracle_name)
    _check_fronts(fronts, k)

    if k == 2:
        fig = Figure(figsize=(7.5, 6), layout="constrained")
        ax = fig.add_subplot()
        _draw_pair(ax, fronts, 0, 1, True, reference)
        ax.set_xlabel(labels[0])
        ax.set_ylabel(labels[1])
        ax.legend(fontsize=8)
    else:
        fig = Figure(figsize=(12, 10), layout="constrained")
        for panel, (i, j) in enumerate(((0, 1), (0, 2), (1, 2)), start=1):
            ax = fig.add_subplot(2, 2, panel)
            _draw_pair(ax, fronts, i, j, False, reference)
            ax.set_xlabel(labels[i])
            ax.set_ylabel(labels[j])
        ax3 = fig.add_subplot(2, 2, 4, projection="3d")
        _draw_3d(ax3, fronts)
        ax3.set_xlabel(labels[0], fontsize=8)
        ax3.set_ylabel(labels[1], fontsize=8)
        ax3.set_zlabel(labels[2], fontsize=8)
        handles, names = fig.axes[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="outside lower center", ncol=min(len(names), 6))
    if isinstance(oracle_name, str):
        title = f"{title}\noracle: {oracle_name}"
    fig.suptitle(title)
    FigureCanvasAgg(fig)
    return fig


def plot_fronts(
    fronts: Mapping[str, Sequence[FrontPoint]],
    objectives: Sequence[str],
    path: str | os.PathLike,
    title: str,
    oracle_name: str | Sequence[str],
    *,
    reference: Sequence[float] | None = None,
    dpi: int = 130,
) -> Path:
    """Draw each method's front of mean scores and write it to `path` as a PNG.

    Args:
        fronts: method name -> list of (preference, mean score vector); preference None for a
            point no preference produced (the base model), drawn as a black star.
        objectives: the objective names, in the order of the score vectors (2 or 3 of them).
        path: where the PNG goes; it must end in .png. An existing file is replaced.
        title: the figure's title.
        oracle_name: the oracle that scored all objectives, or one name per objective.
        reference: the hypervolume's reference point, drawn as a grey cross if given.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise UniarmError(f"plot path {path} does not end in .png", "plots are written as PNG")
    fig = front_figure(fronts, objectives, title, oracle_name, reference=reference)

    if path.exists():
        log.info("replacing existing plot %s", path)
    with atomic_path(path) as tmp:
        # The temporary file ends in .tmp, so the format cannot be left to the suffix.
        fig.savefig(tmp, format="png", dpi=dpi)
    log.info("wrote %s", path)
    return path
