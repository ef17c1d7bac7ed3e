"""The markdown table of a comparison's results (see results.py for what they hold)."""

from __future__ import annotations

import json


def _pm(stat: dict | None, digits: int = 3) -> str:
    if not stat or stat["mean"] is None:
        return "–"
    if stat["std"] is None:
        return f"{stat['mean']:.{digits}f}"
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1f}%"


def _method_rows(results: dict, entries: dict) -> list[str]:
    paper = results["paper"]
    lines = [
        "| method | HV | MIP | seeds | trainable params | training (s) | decoding tokens/s "
        "| paper HV / MIP |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for label, e in entries.items():
        printed = paper.get(label)
        lines.append(
            f"| {label} | {_pm(e['hypervolume'])} | {_pm(e['mean_inner_product'])} "
            f"| {len(e['seeds'])} | {e['trainable_parameters'] or 0:,} "
            f"| {_pm(e['training_seconds'], 0)} | {_pm(e['decoding_tokens_per_s'], 1)} "
            f"| {'–' if printed is None else f'{printed[0]:.2f} / {printed[1]:.2f}'} |"
        )
    return lines


def _claim_rows(results: dict) -> list[str]:
    if not results["claims"]:
        return ["No two methods of a claim were compared in this run."]
    lines = [
        "| claim | HV here | MIP here | paper HV / MIP | verdict (HV; MIP) |",
        "|---|---:|---:|---:|---|",
    ]
    for c in results["claims"]:
        hv, mip, paper = c["hypervolume"], c["mean_inner_product"], c["paper"]
        verdict = (
            hv["verdict"]
            if hv["verdict"] == mip["verdict"]
            else (f"{hv['verdict']}; {mip['verdict']}")
        )
        printed = (
            "–"
            if paper is None
            else f"{_pct(paper['hypervolume_pct'])} / {_pct(paper['mean_inner_product_pct'])}"
        )
        lines.append(
            f"| {c['method']} vs {c['against']} | {_pct(hv['relative_pct'])} "
            f"| {_pct(mip['relative_pct'])} | {printed} | {verdict} |"
        )
    return lines


def _headline(results: dict) -> list[str]:
    """One paragraph on the paper's main claim, UniARM against PARM, as measured here."""
    claim = next(
        (c for c in results["claims"] if (c["method"], c["against"]) == ("uniarm", "parm")), None
    )
    if claim is None:
        return []
    hv, mip, paper = claim["hypervolume"], claim["mean_inner_product"], claim["paper"]
    printed = (
        ""
        if paper is None
        else f" The paper reports {_pct(paper['hypervolume_pct'])} HV and "
        f"{_pct(paper['mean_inner_product_pct'])} MIP on this task."
    )
    return [
        f"**UniARM against PARM here:** HV {_pct(hv['relative_pct'])} ({hv['verdict']}), "
        f"MIP {_pct(mip['relative_pct'])} ({mip['verdict']}).{printed}",
        "",
    ]


def _zero_volume_note(results: dict) -> list[str]:
    flat = [label for label, e in results["methods"].items() if e["hypervolume"]["mean"] == 0]
    if not flat:
        return []
    return [
        f"HV is 0 for {', '.join(flat)}: every point of theirs lies below the reference point "
        "in some objective, so their fronts cover no volume; read MIP and the mean scores.",
        "",
    ]


def _score_rows(results: dict) -> list[str]:
    entries = results["methods"]
    labels = list(entries)
    lines = [
        "| preference | " + " | ".join(labels) + " |",
        "|---|" + "---|" * len(labels),
    ]
    for index, preference in enumerate(results["grid"]):
        cells = []
        for label in labels:
            points = entries[label]["points"]
            point = points[0] if points[0]["preference"] is None else points[index]
            cells.append(", ".join(f"{v:.3f}" for v in point["mean"]))
        lines.append(f"| {'/'.join(f'{v:g}' for v in preference)} | " + " | ".join(cells) + " |")
    return lines


def _diagnostic_rows(results: dict) -> list[str]:
    diagnostics = results.get("diagnostics") or {}
    if not diagnostics:
        return []
    grid = len(results["grid"])
    lines = [
        "## How far each method moved from the base model",
        "",
        "From the sweeps' replies, mean over seeds: the share of replies identical to the base "
        f"model's reply to the same prompt, and how many different replies a prompt gets over the "
        f"{grid} preferences (1: the preference changes nothing). Held-out accuracy: the trained "
        "reward model's pairwise accuracy on the validation pairs its training logged last "
        "(none for MOD and Rewarded Soups, whose policies are not reward models).",
        "",
        "| method | replies same as base | distinct replies per prompt | held-out accuracy |",
        "|---|---:|---:|---|",
    ]
    for label, d in diagnostics.items():
        accuracy = d["heldout_accuracy"]
        cell = "–"
        if accuracy:
            cell = ", ".join(f"{o} {v:.2f}" for o, v in accuracy["mean"].items())
            if accuracy.get("pairs"):
                cell += f" ({accuracy['pairs']} pairs)"
        same = "–" if d["same_as_base"] is None else f"{100 * d['same_as_base']:.0f}%"
        distinct = "–" if d["distinct_per_prompt"] is None else f"{d['distinct_per_prompt']:.2f}"
        lines.append(f"| {label} | {same} | {distinct} / {grid} | {cell} |")
    return [*lines, ""]


def render_markdown(results: dict) -> str:
    """The markdown report of a results dict."""
    objectives = ", ".join(results["objectives"])
    ref = ", ".join(f"{v:g}" for v in results["reference"])
    s = results["settings"]
    train, evaluate = s["train"], s["evaluate"]
    lines = [
        f"# Paper comparison: {results['task']} task, {results['scale']} scale",
        "",
        f"Oracle: {results['oracle']}. Objectives ({objectives}), each higher = better. "
        f"HV reference point ({ref}), the same for every method. "
        f"{results['num_prompts']} held-out {evaluate.get('split', 'test')} prompts × "
        f"{len(results['grid'])} preferences; "
        f"seeds {s['seeds']}; base model {s['base_model']}, split seed {s['split_seed']}.",
        f"Training: {json.dumps(train)}; per method: {json.dumps(s['method_train'])}; "
        f"DPO: {json.dumps(s['dpo'])}.",
        f"Decoding: {json.dumps(evaluate)} (greedy, the same for every method).",
        "",
        "HV and MIP are mean ± sample standard deviation over the seeds (training seeds: adapter "
        "initialisation, data order, preference draws; the prompts and decoding are fixed). "
        "The base model has no training and one point, counted at every preference for MIP. "
        "MOD and Rewarded Soups share one DPO training per seed (its time is given for both). "
        "The paper's numbers come from other oracles, base models and reference points: only "
        "relative differences compare.",
        "",
        *_method_rows(results, results["methods"]),
        "",
        *_headline(results),
        *_zero_volume_note(results),
        "## The paper's claims, measured here",
        "",
        "Relative differences of the seed means (method against the other); a difference no "
        "larger than the seed spread sqrt(std_a² + std_b²) is no win.",
        "",
        *_claim_rows(results),
        "",
        *_diagnostic_rows(results),
        "## Weak-to-strong",
        "",
    ]
    strong = results["weak_to_strong"]
    if strong.get("methods"):
        lines += [f"ARMs guiding {strong['strong_base']}:", ""]
        lines += _method_rows(results, strong["methods"])
    else:
        lines.append(strong["status"])
    lines += [
        "",
        f"## Mean scores ({objectives}) at each preference, mean over seeds",
        "",
        *_score_rows(results),
        "",
    ]
    return "\n".join(lines)
