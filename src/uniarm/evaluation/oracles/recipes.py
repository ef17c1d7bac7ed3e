"""What each task's distilled oracle is trained and measured on, split by prompt.

- `safety` (helpful, harmless): the beaver-7b reward and cost scores of
  pku_saferlhf_10k_scored (cost negated by the loader). The oracle trains on the task's train
  split minus every prompt of pku_saferlhf_10k_human500, and is measured on the task's
  validation + test prompts (beaver labels) and on all 500 human-labelled pairs.
- `assistant` (helpful, harmless, humor): the three reward-model scores of hh_rlhf_scored500,
  same splits. The humor head also learns from the humor rating sets (ColBERT, HaHackathon
  is_humor, Humicroedit funniness; each z-scored within its own set, texts with no prompt)
  and is calibrated to the humor model's units on the train split.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from uniarm.data import (
    PreferencePair,
    load_dataset_by_name,
    load_rated_by_name,
    take,
    task_splits,
    without_prompts,
)
from uniarm.evaluation.oracles.text import plain_dialogue

TEACHERS = {
    "safety": {
        "helpful": "beaver-7b-v1.0-reward",
        "harmless": "beaver-7b-v1.0-cost (sign -1)",
    },
    "assistant": {
        "helpful": "gpt2-large-helpful-reward_model",
        "harmless": "gpt2-large-harmless-reward_model",
        "humor": "humor-no-humor logit",
    },
}
HUMAN_SET = "pku_saferlhf_10k_human500"
HUMOR_SETS = {  # name -> loader options
    "humor_colbert40k": {},
    "humor_hahackathon": {"target": "is_humor"},
    "humor_humicroedit": {},
}


@dataclass
class Rows:
    """Texts to encode, with per-objective teacher scores (NaN = none) and labelled pairs."""

    prompts: list = field(default_factory=list)
    responses: list[str] = field(default_factory=list)
    scores: list[dict[str, float]] = field(default_factory=list)
    pairs: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.responses)

    def add_pairs(self, pairs: list[PreferencePair], objectives: tuple[str, ...]) -> None:
        for pair in pairs:
            start = len(self)
            for j in (0, 1):
                scores = {o: pair.scores[o][j] for o in objectives if o in pair.scores}
                self.add(pair.conversation, pair.responses[j], scores, pair.source)
            for o in objectives:
                if o in pair.winners:
                    w = pair.winners[o]
                    self.pairs.setdefault(o, []).append((start + w, start + 1 - w))

    def add(self, prompt, response: str, scores: dict[str, float], source: str) -> None:
        self.prompts.append(prompt)
        self.responses.append(response)
        self.scores.append(scores)
        self.sources.append(source)

    def target(self, objective: str) -> np.ndarray:
        return np.array([s.get(objective, np.nan) for s in self.scores], dtype=np.float64)

    def pair_array(self, objective: str) -> np.ndarray:
        return np.asarray(self.pairs.get(objective, []), dtype=np.int64).reshape(-1, 2)

    def sha256(self) -> str:
        """A hash of exactly what was trained on: texts, scores and pairs."""
        h = hashlib.sha256()
        for p, r in zip(self.prompts, self.responses):
            h.update(json.dumps([plain_dialogue(p), r]).encode())
        h.update(json.dumps(self.scores, sort_keys=True).encode())
        h.update(json.dumps(self.pairs, sort_keys=True).encode())
        return h.hexdigest()


@dataclass
class TaskData:
    """Training rows, held-out pair sets (name -> pairs) and what they came from."""

    train: Rows
    heldout: dict[str, list[PreferencePair]]
    described: dict[str, str]
    humor_only: Rows | None = None  # the humor rating sets alone, for a side measurement


def load_task_data(
    task: str, root=None, seed: int = 0, limit: int | None = None, humor_limit: int = 2000
) -> TaskData:
    """The rows an oracle of `task` is fitted on and the pairs it is measured on.

    `limit` caps the training pairs (and the held-out pairs at a quarter of it) for quick runs.
    """
    splits = task_splits(task, root, seed)
    objectives = tuple(TEACHERS[task])
    train_pairs = splits["train"]
    heldout = {"heldout": splits["validation"] + splits["test"]}
    if task == "safety":
        human = load_dataset_by_name(HUMAN_SET, root)
        train_pairs = without_prompts(train_pairs, {p.prompt_id for p in human})
        heldout[HUMAN_SET] = human
    if limit is not None:
        train_pairs = take(train_pairs, limit, seed)
        heldout = {k: take(v, max(limit // 4, 50), seed) for k, v in heldout.items()}

    train = Rows()
    train.add_pairs(train_pairs, objectives)
    described = {o: f"{len(train_pairs)} train pairs ({TEACHERS[task][o]})" for o in objectives}
    humor_only = None
    if task == "assistant":
        humor_only = Rows()
        counts = []
        for name, options in HUMOR_SETS.items():
            rated = take(load_rated_by_name(name, root, **options), humor_limit, seed)
            scores = np.array([r.score for r in rated])
            z = (scores - scores.mean()) / max(scores.std(), 1e-9)  # each set on its own scale
            for rows in (train, humor_only):
                for r, value in zip(rated, z, strict=True):
                    rows.add("", r.text, {"humor": float(value)}, name)
            counts.append(f"{len(rated)} {name}")
        described["humor"] += " + " + ", ".join(counts) + " (z-scored, no prompt)"
    return TaskData(train, heldout, described, humor_only)
