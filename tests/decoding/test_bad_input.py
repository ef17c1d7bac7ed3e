"""Bad input to the decoder fails early with a UniarmError (or warns), never deep in torch."""

import logging

import pytest
from decoding_helpers import OBJECTIVES, PROMPTS, peaked_llama

from uniarm.data.schema import Turn
from uniarm.decoding import DecodingConfig, GuidedDecoder, ObjectiveGuide
from uniarm.decoding.prompts import read_prompts
from uniarm.errors import UniarmError


@pytest.fixture(scope="module")
def base(tokenizer):
    return peaked_llama(tokenizer, seed=0, layers=1)


@pytest.fixture(scope="module")
def guided(base, tokenizer):
    guide = ObjectiveGuide(peaked_llama(tokenizer, seed=3, layers=1), OBJECTIVES, "helpful")
    return GuidedDecoder(base, tokenizer, [guide], DecodingConfig(max_new_tokens=3))


@pytest.mark.parametrize(
    "preference",
    [[0.5, 0.6], [1.0], [1.2, -0.2], [float("nan"), 1.0], [[0.5, 0.5], [1.0, 0.0]]],
)
def test_invalid_preferences_are_refused(guided, preference):
    with pytest.raises(UniarmError):
        guided.generate(PROMPTS, preference)


def test_a_guide_needs_a_preference(guided):
    with pytest.raises(UniarmError, match="needs a preference"):
        guided.generate(PROMPTS[:1])


@pytest.mark.parametrize("prompt", ["", "   ", (Turn("user", ""),)])
def test_empty_prompts_are_refused(guided, prompt):
    with pytest.raises(UniarmError, match="empty"):
        guided.generate(["fine", prompt], [0.5, 0.5])


@pytest.mark.parametrize("value", [0, -1, 10**6])
def test_max_new_tokens_out_of_range(value):
    with pytest.raises(UniarmError, match="max_new_tokens"):
        DecodingConfig(max_new_tokens=value)


def test_max_new_tokens_beyond_the_context(guided):
    # the tiny models have a context of 512 tokens
    with pytest.raises(UniarmError, match="context"):
        guided.generate(PROMPTS[:1], [0.5, 0.5], config=DecodingConfig(max_new_tokens=512))


@pytest.mark.parametrize(
    "settings",
    [
        {"beta": 0.0},
        {"beta": float("inf")},
        {"do_sample": True, "temperature": 0.0},
        {"top_p": 0.0},
        {"top_k": -1},
        {"stop": [""]},
        {"batch_size": 0},
    ],
)
def test_bad_settings(settings):
    with pytest.raises(UniarmError):
        DecodingConfig(**settings)


def test_overlong_prompt_is_cut_from_the_left_or_refused(guided, caplog):
    long_prompt = "word " * 600
    cfg = DecodingConfig(max_new_tokens=12)
    with caplog.at_level(logging.WARNING):
        out = guided.generate([long_prompt], [0.5, 0.5], config=cfg)[0]
    assert out.prompt_tokens == 512 - 12 and out.prompt_cut > 0
    assert "cut" in caplog.text
    assert len(out.token_ids) == 12
    with pytest.raises(UniarmError, match="context"):
        guided.generate([long_prompt], [0.5, 0.5], config=DecodingConfig(overlong="error"))


class OtherTokenizer:
    """The real tokenizer with two ids swapped: a different tokenizer family in miniature."""

    def __init__(self, tokenizer):
        self.vocab = dict(tokenizer.get_vocab())
        by_id = {i: t for t, i in self.vocab.items()}
        self.vocab[by_id[100]], self.vocab[by_id[101]] = 101, 100
        self.eos_token_id, self.eos_token = tokenizer.eos_token_id, tokenizer.eos_token

    def get_vocab(self):
        return self.vocab


def test_tokenizer_mismatch_is_refused(base, tokenizer):
    guide = ObjectiveGuide(base, OBJECTIVES, "helpful", tokenizer=OtherTokenizer(tokenizer))
    with pytest.raises(UniarmError, match="different tokenizers"):
        GuidedDecoder(base, tokenizer, [guide])


def test_guides_must_share_objectives(base):
    guides = [
        ObjectiveGuide(base, OBJECTIVES, "helpful"),
        ObjectiveGuide(base, ("helpful", "humor"), "humor"),
    ]
    with pytest.raises(UniarmError, match="disagree"):
        GuidedDecoder(base, None, guides)


def test_prompt_files(tmp_path):
    text = tmp_path / "prompts.txt"
    text.write_text("first prompt\n\n  second one\n")
    assert [r["prompt"] for r in read_prompts(text)] == ["first prompt", "  second one"]

    jsonl = tmp_path / "prompts.jsonl"
    jsonl.write_text(
        '{"id": 7, "prompt": "hello"}\n'
        '{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"},'
        ' {"role": "user", "content": "again"}]}\n'
    )
    records = read_prompts(jsonl)
    assert records[0] == {"id": 7, "prompt": "hello"}
    assert records[1]["prompt"][-1] == Turn("user", "again")

    for bad in ('{"prompt": ""}', '{"text": "x"}', "{not json", '{"messages": []}'):
        jsonl.write_text(bad + "\n")
        with pytest.raises(UniarmError):
            read_prompts(jsonl)
    with pytest.raises(UniarmError, match="not found"):
        read_prompts(tmp_path / "missing.txt")
