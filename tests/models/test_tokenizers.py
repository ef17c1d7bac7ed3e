"""The base / reward model tokenizer check."""

import pytest
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from uniarm.errors import UniarmError
from uniarm.models import shared_vocab_size


def word_tokenizer(words):
    vocab = {w: i for i, w in enumerate(["<eos>", *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<eos>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<eos>", pad_token="<eos>")


def test_same_tokenizer_shares_everything(tokenizer):
    assert shared_vocab_size(tokenizer, tokenizer, 49152, 49152) == 49152


def test_added_tokens_are_cut_to_the_shared_part(tokenizer):
    import copy

    extended = copy.deepcopy(tokenizer)
    extended.add_tokens(["<tool>", "<obs>"])
    n = len(tokenizer)
    assert len(extended) == n + 2
    assert shared_vocab_size(tokenizer, extended, n, n + 2) == n
    assert shared_vocab_size(extended, tokenizer, n + 64, n) == n  # padded logit matrix


def test_different_tokenizers_fail_loudly():
    a = word_tokenizer(["hello", "world"])
    b = word_tokenizer(["world", "hello"])
    with pytest.raises(UniarmError, match="different tokenizers: 2 of 3 shared ids differ"):
        shared_vocab_size(a, b, 3, 3)


def test_real_tokenizer_against_a_foreign_one(tokenizer):
    with pytest.raises(UniarmError, match="different tokenizers"):
        shared_vocab_size(tokenizer, word_tokenizer(["a", "b"]), 49152, 3)
