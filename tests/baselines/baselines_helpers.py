"""Tiny LoRA policies with peaked logits, and a deterministic oracle, for the baseline tests.

Random tiny models give near-uniform next-token logits, where float noise flips the argmax, so
the base here gets an untied head and unit-scale weights (top-2 logit gap about 1), and each
policy's LoRA gets random nonzero B matrices, as if trained.
"""

from __future__ import annotations

import numpy as np
import torch

from conftest import make_tiny_llama
from uniarm.evaluation.oracles.base import Oracle

OBJECTIVES = ("helpful", "harmless")
PROMPTS = ["Hello there, how are you?", "What is the capital of France?", "Hi"]


def peaked_llama(tokenizer, seed=0, hidden=32, layers=2):
    model = make_tiny_llama(tokenizer, seed=seed, hidden=hidden, layers=layers)
    model.config.tie_word_embeddings = False
    model.lm_head.weight = torch.nn.Parameter(torch.empty_like(model.lm_head.weight))
    gen = torch.Generator().manual_seed(1000 + seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.dim() == 2:
                std = 1.0 if ("embed" in name or "lm_head" in name) else param.shape[1] ** -0.5
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    model.requires_grad_(False)
    return model.eval()


def lora_policies(tokenizer, seed=0, rank=8, alpha=16.0, std=0.3, objectives=OBJECTIVES):
    """A peft model over a peaked tiny base with one random LoRA adapter per objective."""
    from peft import get_peft_model

    from uniarm.adapters.lora import LoRASettings

    config = LoRASettings(rank=rank, alpha=alpha).peft_config()
    model = get_peft_model(peaked_llama(tokenizer, seed=seed), config, adapter_name=objectives[0])
    for objective in objectives[1:]:
        model.add_adapter(objective, LoRASettings(rank=rank, alpha=alpha).peft_config())
    gen = torch.Generator().manual_seed(3000 + seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=gen) * std)
    model.requires_grad_(False)
    return model.eval()


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    from uniarm.data.schema import render_prompt

    return tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]


def hf_greedy(model, tokenizer, prompts, steps):
    """Hugging Face's own batched greedy generate, left-padded: the independent route."""
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
        eos_token_id=tokenizer.eos_token_id,
    )
    return out[:, longest:].tolist()


class LengthOracle(Oracle):
    """Scores by hand-checkable text features: words (helpful) and minus letters 'e' (harmless)."""

    def __init__(self, objectives=OBJECTIVES):
        self.objectives = tuple(objectives)
        self.name = "length-oracle (test)"

    def _score(self, prompts, responses, batch_size):
        rows = []
        for text in responses:
            features = [len(text.split()), -text.count("e"), len(set(text))]
            rows.append(features[: len(self.objectives)])
        return np.asarray(rows, dtype=np.float32)
