"""A PreferenceGuide keeps its merge between generate calls of one preference; nothing else
ever sees it: other guides, the ARM's own methods and `release` give the original weights back."""

import pytest
import torch
from decoding_helpers import OBJECTIVES, PROMPTS, peaked_llama, random_arm

from uniarm.adapters import PreferenceARM
from uniarm.decoding import DecodingConfig, GuidedDecoder, PreferenceGuide
from uniarm.errors import UniarmError

CFG = DecodingConfig(max_new_tokens=6)
A, B = [0.3, 0.7], [0.8, 0.2]


@pytest.fixture(scope="module")
def base(tokenizer):
    return peaked_llama(tokenizer, seed=0)


@pytest.fixture
def arm(tokenizer):
    return random_arm(tokenizer, "moslora", seed=1)


def count_merges(arm) -> list[tuple[float, ...]]:
    """Record every `arm.merge` call (an instance attribute shadows the method)."""
    calls = []
    method = type(arm).merge

    def spy(preference, **kwargs):
        calls.append(tuple(preference))
        return method(arm, preference, **kwargs)

    arm.merge = spy
    return calls


def weights(arm) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in arm.model.state_dict().items()}


def assert_original(arm, before) -> None:
    after = arm.model.state_dict()
    assert set(after) == set(before)
    assert all(torch.equal(after[k], before[k]) for k in before)


def tokens(generations):
    return [g.token_ids for g in generations]


def per_row(base, tokenizer, seed, prompts, preference):
    """The same ARM rebuilt from scratch, decoded on the unmerged per-row path."""
    fresh = random_arm(tokenizer, "moslora", seed=seed)
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(fresh, merge="never")], CFG)
    return tokens(decoder.generate(prompts, [preference]))


def test_same_preference_merges_once_and_another_merges_again(base, arm, tokenizer):
    merges = count_merges(arm)
    guide = PreferenceGuide(arm)
    decoder = GuidedDecoder(base, tokenizer, [guide], CFG)

    first = tokens(decoder.generate(PROMPTS, [A]))
    second = tokens(decoder.generate(PROMPTS[:2], [A]))
    assert merges == [tuple(A)] and arm.merged == tuple(A)
    other = tokens(decoder.generate(PROMPTS, [B]))
    assert merges == [tuple(A), tuple(B)] and guide.merges == 2

    decoder.generate(PROMPTS[:2], [A, B])  # two preferences: the per-row path, unmerged
    assert arm.merged is None
    again = tokens(decoder.generate(PROMPTS, [A]))
    assert merges == [tuple(A), tuple(B), tuple(A)]

    assert second == first[:2] and again == first
    assert first == per_row(base, tokenizer, 1, PROMPTS, A)
    assert other == per_row(base, tokenizer, 1, PROMPTS, B)
    assert first != other  # the preference matters


def test_release_restores_the_exact_original_weights(base, arm, tokenizer):
    before = weights(arm)
    name = next(iter(arm.layers))
    query = arm.layers[name].base
    storage = query.weight.data_ptr()
    with GuidedDecoder(base, tokenizer, [PreferenceGuide(arm)], CFG) as decoder:
        decoder.generate(PROMPTS, [A])
        assert not torch.equal(query.weight, before[f"{name}.base.weight"])  # merged
        decoder.release()
        assert arm.merged is None and query.weight.data_ptr() == storage  # the same tensor
        assert_original(arm, before)
        decoder.generate(PROMPTS, [B])
    assert arm.merged is None  # leaving the block released it
    assert_original(arm, before)


def test_keep_merge_false_undoes_the_merge_after_every_call(base, arm, tokenizer):
    before = weights(arm)
    merges = count_merges(arm)
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm, keep_merge=False)], CFG)
    first = tokens(decoder.generate(PROMPTS, [A]))
    assert arm.merged is None
    assert_original(arm, before)
    assert tokens(decoder.generate(PROMPTS, [A])) == first
    assert merges == [tuple(A), tuple(A)]


def test_two_decoders_over_one_arm_each_get_their_own_preference(base, arm, tokenizer):
    one = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm)], CFG)
    two = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm)], CFG)
    a = tokens(one.generate(PROMPTS, [A]))
    b = tokens(two.generate(PROMPTS, [B]))  # replaces the kept merge for A
    assert arm.merged == tuple(B)
    assert tokens(one.generate(PROMPTS, [A])) == a  # merged for A again
    assert b == per_row(base, tokenizer, 1, PROMPTS, B)


def test_the_arms_own_methods_undo_a_kept_merge(base, arm, tokenizer, tmp_path):
    before = weights(arm)
    x = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        expected = arm(input_ids=x, preference=B).logits
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm)], CFG)

    decoder.generate(PROMPTS, [A])
    with torch.no_grad():
        got = arm(input_ids=x, preference=B).logits  # the adapters' own forward, for B
    assert arm.merged is None and torch.equal(got, expected)
    assert_original(arm, before)

    decoder.generate(PROMPTS, [A])
    arm.set_preference(B)  # what training does before its forwards
    assert arm.merged is None
    assert_original(arm, before)

    decoder.generate(PROMPTS, [A])
    arm.save(tmp_path / "arm")
    assert arm.merged is None
    loaded = PreferenceARM.load(tmp_path / "arm", model=peaked_llama(tokenizer, seed=1))
    assert loaded.objectives == OBJECTIVES
    for name, tensor in arm.adapter_state().items():
        assert torch.equal(loaded.adapter_state()[name], tensor)


def test_a_merge_of_the_callers_own_is_used_and_never_undone(base, arm, tokenizer):
    arm.merge(A)
    merged = {k: v.clone() for k, v in arm.model.state_dict().items()}
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm)], CFG)
    got = tokens(decoder.generate(PROMPTS, [A]))
    decoder.release()
    assert arm.merged == tuple(A) and not arm.merged_by_guide
    assert_original(arm, merged)  # the caller's merge, untouched
    assert got == per_row(base, tokenizer, 1, PROMPTS, A)

    with pytest.raises(UniarmError, match="asks for another one"):
        decoder.generate(PROMPTS, [B])
    with pytest.raises(UniarmError, match="would be ignored"):
        arm.set_preference(B)
    with pytest.raises(UniarmError, match="cannot save"):
        arm.save("/nonexistent/arm")
    arm.unmerge()
    arm.set_preference(B)  # fine once unmerged
