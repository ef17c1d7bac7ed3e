"""The Markdown report of a trained oracle (frozen-feature or fine-tuned): what it is, how well
it agrees, where it fails. `uniarm oracle train` writes it beside the checkpoint; the generated
part of docs/oracles.md is a copy."""

from __future__ import annotations

from uniarm.evaluation.oracles.crossencoder import FinetunedOracle
from uniarm.evaluation.oracles.distilled import DistilledOracle

TrainedOracle = DistilledOracle | FinetunedOracle

# The frozen-embedding floor and the target on the safety task (beaver labels, held-out
# prompts): a ridge regression on all-MiniLM-L6-v2 sentence embeddings of the response.
FLOOR = {"helpful": 0.76, "harmless": 0.59}
TARGET = {"helpful": 0.80, "harmless": 0.75}


def _fmt(x, digits: int = 3) -> str:
    return "–" if x is None else f"{x:.{digits}f}"


def _agreement_table(oracle: TrainedOracle) -> list[str]:
    measured = oracle.meta.get("measured", {})
    safety = oracle.meta.get("task") == "safety"
    header = "| objective | held-out pairs | agreement (95% CI) | Pearson |"
    rule = "|---|---|---|---|"
    if safety:
        header += " human500 agreement | floor | target |"
        rule += "---|---|---|"
    lines = [header, rule]
    for objective in oracle.objectives:
        held = measured.get("heldout", {}).get(objective, {})
        lo, hi = held.get("ci95", [None, None])
        row = (
            f"| {objective} | {held.get('n_pairs', 0)} | {_fmt(held.get('agreement'))} "
            f"({_fmt(lo)}–{_fmt(hi)}) | {_fmt(held.get('pearson'))} |"
        )
        if safety:
            human = measured.get("pku_saferlhf_10k_human500", {}).get(objective, {})
            row += (
                f" {_fmt(human.get('agreement'))} (n={human.get('n_pairs', 0)}) |"
                f" {FLOOR[objective]:.2f} | {TARGET[objective]:.2f} |"
            )
        lines.append(row)
    return lines


def _failure_tables(oracle: TrainedOracle) -> list[str]:
    modes = oracle.meta.get("failure_modes", {})
    objectives = oracle.objectives
    lines = [
        f"Measured on the replies to {modes.get('n_prompts', 0)} held-out prompts.",
        "",
        "Correlation of score with response length (words), oracle beside its teacher:",
        "",
        "| objective | oracle | teacher |",
        "|---|---|---|",
    ]
    for o in objectives:
        entry = modes.get("length_correlation", {}).get(o, {})
        lines.append(f"| {o} | {_fmt(entry.get('oracle'))} | {_fmt(entry.get('teacher'))} |")
    lines += [
        "",
        "Fraction of real replies (to the same prompt) that a canned reply outscores:",
        "",
        "| canned reply | " + " | ".join(objectives) + " |",
        "|---|" + "---|" * len(objectives),
    ]
    for label, entry in modes.get("canned_wins", {}).items():
        cells = " | ".join(_fmt(entry.get(o), 2) for o in objectives)
        lines.append(f"| {label}: `{entry.get('reply', '')!r}` | {cells} |")
    return lines


def _encoder_line(oracle: TrainedOracle) -> str:
    if isinstance(oracle, FinetunedOracle):
        return f"Encoder (fine-tuned): {oracle.shape.describe()}"
    return f"Encoder (frozen): {oracle.spec.describe()}"


def _time_line(oracle: TrainedOracle) -> str:
    meta = oracle.meta
    total = meta.get("seconds", {}).get("total", "?")
    if isinstance(oracle, FinetunedOracle):
        t = meta.get("training", {})
        return (
            f"{total} s on this machine, of which fine-tuning {t.get('seconds', '?')} s "
            f"({t.get('cpu_seconds', '?')} CPU s on {t.get('threads', '?')} thread(s), "
            f"{t.get('steps', '?')} steps, loss {t.get('first_loss', '?')} -> "
            f"{t.get('final_loss', '?')})."
        )
    return (
        f"{total} s on this machine, {meta.get('texts_encoded', '?')} texts encoded (the rest "
        "read from the feature cache). Uncached, MiniLM encodes about 50 texts/s and SmolLM2 "
        "about 2-8 texts/s on one free core."
    )


def _reproduce(oracle: TrainedOracle) -> str:
    if oracle.meta.get("reproduce"):
        return oracle.meta["reproduce"]
    task = oracle.meta.get("task", "?")  # checkpoints written before the command was recorded
    return f"uniarm oracle train --task {task} --encoder {oracle.spec.backbone}"


def render_report(oracle: TrainedOracle) -> str:
    meta = oracle.meta
    task = meta.get("task", "?")
    lines = [
        f"# Oracle report: {oracle.name}",
        "",
        f"> {meta.get('disclaimer', '')}",
        "",
        f"- Task: `{task}`, objectives {', '.join(oracle.objectives)} (higher = better for all).",
        f"- {_encoder_line(oracle)}.",
        f"- Training data sha256: `{meta.get('training_data_sha256', '?')}` "
        f"({meta.get('n_training_texts', 0)} texts).",
        f"- Split: {meta.get('split', {}).get('train')}; measured on "
        f"{meta.get('split', {}).get('heldout')} (no training prompt among them).",
        f"- Time: {_time_line(oracle)}",
        f"- Reproduce: `{_reproduce(oracle)}`.",
        "",
        "## Heads",
        "",
    ]
    for o in oracle.objectives:
        lines.append(f"- **{o}**: {meta.get('heads', {}).get(o, {}).get('summary', '')}")
    lines += ["", "## Agreement on held-out prompts", ""] + _agreement_table(oracle)
    extra = {
        k: v
        for k, v in meta.get("measured", {}).items()
        if k not in ("heldout", "pku_saferlhf_10k_human500")
    }
    for label, per_objective in extra.items():
        for o, entry in per_objective.items():
            lines += [
                "",
                f"- {label}: {o} agreement {_fmt(entry.get('agreement'))} over "
                f"{entry.get('n_pairs', 0)} held-out pairs, Pearson "
                f"{_fmt(entry.get('pearson'))}.",
            ]
    if task == "safety":
        lines += [
            "",
            "Floor: frozen MiniLM sentence embeddings + ridge on the scores. Target: "
            "the agreement asked of an oracle fit for evaluation.",
        ]
    lines += ["", "## Known failure modes", ""] + _failure_tables(oracle)
    return "\n".join(lines) + "\n"
