"""Weak-to-strong: a small ARM guiding a larger base of the same tokenizer, from their folders."""

import torch
from baselines_helpers import OBJECTIVES, PROMPTS, peaked_llama, prompt_ids

from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.baselines.replies import make_replier
from uniarm.decoding import DecodingConfig

STEPS = 6


def small_arm_checkpoint(tmp_path, tokenizer):
    folder = tmp_path / "small-base"
    model = peaked_llama(tokenizer, seed=1, hidden=32, layers=2)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    arm = PreferenceARM(model, tokenizer, OBJECTIVES, AdapterConfig(), base_model=str(folder))
    gen = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for param in arm.trainable_parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    return arm.save(tmp_path / "arm")


def test_a_small_arm_guides_a_larger_base(tmp_path, tokenizer):
    checkpoint = small_arm_checkpoint(tmp_path, tokenizer)
    big_dir = tmp_path / "big-base"
    big = peaked_llama(tokenizer, seed=2, hidden=64, layers=3)
    big.save_pretrained(big_dir)
    tokenizer.save_pretrained(big_dir)

    decoder = make_replier("arm", str(big_dir), checkpoint, DecodingConfig(max_new_tokens=STEPS))
    assert decoder.base.config.hidden_size == 64
    assert decoder.guides[0].model.config.hidden_size == 32
    preference = [0.3, 0.7]
    got = decoder.generate(PROMPTS[:2], preferences=[preference])

    # by full recomputation with independently loaded models: log π_big + log π_arm(·|λ)
    arm = PreferenceARM.load(checkpoint)
    arm.set_preference(preference)
    with torch.no_grad():
        for prompt, reply in zip(PROMPTS[:2], got, strict=True):
            seq, expected = prompt_ids(tokenizer, prompt), []
            for _ in range(STEPS):
                x = torch.tensor([seq])
                scores = torch.log_softmax(big(input_ids=x).logits[0, -1], -1)
                scores = scores + torch.log_softmax(arm.model(input_ids=x).logits[0, -1], -1)
                expected.append(int(scores.argmax()))
                seq.append(expected[-1])
            assert reply.token_ids == expected

    # the guidance matters: the larger base alone decodes otherwise
    alone = make_replier("base", str(big_dir), None, DecodingConfig(max_new_tokens=STEPS))
    assert [r.token_ids for r in alone.generate(PROMPTS[:2])] != [r.token_ids for r in got]
