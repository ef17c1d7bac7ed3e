"""Splitting pairs by prompt, reproducibly, and capping counts.

Splits are made over `prompt_id`, never over records, so that a prompt with several response
pairs lands in one split only (data README: split by prompt, not by record).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import TypeVar

from uniarm.data.schema import PreferencePair
from uniarm.errors import UniarmError

T = TypeVar("T")


def check_fractions(fractions: dict[str, float]) -> None:
    if not fractions:
        raise UniarmError("no splits given", "give fractions such as {'train': 0.8, 'test': 0.2}")
    bad = {k: v for k, v in fractions.items() if not (isinstance(v, int | float) and 0 <= v <= 1)}
    if bad:
        raise UniarmError(f"split fractions must lie in [0, 1], got {bad}")
    total = sum(fractions.values())
    if not math.isclose(total, 1.0, abs_tol=1e-6):
        raise UniarmError(f"split fractions must sum to 1, got {total:g} for {fractions}")


def split_prompt_ids(
    prompt_ids: Iterable[str], fractions: dict[str, float], seed: int = 0
) -> dict[str, set[str]]:
    """Assign each distinct prompt id to one split, with counts as close to the fractions as
    rounding allows. Depends only on the set of ids and the seed, not on their order."""
    check_fractions(fractions)
    ids = sorted(set(prompt_ids))
    random.Random(seed).shuffle(ids)

    assigned: dict[str, set[str]] = {}
    start, cumulative = 0, 0.0
    for name, fraction in fractions.items():
        cumulative += fraction
        end = round(cumulative * len(ids))
        assigned[name] = set(ids[start:end])
        start = end
    assigned[name] |= set(ids[start:])  # rounding leftovers go to the last split
    return assigned


def split_by_prompt(
    pairs: Sequence[PreferencePair], fractions: dict[str, float], seed: int = 0
) -> dict[str, list[PreferencePair]]:
    """Named splits of `pairs` by prompt; each split keeps the input order."""
    assigned = split_prompt_ids((p.prompt_id for p in pairs), fractions, seed)
    where = {pid: name for name, ids in assigned.items() for pid in ids}
    splits: dict[str, list[PreferencePair]] = {name: [] for name in fractions}
    for pair in pairs:
        splits[where[pair.prompt_id]].append(pair)
    return splits


def take(items: Sequence[T], n: int | None, seed: int = 0) -> list[T]:
    """At most `n` items drawn at random without replacement (reproducible from `seed`),
    in their original order. `n=None` keeps everything."""
    if n is None or n >= len(items):
        return list(items)
    if n < 0:
        raise UniarmError(f"cannot take {n} items", "give a count >= 0")
    keep = sorted(random.Random(seed).sample(range(len(items)), n))
    return [items[i] for i in keep]


def without_prompts(
    pairs: Iterable[PreferencePair], prompt_ids: Iterable[str]
) -> list[PreferencePair]:
    """The pairs whose prompt is not among `prompt_ids` (to keep one set's prompts out of
    another, e.g. the 104 PKU records shared by the scored and the human-labelled sets)."""
    excluded = set(prompt_ids)
    return [p for p in pairs if p.prompt_id not in excluded]
