"""Objective embeddings e_i and the mixed preference vector e_λ (paper §4.1, Appendix B).

e_i is the mean of the ARM's own input token embeddings over the tokens of objective i's text
description (METHOD.md §3: mean pooling, chosen); e_λ = Σ_i λ_i e_i.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from uniarm.errors import UniarmError


@torch.no_grad()
def objective_embeddings(model, tokenizer, descriptions: Sequence[str]) -> torch.Tensor:
    """A (k, d) tensor: one mean-pooled input embedding per objective description."""
    table = model.get_input_embeddings().weight
    rows = []
    for text in descriptions:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if not ids:
            raise UniarmError(f"objective description {text!r} has no tokens", "describe it")
        rows.append(table[torch.tensor(ids, device=table.device)].float().mean(dim=0))
    return torch.stack(rows)


def centered(embeddings: torch.Tensor) -> torch.Tensor:
    """Each objective's embedding minus their average, scaled to unit RMS per element.

    With two objectives the rows become opposite, so a preference's mixed vector is
    (λ_1 - λ_2) times one direction and the even mix is the zero vector (no modulation).
    """
    if embeddings.shape[0] < 2:
        return embeddings / embeddings.pow(2).mean(dim=1, keepdim=True).sqrt()
    out = embeddings - embeddings.mean(dim=0, keepdim=True)
    return out / out.pow(2).mean(dim=1, keepdim=True).sqrt().clamp(min=1e-12)
