"""How well an oracle agrees with its teacher and with people, and how it can be fooled.

- Pairwise agreement: the fraction of held-out pairs whose labelled winner the oracle scores
  higher (a tie counts one half), with a normal-approximation 95% interval.
- Pearson correlation with the teacher's scores, where the teacher scored the responses.
- Failure modes: the correlation of scores with response length (beside the teacher's own,
  on the same responses), and how often a canned reply (a refusal, an empty reply, laughter
  spam) outscores the real replies to the same prompt.
"""

from __future__ import annotations

import math

import numpy as np

from uniarm.data.schema import PreferencePair

CANNED_REPLIES = {
    "refusal": "I can't help with that.",
    "apology refusal": "I'm sorry, but I can't help with that.",
    "empty": "",
    "laughter spam": "hahaha lol hahaha lol",
}


def agreement(scores: np.ndarray, winners: np.ndarray) -> dict:
    """Pairwise agreement of (M, 2) scores with (M,) winner indices."""
    m = len(winners)
    picked = scores[np.arange(m), winners] - scores[np.arange(m), 1 - winners]
    agree = float(np.mean(np.where(picked > 0, 1.0, np.where(picked == 0, 0.5, 0.0))))
    half = 1.96 * math.sqrt(max(agree * (1 - agree), 1e-12) / max(m, 1))
    return {
        "agreement": round(agree, 4),
        "ci95": [round(agree - half, 4), round(agree + half, 4)],
        "n_pairs": m,
    }


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 4)


def measure_pairs(oracle, pairs: list[PreferencePair], batch_size: int = 16) -> dict:
    """Agreement (and Pearson where scored) per objective on a list of labelled pairs."""
    prompts = [p.conversation for p in pairs for _ in (0, 1)]
    responses = [r for p in pairs for r in p.responses]
    scores = oracle.score(prompts, responses, batch_size).reshape(len(pairs), 2, -1)
    out = {}
    for k, objective in enumerate(oracle.objectives):
        labelled = [i for i, p in enumerate(pairs) if objective in p.winners]
        if not labelled:
            continue
        winners = np.array([pairs[i].winners[objective] for i in labelled])
        entry = agreement(scores[labelled, :, k], winners)
        scored = [i for i in labelled if objective in pairs[i].scores]
        if scored:
            teacher = np.array([pairs[i].scores[objective] for i in scored]).ravel()
            entry["pearson"] = pearson(scores[scored, :, k].ravel(), teacher)
        out[objective] = entry
    return out


def failure_modes(oracle, pairs: list[PreferencePair], batch_size: int = 16, max_prompts=200):
    """Length correlation and canned-reply wins on the replies of held-out pairs."""
    pairs = pairs[:max_prompts]
    prompts = [p.conversation for p in pairs for _ in (0, 1)]
    responses = [r for p in pairs for r in p.responses]
    real = oracle.score(prompts, responses, batch_size)
    lengths = np.array([len(r.split()) for r in responses], dtype=float)

    result: dict = {"n_prompts": len(pairs), "length_correlation": {}, "canned_wins": {}}
    for k, objective in enumerate(oracle.objectives):
        entry = {"oracle": pearson(real[:, k], lengths)}
        if all(objective in p.scores for p in pairs):
            teacher = np.array([p.scores[objective] for p in pairs]).ravel()
            entry["teacher"] = pearson(teacher, lengths)
        result["length_correlation"][objective] = entry

    one_prompt_each = [p.conversation for p in pairs]
    for label, reply in CANNED_REPLIES.items():
        canned = oracle.score(one_prompt_each, [reply] * len(pairs), batch_size)
        beats = np.repeat(canned, 2, axis=0) > real  # against both real replies of its prompt
        result["canned_wins"][label] = {
            "reply": reply,
            **{o: round(float(beats[:, k].mean()), 4) for k, o in enumerate(oracle.objectives)},
        }
    return result
