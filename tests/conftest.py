"""Shared fixtures: the real SmolLM2 tokenizer and tiny random Llama models built on it.

Tests build real models in place (2 layers, hidden size 32) with the embedded model's real
tokenizer, so that chat templates, EOS handling and vocabularies are the real ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One thread: tiny matmuls on two threads of a shared machine are far slower, not faster.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]


def shared_data_root() -> Path:
    return Path(os.environ.get("UNIARM_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"shared data folder {root} is not here")
    return root


@pytest.fixture(scope="session")
def tokenizer():
    from uniarm.models import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def make_tiny_llama(tokenizer, seed: int = 0, hidden: int = 32, layers: int = 2, vocab=None):
    """A random Llama causal LM over the real tokenizer's vocabulary."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab or len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    model.requires_grad_(False)
    return model


@pytest.fixture
def tiny_llama(tokenizer):
    return make_tiny_llama(tokenizer)


@pytest.fixture
def tiny_model_dir(tmp_path, tokenizer) -> Path:
    """A tiny model saved as a Hugging Face folder (model + tokenizer)."""
    folder = tmp_path / "tiny-llama"
    make_tiny_llama(tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


class Loaded(Exception):
    """Raised by a model or oracle loader that a test expects never to be reached."""


def refuse_loading(*args, **kwargs):
    raise Loaded


@pytest.fixture
def no_model_loads(monkeypatch):
    """Any model load raises `Loaded`: a check that must come first is proven to."""
    import uniarm.models
    import uniarm.models.loading

    monkeypatch.setattr(uniarm.models, "load_model", refuse_loading)
    monkeypatch.setattr(uniarm.models.loading, "load_model", refuse_loading)
