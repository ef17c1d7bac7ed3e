"""The Python API of one call: keyword decoding settings, preferences without guides, the repr."""

import dataclasses

import pytest
from decoding_helpers import OBJECTIVES, PROMPTS, peaked_llama, prompt_ids, reference_greedy

from uniarm.decoding import DecodingConfig, Generation, GuidedDecoder, ObjectiveGuide
from uniarm.errors import UniarmError

PREFS = [[1.0, 0.0], [0.5, 0.5]]


@pytest.fixture(scope="module")
def base(tokenizer):
    return peaked_llama(tokenizer, seed=0)


@pytest.fixture(scope="module")
def guide_model(tokenizer):
    return peaked_llama(tokenizer, seed=3)


@pytest.fixture(scope="module")
def guided(base, guide_model, tokenizer):
    """EOS can never match, so that every row decodes exactly max_new_tokens tokens."""
    guide = ObjectiveGuide(guide_model, OBJECTIVES, "helpful")
    return GuidedDecoder(base, tokenizer, [guide], DecodingConfig(max_new_tokens=6), [-1])


@pytest.fixture(scope="module")
def base_only(base, tokenizer):
    return GuidedDecoder(base, tokenizer, config=DecodingConfig(max_new_tokens=6))


def test_max_new_tokens_as_a_keyword_equals_full_recomputation(
    guided, base, guide_model, tokenizer
):
    got = guided.generate(PROMPTS[:1], [1.0, 0.0], max_new_tokens=2)[0]
    ids = prompt_ids(tokenizer, PROMPTS[0])
    expected, _ = reference_greedy(base, [lambda x: guide_model(input_ids=x).logits], [1.0], ids, 2)
    assert got.token_ids == expected and got.finish_reason == "length"
    assert guided.config.max_new_tokens == 6  # the decoder's own settings are left as they were


def test_keywords_override_config_and_match_the_config_route(guided):
    config = DecodingConfig(max_new_tokens=6, do_sample=True, top_k=20, seed=3)
    by_keywords = guided.generate(PROMPTS, PREFS[1], config=config, seed=4, max_new_tokens=3)
    by_config = guided.generate(
        PROMPTS, PREFS[1], config=dataclasses.replace(config, seed=4, max_new_tokens=3)
    )
    assert [g.token_ids for g in by_keywords] == [g.token_ids for g in by_config]
    assert all(len(g.token_ids) == 3 for g in by_keywords)
    other_seed = guided.generate(PROMPTS, PREFS[1], config=config, max_new_tokens=3)  # seed 3
    assert [g.token_ids for g in other_seed] != [g.token_ids for g in by_keywords]


def test_sweep_takes_the_same_keywords(guided):
    grid = guided.sweep(PROMPTS[:2], PREFS, max_new_tokens=2)
    for p, prompt in enumerate(PROMPTS[:2]):
        for j, preference in enumerate(PREFS):
            alone = guided.generate([prompt], [preference], max_new_tokens=2)[0]
            assert grid[p][j].token_ids == alone.token_ids and len(alone.token_ids) == 2


def test_an_unknown_keyword_is_refused_naming_the_valid_ones(guided):
    with pytest.raises(UniarmError, match="unknown decoding setting.*max_length") as info:
        guided.generate(PROMPTS[:1], PREFS[0], max_length=5)
    named = set(info.value.fix.removeprefix("pass DecodingConfig fields: ").split(", "))
    assert named == {f.name for f in dataclasses.fields(DecodingConfig)}
    with pytest.raises(UniarmError, match="unknown decoding setting.*num_beams"):
        guided.sweep(PROMPTS[:1], PREFS, num_beams=2)


def test_a_keyword_is_validated_as_decoding_config_validates(guided):
    with pytest.raises(UniarmError, match="top_p=2"):
        guided.generate(PROMPTS[:1], PREFS[0], top_p=2)
    with pytest.raises(UniarmError, match="max_new_tokens=0"):
        guided.generate(PROMPTS[:1], PREFS[0], max_new_tokens=0)


def test_a_decoder_without_guides_refuses_a_preference(base_only):
    for call in (base_only.generate, base_only.sweep):
        with pytest.raises(UniarmError, match="no guides") as info:
            call(PROMPTS[:1], [0.5, 0.5])
        assert "preferences=None" in info.value.fix
    alone = base_only.generate(PROMPTS[:1], max_new_tokens=2)[0]  # None: the base model alone
    assert alone.preference is None and len(alone.token_ids) <= 2
    assert base_only.sweep(PROMPTS[:1], max_new_tokens=2)[0][0].token_ids == alone.token_ids


def test_a_decoder_with_guides_needs_a_preference_in_a_sweep_too(guided):
    for call in (guided.generate, guided.sweep):
        with pytest.raises(UniarmError, match="needs a preference"):
            call(PROMPTS[:1], max_new_tokens=2)


def test_no_prompt_gives_no_generation_and_zero_stats(guided):
    assert guided.generate([], PREFS[0]) == []
    assert guided.last_stats == {"rows": 0, "new_tokens": 0, "seconds": 0.0}


def test_the_repr_of_a_generation_is_short(guided):
    long = guided.generate(PROMPTS[:1], PREFS[1], max_new_tokens=60)[0]
    text = repr(long)
    assert len(long.token_ids) == 60 and "token_ids" not in text
    assert "tokens=60" in text and "finish_reason='length'" in text
    assert "preference=(0.5, 0.5)" in text and len(text) < 200
    assert f"text={long.text[:40] + '…'!r}, chars={len(long.text)}," in text  # its start
    short = Generation("Hi", [1, 2], "eos", prompt_tokens=3)
    assert repr(short) == "Generation(text='Hi', chars=2, tokens=2, finish_reason='eos')"
