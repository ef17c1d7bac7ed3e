"""Tiny models with peaked logits for decoding tests, and an independent reference decoder.

Random tiny models give near-uniform next-token logits, where float noise flips the argmax,
and a tied embedding makes them repeat their last token. So these models get an untied
output head and unit-scale weights: the top-2 logit gap is then ~1 and the tokens vary.
"""

from __future__ import annotations

import torch

from conftest import make_tiny_llama
from uniarm.adapters import AdapterConfig, PreferenceARM

OBJECTIVES = ("helpful", "harmless")
PROMPTS = ["Hello there, how are you?", "What is the capital of France?", "Hi"]


def peaked_llama(tokenizer, seed=0, hidden=32, layers=2, vocab=None):
    model = make_tiny_llama(tokenizer, seed=seed, hidden=hidden, layers=layers, vocab=vocab)
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


def random_arm(tokenizer, adapter="moslora", seed=1, std=0.5, **model_kw):
    """A PreferenceARM whose adapter weights (B matrices included) are random, as if trained."""
    model = peaked_llama(tokenizer, seed=seed, **model_kw)
    model.name_or_spec = f"tiny-{seed}"
    arm = PreferenceARM(model, tokenizer, OBJECTIVES, AdapterConfig(adapter=adapter))
    gen = torch.Generator().manual_seed(2000 + seed)
    with torch.no_grad():
        for param in arm.trainable_parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * std)
    return arm.eval()


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    from uniarm.data.schema import render_prompt

    return tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False)["input_ids"]


@torch.no_grad()
def reference_greedy(base, guides, weights, ids, steps, vocab=None):
    """Greedy guided decoding of one row by full recomputation, no cache, no padding.

    `guides` are callables ids -> logits (1, T, V); `weights` their w/β.
    """
    seq = list(ids)
    out, all_scores = [], []
    for _ in range(steps):
        x = torch.tensor([seq])
        base_logits = base(input_ids=x).logits[0, -1]
        size = vocab or base_logits.shape[-1]
        scores = torch.log_softmax(base_logits[:size], -1)
        for guide, w in zip(guides, weights, strict=True):
            scores = scores + w * torch.log_softmax(guide(x)[0, -1, :size], -1)
        token = int(scores.argmax())
        all_scores.append(torch.log_softmax(scores, -1))
        out.append(token)
        seq.append(token)
    return out, all_scores
