"""MOD's decoder (the guided decoder without its base term) against independent routes."""

import pytest
import torch
from baselines_helpers import OBJECTIVES, PROMPTS, hf_greedy, lora_policies, peaked_llama

from uniarm.baselines.mod import mod_decoder
from uniarm.decoding import DecodingConfig, GuidedDecoder, ObjectiveGuide
from uniarm.errors import UniarmError

STEPS = 8


@pytest.fixture(scope="module")
def policies(tokenizer):
    return lora_policies(tokenizer, seed=0)


def alone(policies, objective, tokenizer, prompts=PROMPTS):
    policies.set_adapter(objective)
    return hf_greedy(policies, tokenizer, prompts, STEPS)


def tokens(replies):
    return [r.token_ids for r in replies]


def test_a_corner_preference_equals_that_policy_decoding_alone(policies, tokenizer):
    decoder = mod_decoder(policies, tokenizer, OBJECTIVES, DecodingConfig(max_new_tokens=STEPS))
    helpful = tokens(decoder.generate(PROMPTS, preferences=[1.0, 0.0]))
    harmless = tokens(decoder.generate(PROMPTS, preferences=[0.0, 1.0]))
    assert helpful == alone(policies, "helpful", tokenizer)
    assert harmless == alone(policies, "harmless", tokenizer)
    assert helpful != harmless  # the two policies really differ: the checks above bite


def test_a_mixed_preference_is_the_weighted_sum_of_log_probs(policies, tokenizer):
    from baselines_helpers import prompt_ids

    weights = (0.3, 0.7)
    seen = []
    decoder = mod_decoder(policies, tokenizer, OBJECTIVES, DecodingConfig(max_new_tokens=STEPS))
    got = decoder.generate(PROMPTS[:1], preferences=[list(weights)], on_step=seen.append)[0]

    # by full recomputation, no cache: log p = Σ λ_i log π_i, renormalised
    seq, expected = prompt_ids(tokenizer, PROMPTS[0]), []
    with torch.no_grad():
        for step in range(STEPS):
            scores = 0
            for objective, weight in zip(OBJECTIVES, weights, strict=True):
                policies.set_adapter(objective)
                logits = policies(input_ids=torch.tensor([seq])).logits[0, -1]
                scores = scores + weight * torch.log_softmax(logits, -1)
            scores = torch.log_softmax(scores, -1)
            torch.testing.assert_close(seen[step].log_probs[0], scores, atol=1e-4, rtol=1e-4)
            assert seen[step].base_logits is None
            expected.append(int(scores.argmax()))
            seq.append(expected[-1])
    assert got.token_ids == expected


def test_without_the_base_term_the_base_never_runs(policies, tokenizer):
    base = peaked_llama(tokenizer, seed=7)
    calls = []
    base.register_forward_hook(lambda *args: calls.append(1))
    guides = [
        ObjectiveGuide(policies, OBJECTIVES, o, tokenizer, adapter_name=o) for o in OBJECTIVES
    ]
    config = DecodingConfig(max_new_tokens=STEPS)
    plain = GuidedDecoder(base, tokenizer, guides, config, base_term=False)
    got = plain.generate(PROMPTS, preferences=[1.0, 0.0])
    assert calls == []
    assert tokens(got) == alone(policies, "helpful", tokenizer)

    # with the base term the same guides give another mixture, and the base runs
    with_base = GuidedDecoder(base, tokenizer, guides, config)
    assert tokens(with_base.generate(PROMPTS, preferences=[1.0, 0.0])) != tokens(got)
    assert calls


def test_mod_ignores_the_decoding_beta(policies, tokenizer):
    config = DecodingConfig(max_new_tokens=STEPS, beta=0.25)
    decoder = mod_decoder(policies, tokenizer, OBJECTIVES, config)
    assert decoder.config.beta == 1.0
    got = decoder.generate(PROMPTS, preferences=[1.0, 0.0])
    assert tokens(got) == alone(policies, "helpful", tokenizer)


def test_no_base_term_needs_a_guide(tokenizer):
    with pytest.raises(UniarmError, match="at least one guide"):
        GuidedDecoder(peaked_llama(tokenizer), tokenizer, (), base_term=False)
