"""Why a comparison came out as it did: how much each method moved away from the base model.

HV and MIP say how good a front is, not why. At small training budgets most of a method's
replies can be the base model's own (an ARM that barely moved from its initialisation adds
almost nothing to the base logits under greedy decoding), and then differences in HV are the
noise of a few changed replies. Per method, over its seeds, this measures from the sweeps'
generations:

- `same_as_base`: the share of (prompt, preference) replies identical to the base model's reply
  to that prompt;
- `distinct_per_prompt`: how many different replies a prompt gets across the preference grid
  (1 means the preference changes nothing);
- `heldout_accuracy`: the trained reward model's pairwise accuracy on the validation pairs that
  training logged last, per objective, with their count (not defined for MOD and Rewarded
  Soups, whose policies are not reward models).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from uniarm.io import read_jsonl


def replies(folder: str | Path) -> dict[str, dict[str, str]]:
    """{prompt_id: {preference_key: response}} of one sweep folder's generations."""
    out: dict[str, dict[str, str]] = defaultdict(dict)
    for row in read_jsonl(Path(folder) / "generations.jsonl"):
        out[row["prompt_id"]][row["preference_key"]] = row["response"]
    return dict(out)


def reply_movement(base: dict[str, dict[str, str]], method: dict[str, dict[str, str]]) -> dict:
    """`same_as_base` and `distinct_per_prompt` of one sweep against the base model's sweep."""
    same = total = 0
    distinct = []
    for prompt_id, by_preference in method.items():
        base_reply = next(iter(base[prompt_id].values()))
        same += sum(reply == base_reply for reply in by_preference.values())
        total += len(by_preference)
        distinct.append(len(set(by_preference.values())))
    return {
        "same_as_base": same / total if total else None,
        "distinct_per_prompt": sum(distinct) / len(distinct) if distinct else None,
        "rows": total,
    }


def logged_accuracy(run_folder: str | Path) -> dict[str, Any] | None:
    """The last held-out evaluation a training run logged: {objective: accuracy, "pairs": n}."""
    metrics = Path(run_folder) / "metrics.jsonl"
    if not metrics.is_file():
        return None
    evals = [r for r in read_jsonl(metrics) if r.get("kind") == "eval"]
    if not evals:
        return None
    last = evals[-1]
    found = {k.split("/", 1)[1]: v for k, v in last.items() if k.startswith("accuracy/")}
    return {"accuracy": found, "step": last.get("step")}


def method_diagnostics(
    base_folder: Path, eval_folders: list[Path], run_folders: list[Path], pairs: int | None
) -> dict[str, Any]:
    """A method's diagnostics over its seeds: per-seed values and their means.

    Args:
        base_folder: the base model's sweep.
        eval_folders: the method's sweeps, one per seed.
        run_folders: its training runs (empty for methods without a reward model).
        pairs: how many validation pairs the accuracies were measured on.
    """
    base = replies(base_folder)
    moves = [reply_movement(base, replies(f)) for f in eval_folders]
    accuracies = [a for a in (logged_accuracy(f) for f in run_folders) if a is not None]

    def mean(values):
        values = [v for v in values if v is not None]
        return sum(values) / len(values) if values else None

    accuracy = None
    if accuracies:
        objectives = list(accuracies[0]["accuracy"])
        accuracy = {
            "mean": {o: mean([a["accuracy"].get(o) for a in accuracies]) for o in objectives},
            "per_seed": [a["accuracy"] for a in accuracies],
            "pairs": pairs,
        }
    return {
        "same_as_base": mean([m["same_as_base"] for m in moves]),
        "distinct_per_prompt": mean([m["distinct_per_prompt"] for m in moves]),
        "per_seed": moves,
        "heldout_accuracy": accuracy,
    }
