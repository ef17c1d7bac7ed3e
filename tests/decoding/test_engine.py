"""The decoding engine against independent routes: HF generate, full recomputation, lone rows."""

import pytest
import torch
from decoding_helpers import (
    OBJECTIVES,
    PROMPTS,
    peaked_llama,
    prompt_ids,
    random_arm,
    reference_greedy,
)

from uniarm.decoding import DecodingConfig, GuidedDecoder, ObjectiveGuide, PreferenceGuide

PREFS = [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]


@pytest.fixture(scope="module")
def base(tokenizer):
    return peaked_llama(tokenizer, seed=0)


@pytest.fixture(scope="module")
def arm(tokenizer):
    return random_arm(tokenizer, "moslora", seed=1)


def hf_greedy(model, tokenizer, prompts, steps, eos=None):
    """Hugging Face's own batched greedy generate, left-padded."""
    rows = [prompt_ids(tokenizer, p) for p in prompts]
    longest = max(map(len, rows))
    ids = torch.tensor([[tokenizer.pad_token_id] * (longest - len(r)) + r for r in rows])
    mask = torch.tensor([[0] * (longest - len(r)) + [1] * len(r) for r in rows])
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        do_sample=False,
        max_new_tokens=steps,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=eos if eos is not None else tokenizer.eos_token_id,
    )
    result = []
    for row in out[:, longest:].tolist():
        if eos is not None and eos in row:
            row = row[: row.index(eos) + 1]
        result.append(row)
    return result


def tokens(generations):
    return [g.token_ids for g in generations]


def test_base_only_equals_hf_greedy(base, tokenizer):
    decoder = GuidedDecoder(base, tokenizer, config=DecodingConfig(max_new_tokens=10))
    got = decoder.generate(PROMPTS)
    assert tokens(got) == hf_greedy(base, tokenizer, PROMPTS, 10)
    assert all(g.finish_reason == "length" and g.preference is None for g in got)


def test_guide_at_weight_zero_equals_hf_greedy(base, tokenizer):
    arm_model = peaked_llama(tokenizer, seed=5)
    guides = [ObjectiveGuide(arm_model, OBJECTIVES, "helpful")]
    decoder = GuidedDecoder(base, tokenizer, guides, DecodingConfig(max_new_tokens=10))
    got = decoder.generate(PROMPTS, preferences=[0.0, 1.0])  # λ_helpful = 0
    assert tokens(got) == hf_greedy(base, tokenizer, PROMPTS, 10)
    # at weight 1 the same guide changes the output: the comparison above is not vacuous
    steered = decoder.generate(PROMPTS, preferences=[1.0, 0.0])
    assert tokens(steered) != tokens(got)


def test_eos_stops_each_row_and_compacts_the_batch(base, tokenizer):
    # Use a token the model emits mid-way as the EOS id, so rows stop at different steps.
    plain = hf_greedy(base, tokenizer, PROMPTS, 10)
    eos = plain[0][3]
    expected = hf_greedy(base, tokenizer, PROMPTS, 10, eos=eos)
    assert len({len(r) for r in expected}) > 1  # rows really end at different steps

    batch_sizes = []
    hook = base.register_forward_pre_hook(
        lambda m, a, kw: batch_sizes.append(kw["input_ids"].shape[0]), with_kwargs=True
    )
    try:
        cfg = DecodingConfig(max_new_tokens=10, compact_fraction=0.3)
        got = GuidedDecoder(base, tokenizer, config=cfg, eos_token_ids=[eos]).generate(PROMPTS)
    finally:
        hook.remove()
    assert tokens(got) == expected
    assert got[0].finish_reason == "eos" and got[0].token_ids[-1] == eos
    assert eos not in tokenizer.encode(got[0].text, add_special_tokens=False)[-1:]
    assert batch_sizes[0] == 3 and min(batch_sizes) < 3  # finished rows were dropped


def test_incremental_logits_equal_full_recompute(base, arm, tokenizer):
    """Per-row preferences, padding and cached steps against a no-cache forward per row."""
    seen = []
    guides = [PreferenceGuide(arm, merge="never")]
    decoder = GuidedDecoder(base, tokenizer, guides, DecodingConfig(max_new_tokens=6))
    got = decoder.generate(PROMPTS, PREFS, on_step=seen.append)

    for row, (prompt, pref) in enumerate(zip(PROMPTS, PREFS, strict=True)):
        seq = prompt_ids(tokenizer, prompt)
        for step in seen:
            if row not in step.rows:
                continue
            b = step.rows.index(row)
            x = torch.tensor([seq])
            with torch.no_grad():
                full_base = base(input_ids=x).logits[0, -1]
                full_arm = arm(input_ids=x, preference=[pref]).logits[0, -1]
            torch.testing.assert_close(step.base_logits[b], full_base, atol=1e-4, rtol=1e-5)
            # the ARM's random adapters make its logits large: compare relative to their scale
            scale = full_arm.abs().max()
            got_arm = step.guide_logits[0][b] / scale
            torch.testing.assert_close(got_arm, full_arm / scale, atol=1e-4, rtol=0)
            seq = seq + [int(step.tokens[b])]
        assert seq[-6:] == got[row].token_ids


def test_guided_tokens_equal_reference_decoder(base, arm, tokenizer):
    cfg = DecodingConfig(max_new_tokens=8, beta=0.5)
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm, merge="never")], cfg)
    got = decoder.generate(PROMPTS, PREFS)
    for row, pref in enumerate(PREFS):
        ids = prompt_ids(tokenizer, PROMPTS[row])
        guide = lambda x, p=pref: arm(input_ids=x, preference=[p]).logits
        expected, _ = reference_greedy(base, [guide], [2.0], ids, 8)
        assert got[row].token_ids == expected


def test_padded_batch_equals_rows_alone(base, arm, tokenizer):
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm, merge="never")])
    for cfg in (
        DecodingConfig(max_new_tokens=8),
        DecodingConfig(max_new_tokens=8, do_sample=True, temperature=0.8, top_p=0.9, seed=3),
    ):
        batched = decoder.generate(PROMPTS, PREFS, config=cfg)
        for row in range(len(PROMPTS)):
            alone = decoder.generate(
                [PROMPTS[row]], [PREFS[row]], config=cfg, seeds=[cfg.seed + row]
            )
            assert alone[0].token_ids == batched[row].token_ids


def test_per_row_preferences_equal_separate_runs(base, arm, tokenizer):
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm, merge="auto")])
    cfg = DecodingConfig(max_new_tokens=8)
    prompts = [PROMPTS[0]] * 3  # one prompt, three preferences in one batch
    mixed = decoder.generate(prompts, PREFS, config=cfg)
    separate = [decoder.generate([PROMPTS[0]], [p], config=cfg)[0] for p in PREFS]
    assert tokens(mixed) == tokens(separate)
    assert len({tuple(t) for t in tokens(mixed)}) == 3  # the preference matters
    assert arm.merged == tuple(PREFS[-1])  # the last single-preference call's merge is kept
    decoder.release()
    assert arm.merged is None


def test_merged_fast_path_equals_unmerged(base, arm, tokenizer):
    cfg = DecodingConfig(max_new_tokens=8)
    merged_steps, plain_steps = [], []
    merged_guide = PreferenceGuide(arm, merge="auto")
    merged = GuidedDecoder(base, tokenizer, [merged_guide], cfg)
    got = merged.generate(PROMPTS, [0.3, 0.7], on_step=merged_steps.append)
    assert merged_guide.merges == 1 and arm.merged == (0.3, 0.7)  # kept for the next call
    # another decoder's per-row guide over the same ARM undoes the kept merge first
    unmerged = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm, merge="never")], cfg)
    expected = unmerged.generate(PROMPTS, [0.3, 0.7], on_step=plain_steps.append)
    assert arm.merged is None
    assert tokens(got) == tokens(expected)
    for a, b in zip(merged_steps, plain_steps, strict=True):
        scale = b.log_probs.abs().max()  # merging reorders float sums: compare to the scale
        torch.testing.assert_close(a.log_probs / scale, b.log_probs / scale, atol=1e-4, rtol=0)


@pytest.mark.parametrize("adapter", ["moslora", "pblora"])
def test_shared_prefill_sweep_equals_separate_runs(base, tokenizer, adapter):
    arm = random_arm(tokenizer, adapter, seed=2)
    cfg = DecodingConfig(max_new_tokens=6)
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm, merge="never")], cfg)
    prefill_rows = {}

    def spy(name):
        def hook(module, args, kwargs):
            prefill_rows.setdefault(name, kwargs["input_ids"].shape[0])

        return hook

    hooks = [
        base.register_forward_pre_hook(spy("base"), with_kwargs=True),
        arm.model.register_forward_pre_hook(spy("arm"), with_kwargs=True),
    ]
    try:
        grid = decoder.sweep(PROMPTS[:2], PREFS)
    finally:
        for h in hooks:
            h.remove()
    # the base prefills each prompt once; the MoSLoRA/PBLoRA ARM every (prompt, preference)
    assert prefill_rows == {"base": 2, "arm": 6}
    for p, prompt in enumerate(PROMPTS[:2]):
        for j, pref in enumerate(PREFS):
            alone = decoder.generate([prompt], [pref])[0]
            assert grid[p][j].token_ids == alone.token_ids
            assert grid[p][j].preference == tuple(pref)


def test_genarm_weights_one_zero_equal_first_arm_alone(base, tokenizer):
    first, second = peaked_llama(tokenizer, seed=7), peaked_llama(tokenizer, seed=8)
    guides = [
        ObjectiveGuide(first, OBJECTIVES, "helpful"),
        ObjectiveGuide(second, OBJECTIVES, "harmless"),
    ]
    decoder = GuidedDecoder(base, tokenizer, guides, DecodingConfig(max_new_tokens=8))
    got = decoder.generate(PROMPTS[:2], [1.0, 0.0])
    for row in range(2):
        ids = prompt_ids(tokenizer, PROMPTS[row])
        expected, _ = reference_greedy(base, [lambda x: first(input_ids=x).logits], [1.0], ids, 8)
        assert got[row].token_ids == expected
    # and the mixed preference uses both, checked against the reference as well
    mixed = decoder.generate(PROMPTS[:1], [0.4, 0.6])[0]
    ids = prompt_ids(tokenizer, PROMPTS[0])
    refs = [lambda x: first(input_ids=x).logits, lambda x: second(input_ids=x).logits]
    expected, _ = reference_greedy(base, refs, [0.4, 0.6], ids, 8)
    assert mixed.token_ids == expected


def test_genarm_sweep_shares_every_prefill(base, tokenizer):
    first, second = peaked_llama(tokenizer, seed=7), peaked_llama(tokenizer, seed=8)
    guides = [
        ObjectiveGuide(first, OBJECTIVES, "helpful"),
        ObjectiveGuide(second, OBJECTIVES, "harmless"),
    ]
    decoder = GuidedDecoder(base, tokenizer, guides, DecodingConfig(max_new_tokens=5))
    rows = []
    hook = first.register_forward_pre_hook(
        lambda m, a, kw: rows.append(kw["input_ids"].shape), with_kwargs=True
    )
    try:
        grid = decoder.sweep(PROMPTS[:2], PREFS)
    finally:
        hook.remove()
    assert rows[0][0] == 2 and rows[1] == (6, 1)  # prefill per prompt, then 6 rows per step
    for p in range(2):
        for j, pref in enumerate(PREFS):
            assert grid[p][j].token_ids == decoder.generate([PROMPTS[p]], [pref])[0].token_ids


def test_weak_to_strong_with_wider_arm_vocabulary(base, tokenizer):
    """A bigger ARM whose logits carry 8 extra (added-token) ids: they are cut off."""
    width = len(tokenizer) + 8
    big = peaked_llama(tokenizer, seed=9, hidden=64, layers=3, vocab=width)
    with torch.no_grad():
        big.lm_head.weight[len(tokenizer) :] = 50.0  # would win every step if not cut
    guides = [ObjectiveGuide(big, OBJECTIVES, "helpful", tokenizer=tokenizer)]
    decoder = GuidedDecoder(base, tokenizer, guides, DecodingConfig(max_new_tokens=6))
    assert decoder.vocab_size == len(tokenizer)
    got = decoder.generate(PROMPTS[:1], [1.0, 0.0])[0]
    ids = prompt_ids(tokenizer, PROMPTS[0])
    guide = lambda x: big(input_ids=x).logits
    expected, _ = reference_greedy(base, [guide], [1.0], ids, 6, vocab=len(tokenizer))
    assert got.token_ids == expected and max(expected) < len(tokenizer)


def test_stop_string_cuts_the_response(base, tokenizer):
    decoder = GuidedDecoder(base, tokenizer, config=DecodingConfig(max_new_tokens=10))
    full = decoder.generate(PROMPTS[:1])[0]
    tail = tokenizer.decode(full.token_ids[4:6])
    stop = tail.strip()[:3] or tail
    assert stop and stop in full.text
    cut = decoder.generate(PROMPTS[:1], config=DecodingConfig(max_new_tokens=10, stop=[stop]))[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)] and len(cut.token_ids) <= 6


def test_sampling_is_seeded(base, arm, tokenizer):
    decoder = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm)])
    cfg = DecodingConfig(max_new_tokens=8, do_sample=True, top_k=50, seed=11)
    first = decoder.generate(PROMPTS, PREFS, config=cfg)
    again = decoder.generate(PROMPTS, PREFS, config=cfg)
    other = decoder.generate(PROMPTS, PREFS, config=DecodingConfig(**{**vars(cfg), "seed": 12}))
    assert tokens(first) == tokens(again)
    assert tokens(first) != tokens(other)
