"""Loading causal LMs and tokenizers, and checking that two of them can be combined."""

from uniarm.models.loading import EMBEDDED_MODELS, cache_root, load_model, load_tokenizer
from uniarm.models.tokenizers import shared_vocab_size

__all__ = ["EMBEDDED_MODELS", "cache_root", "load_model", "load_tokenizer", "shared_vocab_size"]
