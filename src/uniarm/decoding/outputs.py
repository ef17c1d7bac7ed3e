"""What guided decoding hands back: a `Generation` per row, and a `StepInfo` per step.

They live apart from the engine because both the public `GuidedDecoder` and the batch loop
(`uniarm.decoding.loop`) build them; `uniarm.decoding.engine` re-exports them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

PREVIEW_CHARS = 40  # of the text, in a Generation's repr


@dataclass(repr=False)
class Generation:
    """One response.

    Attributes:
        text: the response text (special tokens removed, cut before a stop string).
        token_ids: the generated ids, EOS included when it ended the response (and the tokens
            that completed a stop string).
        finish_reason: `eos`, `stop` (a stop string) or `length` (max_new_tokens).
        prompt_tokens: tokens of the prompt the models saw.
        prompt_cut: tokens cut from the prompt's left to fit the context.
        preference: the row's preference (None for the base model alone).
    """

    text: str
    token_ids: list[int]
    finish_reason: str
    prompt_tokens: int
    prompt_cut: int = 0
    preference: tuple[float, ...] | None = None

    def __repr__(self) -> str:
        """A line a person can read: the text's start and the counts, not every token id."""
        text = self.text
        if len(text) > PREVIEW_CHARS:
            text = text[:PREVIEW_CHARS] + "…"
        parts = [
            f"text={text!r}",
            f"chars={len(self.text)}",
            f"tokens={len(self.token_ids)}",
            f"finish_reason={self.finish_reason!r}",
        ]
        if self.preference is not None:
            parts.append(f"preference={self.preference}")
        return f"Generation({', '.join(parts)})"


@dataclass
class StepInfo:
    """What one decoding step saw, for tests and diagnostics (`on_step`)."""

    step: int
    rows: list[int]  # the call's row index of each batch row
    base_logits: torch.Tensor | None  # None when the decoder has no base term
    guide_logits: list[torch.Tensor]
    log_probs: torch.Tensor
    tokens: torch.Tensor
