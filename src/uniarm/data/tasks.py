"""Training pairs and evaluation prompts for the two tasks (paper §5.1 safety, §5.2 assistant).

- `safety` (helpful, harmless): pku_saferlhf_10k_scored, beaver-7b scores and labels, as in
  PARM and the paper. Its dev and test files share 74 prompts, so they are pooled and split
  again by prompt.
- `assistant` (helpful, harmless, humor): hh_rlhf_scored500, the only local HH data with all
  three objectives scored (the HH test splits have one human label per pair and no humor).
  # NOTE: 500 pairs is far below the paper's HH training set (the HH train split is not here).

Each task's pairs are split by prompt with `fractions` (default 80/10/10 train/validation/
test) from `seed`; keep the seed the same across the methods being compared so that they see
the same test prompts.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from uniarm.data.registry import load_dataset_by_name
from uniarm.data.schema import PreferencePair, Turn
from uniarm.data.splits import split_by_prompt, take
from uniarm.errors import UniarmError
from uniarm.objectives import get_task

Root = str | os.PathLike | None

TASK_SOURCES: dict[str, str] = {
    "safety": "pku_saferlhf_10k_scored",
    "assistant": "hh_rlhf_scored500",
}
DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}


@dataclass(frozen=True)
class EvalPrompt:
    """One distinct conversation to generate a response for."""

    prompt_id: str
    conversation: tuple[Turn, ...]
    source: str

    @property
    def prompt(self) -> str:
        return self.conversation[-1].content


def _restrict(pair: PreferencePair, objectives: tuple[str, ...]) -> PreferencePair:
    """Keep only the task's objectives, in the task's order."""
    missing = [o for o in objectives if o not in pair.winners]
    if missing:
        raise UniarmError(f"a {pair.source} pair has no label for {', '.join(missing)}")
    return dataclasses.replace(
        pair,
        scores={o: pair.scores[o] for o in objectives if o in pair.scores},
        winners={o: pair.winners[o] for o in objectives},
    )


def _prompt_splits(task_name: str, root: Root, seed: int, fractions) -> dict[str, list]:
    """Every loaded pair of the task's source, split by prompt (nothing dropped yet)."""
    pairs = load_dataset_by_name(TASK_SOURCES[get_task(task_name).name], root)
    return split_by_prompt(pairs, fractions or DEFAULT_FRACTIONS, seed)


def task_splits(
    task_name: str, root: Root = None, seed: int = 0, fractions: dict[str, float] | None = None
) -> dict[str, list[PreferencePair]]:
    """All splits of a task's pairs, restricted to its objectives. Pairs whose two responses are
    identical (no preference to learn) are dropped after splitting, so they don't move prompts."""
    objectives = get_task(task_name).objectives
    return {
        name: [_restrict(p, objectives) for p in part if p.responses[0] != p.responses[1]]
        for name, part in _prompt_splits(task_name, root, seed, fractions).items()
    }


def _split(splits: dict[str, list], split: str) -> list:
    if split not in splits:
        raise UniarmError(f"no split named {split!r}", f"use one of: {', '.join(splits)}")
    return splits[split]


def task_pairs(
    task_name: str,
    root: Root = None,
    split: str = "train",
    seed: int = 0,
    fractions: dict[str, float] | None = None,
    limit: int | None = None,
) -> list[PreferencePair]:
    """The pairs of one split of a task (at most `limit`, drawn with `seed`)."""
    return take(_split(task_splits(task_name, root, seed, fractions), split), limit, seed)


def unique_prompts(pairs: list[PreferencePair]) -> list[EvalPrompt]:
    """One `EvalPrompt` per distinct conversation, in order of first appearance."""
    seen: dict[str, EvalPrompt] = {}
    for pair in pairs:
        if pair.prompt_id not in seen:
            seen[pair.prompt_id] = EvalPrompt(pair.prompt_id, pair.conversation, pair.source)
    return list(seen.values())


def eval_prompts(
    task_name: str,
    root: Root = None,
    split: str = "test",
    seed: int = 0,
    fractions: dict[str, float] | None = None,
    limit: int | None = None,
    from_dataset: str | None = None,
) -> list[EvalPrompt]:
    """Held-out prompts of a task, deduplicated (at most `limit`, drawn with `seed`).

    With `from_dataset` (e.g. "hh_rlhf_test" for more assistant prompts) the prompts come from
    that data set instead, minus every prompt of the task's other splits.
    """
    splits = _prompt_splits(task_name, root, seed, fractions)
    if from_dataset is None:
        prompts = unique_prompts(_split(splits, split))
    else:
        _split(splits, split)
        used = {p.prompt_id for name, part in splits.items() if name != split for p in part}
        candidates = unique_prompts(load_dataset_by_name(from_dataset, root))
        prompts = [p for p in candidates if p.prompt_id not in used]
    return take(prompts, limit, seed)
