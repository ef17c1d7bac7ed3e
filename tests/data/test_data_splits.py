"""Prompt-level splits and capped samples: disjoint, exhaustive, sized, reproducible."""

from __future__ import annotations

import pytest

from uniarm.data.convert import single_turn
from uniarm.data.schema import PreferencePair
from uniarm.data.splits import split_by_prompt, split_prompt_ids, take, without_prompts
from uniarm.errors import UniarmError


def make_pairs(n_prompts: int, per_prompt: int) -> list[PreferencePair]:
    return [
        PreferencePair(single_turn(f"prompt {i}"), (f"a{i}.{j}", f"b{i}.{j}"), winners={"h": j % 2})
        for i in range(n_prompts)
        for j in range(per_prompt)
    ]


def test_splits_are_disjoint_by_prompt_and_cover_everything():
    pairs = make_pairs(100, 3)
    splits = split_by_prompt(pairs, {"train": 0.7, "validation": 0.1, "test": 0.2}, seed=1)
    prompts = {name: {p.prompt_id for p in part} for name, part in splits.items()}
    # 100 prompts at 70/10/20, with all three pairs of a prompt in the same split.
    assert {k: len(v) for k, v in prompts.items()} == {"train": 70, "validation": 10, "test": 20}
    assert {k: len(v) for k, v in splits.items()} == {"train": 210, "validation": 30, "test": 60}
    assert not (prompts["train"] & prompts["test"] or prompts["train"] & prompts["validation"])
    assert sum(len(v) for v in splits.values()) == len(pairs)
    # Each split keeps the input order.
    index = {id(p): i for i, p in enumerate(pairs)}
    for part in splits.values():
        assert [index[id(p)] for p in part] == sorted(index[id(p)] for p in part)


def test_splits_depend_on_the_seed_not_on_input_order():
    pairs = make_pairs(50, 2)
    fractions = {"train": 0.8, "test": 0.2}
    a = split_prompt_ids([p.prompt_id for p in pairs], fractions, seed=3)
    b = split_prompt_ids([p.prompt_id for p in reversed(pairs)], fractions, seed=3)
    c = split_prompt_ids([p.prompt_id for p in pairs], fractions, seed=4)
    assert a == b
    assert a != c


def test_rounding_leftovers_and_empty_splits():
    ids = [str(i) for i in range(7)]
    splits = split_prompt_ids(ids, {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3, "d": 0.0}, seed=0)
    assert sorted(len(v) for v in splits.values()) == [0, 2, 2, 3]
    assert set().union(*splits.values()) == set(ids)


@pytest.mark.parametrize("fractions", [{}, {"a": 0.5}, {"a": 1.2, "b": -0.2}])
def test_bad_fractions(fractions):
    with pytest.raises(UniarmError):
        split_prompt_ids(["x"], fractions)


def test_take():
    items = list(range(20))
    sample = take(items, 5, seed=0)
    assert len(sample) == 5 == len(set(sample)) and sample == sorted(sample)
    assert take(items, 5, seed=0) == sample
    assert take(items, 5, seed=1) != sample
    assert take(items, None) == items and take(items, 99) == items
    assert take(items, 0) == []
    with pytest.raises(UniarmError):
        take(items, -1)


def test_without_prompts():
    pairs = make_pairs(4, 2)
    drop = {pairs[0].prompt_id, pairs[7].prompt_id}
    kept = without_prompts(pairs, drop)
    assert len(kept) == 4 and not {p.prompt_id for p in kept} & drop
