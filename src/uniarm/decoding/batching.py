"""Batch layout for decoding: left padding, position ids, and which rows decode together."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from uniarm.decoding.prompts import EncodedPrompt


def left_pad(prompts: Sequence[tuple[int, ...]], pad_id: int, device) -> tuple:
    """(ids, attention mask), each (len(prompts), longest), padded on the left."""
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), longest), dtype=torch.long)
    for i, prompt in enumerate(prompts):
        ids[i, longest - len(prompt) :] = torch.tensor(prompt)
        mask[i, longest - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def prefill_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids that start at 0 on each row's first real token (pads get 0)."""
    return (mask.cumsum(dim=1) - 1).clamp(min=0)


def next_positions(mask: torch.Tensor) -> torch.Tensor:
    """The (rows, 1) position of the token just appended to a grown attention mask."""
    return mask.sum(dim=1, keepdim=True) - 1


def chunk_rows(encoded: Sequence[EncodedPrompt], batch_size: int) -> list[list[int]]:
    """Row indices in batches: rows of one prompt together, longest prompts first.

    Keeping a prompt's rows in one batch lets them share its prefill; sorting by length
    keeps the padding small (and the biggest batch first, so memory runs out early if at all).
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for row, prompt in enumerate(encoded):
        groups.setdefault(prompt.ids, []).append(row)
    ordered = sorted(groups.values(), key=lambda rows: -len(encoded[rows[0]].ids))
    chunks, current = [], []
    for group in ordered:
        for row in group:
            current.append(row)
            if len(current) == batch_size:
                chunks.append(current)
                current = []
    return chunks + ([current] if current else [])
