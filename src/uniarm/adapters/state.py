"""The preference a forward pass is conditioned on, shared by every adapter layer of one ARM.

A Hugging Face forward cannot carry an extra argument down to each linear layer, so the ARM
writes the preference here before the forward and each adapter layer reads it.
"""

from __future__ import annotations

import torch
from torch import nn

from uniarm.errors import UniarmError


class PreferenceState(nn.Module):
    """Holds the preference rows (batch, k) and the mixed preference e_λ = λ · E (batch, d).

    Args:
        objective_embeddings: (k, d) tensor E, one row per objective (METHOD.md §3).
    """

    def __init__(self, objective_embeddings: torch.Tensor):
        super().__init__()
        # A module (not a plain object) so that `.to(device)` moves the embeddings for every
        # layer at once; not persistent, since the ARM checkpoint stores them once.
        self.register_buffer("objective_embeddings", objective_embeddings, persistent=False)
        self.preference: torch.Tensor | None = None
        self.mixed_preference: torch.Tensor | None = None
        self.version = 0  # bumped on every change; layers key their inference caches on it

    @property
    def num_objectives(self) -> int:
        return self.objective_embeddings.shape[0]

    def set(self, preference: torch.Tensor | None) -> None:
        self.version += 1
        if preference is None:
            self.preference = self.mixed_preference = None
            return
        if preference.dim() == 1:
            preference = preference.unsqueeze(0)
        if preference.dim() != 2 or preference.shape[1] != self.num_objectives:
            raise UniarmError(
                f"preference of shape {tuple(preference.shape)} does not fit the ARM's "
                f"{self.num_objectives} objectives",
                f"pass (batch, {self.num_objectives}) weights",
            )
        embeddings = self.objective_embeddings
        self.preference = preference.to(device=embeddings.device, dtype=embeddings.dtype)
        self.mixed_preference = self.preference @ embeddings

    def require(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(preference, mixed_preference) for a forward of `batch` rows."""
        if self.preference is None:
            raise UniarmError(
                "the ARM was called without a preference",
                "call arm.set_preference(...) or pass preference= to its forward",
            )
        rows = self.preference.shape[0]
        if rows not in (1, batch):
            raise UniarmError(
                f"{rows} preference rows for a batch of {batch}",
                "give one preference per batch row, or a single one for all rows",
            )
        return self.preference, self.mixed_preference
