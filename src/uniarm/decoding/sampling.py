"""The guided next-token distribution and the ways to draw from it (METHOD.md §2).

    log p(y_t | ·) = log π_base(y_t | ·) + Σ_i (w_i / β) log π_r_i(y_t | ·) + const

with one weight per batch row and reward model: 1 for UniARM and PARM, λ_i for GenARM's
objective i. The constant is restored by a final log-softmax.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def guided_log_probs(
    base_logits: torch.Tensor,
    guide_logits: Sequence[torch.Tensor],
    guide_weights: Sequence[torch.Tensor],
    vocab_size: int,
) -> torch.Tensor:
    """The renormalised guided log-probabilities, (rows, vocab_size).

    Args:
        base_logits: (rows, V_base) next-token logits of the base model.
        guide_logits: one (rows, V_i) tensor per reward model.
        guide_weights: one (rows,) tensor per reward model: w_i / β for each row.
        vocab_size: the shared vocabulary; wider logits (added tokens) are cut to it.
    """
    scores = torch.log_softmax(base_logits[:, :vocab_size].float(), dim=-1)
    for logits, weight in zip(guide_logits, guide_weights, strict=True):
        arm = torch.log_softmax(logits[:, :vocab_size].to(scores.device, torch.float32), dim=-1)
        scores += weight.to(scores.device, scores.dtype).unsqueeze(1) * arm
    return torch.log_softmax(scores, dim=-1)


def filter_top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k highest scores of each row (ties at the k-th value are kept too)."""
    if k <= 0 or k >= scores.shape[-1]:
        return scores
    kth = torch.topk(scores, k, dim=-1).values[:, -1:]
    return scores.masked_fill(scores < kth, float("-inf"))


def filter_top_p(scores: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of top tokens whose probability reaches p (at least one token)."""
    if p >= 1:
        return scores
    ordered, order = torch.sort(scores, dim=-1, descending=True)
    probs = torch.softmax(ordered, dim=-1)
    mass_before = probs.cumsum(dim=-1) - probs  # mass of the strictly better tokens
    drop_sorted = mass_before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return scores.masked_fill(drop, float("-inf"))


def choose_tokens(
    scores: torch.Tensor,
    do_sample: bool,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generators: Sequence[torch.Generator] | None = None,
) -> torch.Tensor:
    """One token id per row: the argmax, or a draw after temperature, top-k and top-p.

    Each row draws from its own generator, so a row's sample does not depend on which other
    rows share its batch.
    """
    if not do_sample:
        return scores.argmax(dim=-1)
    scores = filter_top_p(filter_top_k(scores / temperature, top_k), top_p)
    probs = torch.softmax(scores, dim=-1)
    if generators is None:
        return torch.multinomial(probs, 1).squeeze(1)
    if len(generators) != probs.shape[0]:
        raise ValueError(f"{len(generators)} generators for {probs.shape[0]} rows")
    return torch.cat([torch.multinomial(row, 1, generator=g) for row, g in zip(probs, generators)])
