"""Rewarded Soups: peft's "cat" combination is exactly the interpolation of the LoRA weights."""

import pytest
import torch
from baselines_helpers import OBJECTIVES, PROMPTS, hf_greedy, lora_policies, prompt_ids

from uniarm.baselines.soups import SOUP_ADAPTER, RewardedSoup
from uniarm.decoding import DecodingConfig

STEPS = 8


@pytest.fixture
def policies(tokenizer):
    return lora_policies(tokenizer, seed=1)


def ids(tokenizer):
    return torch.tensor([prompt_ids(tokenizer, PROMPTS[1])])


@torch.no_grad()
def logits_of(model, tokenizer):
    return model(input_ids=ids(tokenizer)).logits[0]


@torch.no_grad()
def interpolated_by_hand(policies, weights):
    """A plain copy of the base with W0 + Σ λ_i s_i B_i A_i written into each adapted layer."""
    import copy

    from peft.tuners.lora import LoraLayer

    base = copy.deepcopy(policies.get_base_model())
    layers = {
        n: m for n, m in policies.get_base_model().named_modules() if isinstance(m, LoraLayer)
    }
    for name, layer in layers.items():
        delta = sum(
            w * layer.scaling[o] * layer.lora_B[o].weight @ layer.lora_A[o].weight
            for o, w in zip(OBJECTIVES, weights, strict=True)
        )
        plain = base.get_submodule(name)
        plain.base_layer.weight.copy_(layer.base_layer.weight + delta)
        plain.lora_A.clear()
        plain.lora_B.clear()
    return base


def test_weight_one_on_one_adapter_reproduces_that_adapter(policies, tokenizer):
    soup = RewardedSoup(policies, tokenizer, OBJECTIVES)
    for corner, objective in (((1.0, 0.0), "helpful"), ((0.0, 1.0), "harmless")):
        policies.set_adapter(objective)
        alone = logits_of(policies, tokenizer)
        soup.use(corner)
        assert policies.active_adapter == SOUP_ADAPTER
        torch.testing.assert_close(logits_of(policies, tokenizer), alone, rtol=1e-5, atol=1e-5)
    # the two adapters differ, so the corners are not trivially equal
    policies.set_adapter("helpful")
    first = logits_of(policies, tokenizer)
    policies.set_adapter("harmless")
    assert not torch.allclose(first, logits_of(policies, tokenizer), atol=1e-2)


def test_cat_is_the_interpolation_of_the_weights_and_linear_is_not(policies, tokenizer):
    weights = (0.3, 0.7)
    expected = logits_of(interpolated_by_hand(policies, weights), tokenizer)

    RewardedSoup(policies, tokenizer, OBJECTIVES).use(weights)
    # float rounding of two summation orders on logits of size ~10: 1e-4 apart at most
    torch.testing.assert_close(logits_of(policies, tokenizer), expected, rtol=1e-5, atol=1e-3)

    # peft's "linear" averages A and B separately: cross terms B_i A_j, not the soup
    policies.add_weighted_adapter(list(OBJECTIVES), list(weights), "lin", combination_type="linear")
    policies.set_adapter("lin")
    gap = (logits_of(policies, tokenizer) - expected).abs().max()
    assert gap > 0.1, gap


def test_each_row_decodes_with_the_soup_of_its_own_preference(policies, tokenizer):
    soup = RewardedSoup(policies, tokenizer, OBJECTIVES, DecodingConfig(max_new_tokens=STEPS))
    prefs = [[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]
    got = soup.generate(PROMPTS, preferences=prefs)
    assert [g.preference for g in got] == [(1.0, 0.0), (0.0, 1.0), (1.0, 0.0)]
    for pref, objective in (((1, 0), "helpful"), ((0, 1), "harmless")):
        policies.set_adapter(objective)
        rows = [i for i, p in enumerate(prefs) if tuple(p) == pref]
        expected = hf_greedy(policies, tokenizer, [PROMPTS[i] for i in rows], STEPS)
        assert [got[i].token_ids for i in rows] == expected
    assert soup.last_stats["new_tokens"] == sum(len(g.token_ids) for g in got)


def test_a_new_preference_replaces_the_soup(policies, tokenizer):
    soup = RewardedSoup(policies, tokenizer, OBJECTIVES)
    soup.use((1.0, 0.0))
    soup.use((0.0, 1.0))  # add_weighted_adapter alone would keep the first soup
    soup_logits = logits_of(policies, tokenizer)
    policies.set_adapter("harmless")
    torch.testing.assert_close(soup_logits, logits_of(policies, tokenizer), rtol=1e-5, atol=1e-5)
    assert sum(name == SOUP_ADAPTER for name in policies.peft_config) == 1


def test_a_call_takes_decoding_overrides_and_named_preferences(policies, tokenizer):
    soup = RewardedSoup(policies, tokenizer, OBJECTIVES, DecodingConfig(max_new_tokens=STEPS))
    got = soup.generate(PROMPTS[:2], [{"helpful": 1.0}, {"harmless": 1.0}], max_new_tokens=2)
    assert [g.preference for g in got] == [(1.0, 0.0), (0.0, 1.0)]
    policies.set_adapter("helpful")
    assert got[0].token_ids == hf_greedy(policies, tokenizer, PROMPTS[:1], 2)[0]
