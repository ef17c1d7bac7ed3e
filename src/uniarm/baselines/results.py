"""The comparison's results: one JSON, one markdown table and one Pareto plot per task.

Per method, over its seeds: HV and MIP as mean ± sample standard deviation (with every seed's
value), the reference point, trainable parameters, training time, decoding tokens/s and the
mean score vector at each preference. Then the paper's pairwise claims (UniARM against PARM,
and the rest), measured here and set beside the paper's: a difference no larger than the seed
spread is reported as no win. The HV reference point and the oracle are the task's, the same
for every method; they are not the paper's (other oracles, other base model), so only relative
differences can be set beside the paper's numbers.

Results files are never replaced silently: the same results again leave them as they are;
other results are refused unless `overwrite`, which first moves the old files aside.
"""

from __future__ import annotations

import datetime
import json
import logging
import math
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from uniarm.baselines.diagnostics import method_diagnostics
from uniarm.baselines.markdown import render_markdown
from uniarm.errors import UniarmError
from uniarm.io import write_json, write_text
from uniarm.objectives import get_task

log = logging.getLogger(__name__)

RESULTS_FORMAT = "uniarm-compare-results/1"

# HV / MIP as printed in the paper (METHOD.md): Table 2 and 5 (safety), Table 4 (assistant),
# Table 3 (safety, weak-to-strong: 7B ARMs guiding a 65B base).
PAPER = {
    "safety": {
        "rs": (68.54, 1.61),
        "mod": (88.73, 2.36),
        "genarm": (97.68, 1.78),
        "parm": (108.95, 2.75),
        "uniarm": (129.16, 3.58),
        "uniarm-noglobal": (123.53, 3.23),
        "uniarm-modonly": (99.52, 2.20),
        "genarm-w2s": (97.37, 1.07),
        "parm-w2s": (119.16, 1.21),
        "uniarm-w2s": (125.62, 1.34),
    },
    "assistant": {"genarm": (111.72, 1.99), "parm": (120.85, 3.52), "uniarm": (131.81, 3.76)},
}
# The claims checked: (method, against); the first is the paper's headline (+18.5% HV,
# +30.2% MIP on the safety task).
CLAIMS = (
    ("uniarm", "parm"),
    ("uniarm", "genarm"),
    ("uniarm", "mod"),
    ("uniarm", "rs"),
    ("uniarm", "uniarm-noglobal"),
    ("uniarm", "uniarm-modonly"),
    ("uniarm-centered", "parm"),
    ("uniarm-centered", "uniarm"),
    ("parm", "genarm"),
    ("uniarm-w2s", "parm-w2s"),
    ("uniarm-w2s", "genarm-w2s"),
)
NO_STRONG_BASE = (
    "not run: no larger model of the base model's family can be had on this machine (no hub "
    "access; SmolLM2-135M-Instruct is the only SmolLM2 model here), so there is no "
    "weak-to-strong row. Pass --strong-base with a larger model folder of the same tokenizer "
    "(e.g. SmolLM2-360M/1.7B-Instruct) to run it."
)


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (None for one value) and the values themselves."""
    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n if n else None
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n, "per_seed": values}


def compare_pair(a: dict, b: dict, metric: str) -> dict[str, Any]:
    """Method a against method b on one metric: difference, relative change and a verdict.

    The spread of the difference is sqrt(std_a² + std_b²) over seeds; a difference no larger
    than that is read as no win either way.
    """
    ma, mb = a[metric]["mean"], b[metric]["mean"]
    diff = ma - mb
    relative = 100.0 * diff / abs(mb) if mb else None
    sa, sb = a[metric]["std"], b[metric]["std"]
    if sa is None or sb is None:
        noise, verdict = None, "one seed: no spread measured, so no difference can be called a win"
    else:
        noise = math.sqrt(sa**2 + sb**2)
        if abs(diff) <= noise:
            verdict = "within the seed spread: no win"
        else:
            verdict = (
                "ahead by more than the seed spread"
                if diff > 0
                else "behind by more than the seed spread"
            )
    return {"difference": diff, "relative_pct": relative, "spread": noise, "verdict": verdict}


def paper_gain(task: str, method: str, against: str) -> dict[str, float] | None:
    table = PAPER.get(task, {})
    if method not in table or against not in table:
        return None
    (hv_a, mip_a), (hv_b, mip_b) = table[method], table[against]
    return {
        "hypervolume_pct": 100.0 * (hv_a - hv_b) / hv_b,
        "mean_inner_product_pct": 100.0 * (mip_a - mip_b) / mip_b,
    }


# -- collecting --------------------------------------------------------------------------------


def _summary(record: dict) -> dict:
    return json.loads((Path(record["result"]["path"]) / "summary.json").read_text())


def method_entry(method: str, label: str, evals: list[dict], trainings: list[dict | None]) -> dict:
    """One row of the results: a method's sweeps over its seeds, summarised."""
    from uniarm.baselines.study import METHODS

    summaries = [_summary(r) for r in evals]
    seeds = [r["result"]["seed"] for r in evals]
    points = []
    for index, point in enumerate(summaries[0]["points"]):
        per_seed = [s["points"][index]["scores"] for s in summaries]
        columns = list(zip(*per_seed, strict=True))
        points.append(
            {
                "preference": point["preference"],
                "label": point["label"],
                "mean": [spread(c)["mean"] for c in columns],
                "std": [spread(c)["std"] for c in columns],
                "per_seed": per_seed,
            }
        )
    speeds = [r["result"]["decoding"]["tokens_per_s"] for r in evals]
    trained = [t for t in trainings if t is not None]
    info = METHODS[method]
    return {
        "method": method,
        "title": info.title + (" (weak-to-strong)" if label.endswith("-w2s") else ""),
        "kind": info.kind,
        "base_model": evals[0]["result"]["base_model"],
        "seeds": seeds,
        "hypervolume": spread([s["hypervolume"] for s in summaries]),
        "mean_inner_product": spread([s["mean_inner_product"] for s in summaries]),
        "reference": summaries[0]["reference"],
        "trainable_parameters": trained[0]["result"]["trainable_parameters"] if trained else 0,
        "training": info.training,
        "training_seconds": spread([t["seconds"] for t in trained]) if trained else None,
        "decoding_tokens_per_s": spread([v for v in speeds if v is not None]),
        "points": points,
        "_summaries": summaries,
    }


def collect_results(runner) -> dict[str, Any]:
    """The results of a finished study (a `study.Study` whose stages have all run)."""
    from uniarm.baselines.study import METHODS, WEAK_TO_STRONG

    study, settings, stages = runner.study, runner.settings, runner.manifest.stages
    task = get_task(study.task)

    def done(name: str) -> dict:
        record = stages.get(name)
        if not record or record.get("status") != "done":
            raise UniarmError(f"stage {name} has not finished", "run the study to the end first")
        return record

    def trainings(method: str) -> list[dict | None]:
        training = METHODS[method].training
        if training is None:
            return [None]
        return [done(f"train/{training}-seed{s}") for s in settings.seeds]

    entries: dict[str, dict] = {}
    for method in study.methods:
        if METHODS[method].training is None:
            entries[method] = method_entry(method, method, [done("eval/base")], [None])
        else:
            evals = [done(f"eval/{method}-seed{s}") for s in settings.seeds]
            entries[method] = method_entry(method, method, evals, trainings(method))
    strong: dict[str, dict] = {}
    if study.strong_base:
        strong["base-w2s"] = method_entry("base", "base-w2s", [done("eval/base-w2s")], [None])
        for method in (m for m in WEAK_TO_STRONG if m in study.methods):
            evals = [done(f"eval/{method}-w2s-seed{s}") for s in settings.seeds]
            strong[f"{method}-w2s"] = method_entry(
                method, f"{method}-w2s", evals, trainings(method)
            )

    everything = {**entries, **strong}
    first = next(iter(everything.values()))["_summaries"][0]
    for label, entry in everything.items():
        for s in entry.pop("_summaries"):
            if (s["oracle"], s["reference"], s["task"]) != (
                first["oracle"],
                first["reference"],
                first["task"],
            ):
                raise UniarmError(f"{label} was scored with another oracle or reference point")

    diagnostics = {}
    base_sweep = Path(done("eval/base")["result"]["path"]) if "base" in study.methods else None
    for method in entries:
        if base_sweep is None or method == "base":
            continue
        evals = [Path(done(f"eval/{method}-seed{s}")["result"]["path"]) for s in settings.seeds]
        runs = []
        if METHODS[method].kind == "arm":  # a reward model whose training logged accuracy
            runs = [Path(t["result"]["path"]).parent for t in trainings(method) if t]
        diagnostics[method] = method_diagnostics(
            base_sweep, evals, runs, settings.train.get("eval_pairs")
        )

    claims = []
    for method, against in CLAIMS:
        if method in everything and against in everything:
            claims.append(
                {
                    "method": method,
                    "against": against,
                    "hypervolume": compare_pair(
                        everything[method], everything[against], "hypervolume"
                    ),
                    "mean_inner_product": compare_pair(
                        everything[method], everything[against], "mean_inner_product"
                    ),
                    "paper": paper_gain(study.task, method, against),
                }
            )
    return {
        "format": RESULTS_FORMAT,
        "task": study.task,
        "objectives": list(task.objectives),
        "scale": study.profile,
        "oracle": first["oracle"],
        "reference": first["reference"],
        "grid": first["grid"],
        "num_prompts": first["num_prompts"],
        "settings": {**runner.identity(), "seeds": settings.seeds, "methods": study.methods},
        "methods": entries,
        "claims": claims,
        "diagnostics": diagnostics,
        "weak_to_strong": (
            {"status": "run", "strong_base": study.strong_base, "methods": strong}
            if study.strong_base
            else {"status": NO_STRONG_BASE}
        ),
        "paper": PAPER.get(study.task, {}),
        "run": {
            "command": " ".join(sys.argv),
            "date": datetime.datetime.now().isoformat(timespec="seconds"),
            "machine": platform.platform(),
            "python": platform.python_version(),
            "study_folder": str(runner.folder),
        },
    }


# -- writing -----------------------------------------------------------------------------------


def write_results(results: dict, folder: str | Path, stem: str, overwrite: bool = False) -> dict:
    """Write <stem>.json, .md and .png (and -w2s.png) unless the same results are there.

    Returns {"written": bool, "paths": [...]}. Other results in the way are refused unless
    `overwrite`; then they are moved aside to <name>.old-<time> first.
    """
    folder = Path(folder)
    paths = {ext: folder / f"{stem}.{ext}" for ext in ("json", "md", "png")}
    strong_plot = folder / f"{stem}-w2s.png"
    existing = [p for p in (*paths.values(), strong_plot) if p.exists()]
    if paths["json"].is_file():
        old = json.loads(paths["json"].read_text())
        if _comparable(old) == _comparable(results) and all(p.exists() for p in paths.values()):
            log.info("%s holds these results already; left as they are", paths["json"])
            return {"written": False, "paths": [str(p) for p in existing]}
    if existing and not overwrite:
        raise UniarmError(
            f"{paths['json']} (or its table or plot) holds other results",
            "pass --overwrite to move the old files aside and write these, or "
            "choose another --results-dir",
        )
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    for path in existing:
        aside = path.with_name(f"{path.stem}.old-{stamp}{path.suffix}")
        path.rename(aside)
        log.warning("moved the earlier %s to %s", path.name, aside.name)

    write_json(paths["json"], results)
    write_text(paths["md"], render_markdown(results))
    plot_results(results, results["methods"], paths["png"], "")
    written = list(paths.values())
    if results["weak_to_strong"].get("methods"):
        plot_results(results, results["weak_to_strong"]["methods"], strong_plot, ", weak-to-strong")
        written.append(strong_plot)
    for path in written:
        if path.suffix != ".png":  # plot_fronts logs its own
            log.info("wrote %s", path)
    return {"written": True, "paths": [str(p) for p in written]}


def _comparable(results: dict) -> dict:
    """The results as JSON would store them, without when and how the run was started."""
    return json.loads(json.dumps({k: v for k, v in results.items() if k != "run"}, default=str))


def plot_results(results: dict, entries: dict, path: Path, note: str) -> None:
    """Every method's seed-mean front (the base model as a star) in one picture."""
    from uniarm.evaluation.plots import plot_fronts

    fronts = {
        label: [
            (None if p["preference"] is None else tuple(p["preference"]), p["mean"])
            for p in entry["points"]
        ]
        for label, entry in entries.items()
    }
    seeds = max(len(e["seeds"]) for e in entries.values())
    title = f"{results['task']} task, {results['scale']} scale{note}: mean of {seeds} seed(s)"
    plot_fronts(
        fronts,
        results["objectives"],
        path,
        title,
        results["oracle"],
        reference=results["reference"],
    )
