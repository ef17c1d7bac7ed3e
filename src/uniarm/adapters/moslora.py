"""MoSLoRA: preference-modulated and shared low-rank adaptation (UniARM, paper §4.2).

For a frozen linear layer W0 (bias b0) and the mixed preference vector e_λ (METHOD.md §3):

    h  = W0 x + b0 + s · B_s W_s A_s x                  shared module, rank r1
    γ  = B_m W_γ A_m e_λ,   β = B_m W_β A_m e_λ         modulation module, rank r2
    h' = (1 + γ) ⊙ h + β

B_s and B_m start at zero, so the layer starts as W0 exactly. γ and β depend on the preference
only, not on the token, so for one fixed preference the layer folds into a plain linear layer
(`merge`), and unmerged each batch row may carry its own preference.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from uniarm.adapters.lowrank import MergeableLinear, low_rank
from uniarm.adapters.state import PreferenceState

FiLM = tuple[torch.Tensor, torch.Tensor | None]  # (γ, β); β is None without the shift term


class MoSLoRALinear(MergeableLinear):
    """A frozen nn.Linear with a MoSLoRA adapter beside it.

    Args:
        base: the frozen layer, W0 of shape (n, m).
        state: the ARM's shared preference state (gives e_λ per batch row).
        rank_shared: r1 (0 drops the shared module: the "modulation only" ablation).
        rank_modulation: r2 (0 drops the modulation: a plain LoRA with a core).
        scaling: s, the shared module's scale (alpha / r1).
        embed_dim: d, the size of e_λ (the ARM's hidden size).
        shift: keep the shift term β (False for the ablation without it).
    """

    def __init__(
        self,
        base: nn.Linear,
        state: PreferenceState,
        rank_shared: int,
        rank_modulation: int,
        scaling: float,
        embed_dim: int,
        shift: bool = True,
    ):
        super().__init__(base)
        self.state = state
        self.scaling = scaling
        self.shift = shift
        n, m = base.out_features, base.in_features
        r1, r2 = rank_shared, rank_modulation
        self.rank_shared, self.rank_modulation = r1, r2
        if r1:
            self.shared_A = low_rank(r1, m)
            self.shared_core = low_rank(r1, r1)
            self.shared_B = low_rank(n, r1, zero=True)
        if r2:
            self.modulation_A = low_rank(r2, embed_dim)
            self.scale_core = low_rank(r2, r2)
            self.shift_core = low_rank(r2, r2) if shift else None
            self.modulation_B = low_rank(n, r2, zero=True)
        self._film_cache: tuple[int, torch.Tensor, torch.Tensor | None] | None = None
        self.to(base.weight.device)

    # -- the two modules ---------------------------------------------------------------------

    def shared_delta(self) -> torch.Tensor:
        """s · B_s W_s A_s, the shared module as a dense (n, m) matrix (merging only)."""
        return self.scaling * self.shared_B @ self.shared_core @ self.shared_A

    def modulation(self, mixed_preference: torch.Tensor) -> FiLM:
        """γ and β, each (rows, n), from e_λ of shape (rows, d)."""
        z = mixed_preference.to(self.modulation_A.dtype) @ self.modulation_A.T
        gamma = (z @ self.scale_core.T) @ self.modulation_B.T
        beta = (z @ self.shift_core.T) @ self.modulation_B.T if self.shift else None
        return gamma, beta

    def _film(self, batch: int) -> FiLM:
        _, mixed = self.state.require(batch)
        if torch.is_grad_enabled():
            return self.modulation(mixed)
        # Decoding calls the layer once per token with an unchanged preference.
        version = self.state.version
        if self._film_cache is None or self._film_cache[0] != version:
            self._film_cache = (version, *self.modulation(mixed))
        return self._film_cache[1], self._film_cache[2]

    # -- forward and merge -------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base(x)
        if self.merged:
            return h
        if self.rank_shared:
            low = (x @ self.shared_A.T) @ self.shared_core.T
            h = h + self.scaling * (low @ self.shared_B.T)
        if not self.rank_modulation:
            return h
        gamma, beta = self._film(x.shape[0])
        view = (gamma.shape[0],) + (1,) * (x.dim() - 2) + (gamma.shape[1],)
        h = h * (1 + gamma.view(view))
        if beta is not None:
            h = h + beta.view(view)
        return h

    @torch.no_grad()
    def merge(self, preference: Sequence[float] | torch.Tensor) -> None:
        """Fold the adapter for one preference: W' = diag(1+γ)(W0 + s B_s W_s A_s),
        b' = (1+γ) ⊙ b0 + β (METHOD.md §3, merging for inference)."""
        weight = self.base.weight.data.clone()
        if self.rank_shared:
            weight += self.shared_delta().to(weight.dtype)
        bias = None if self.base.bias is None else self.base.bias.data.clone()
        if self.rank_modulation:
            pref = torch.as_tensor(preference, dtype=self.modulation_A.dtype)
            pref = pref.to(self.modulation_A.device).view(1, -1)
            mixed = pref @ self.state.objective_embeddings.to(pref.dtype)
            gamma, beta = (t if t is None else t[0] for t in self.modulation(mixed))
            weight = (1 + gamma).unsqueeze(1) * weight
            bias = torch.zeros_like(gamma) if bias is None else bias * (1 + gamma)
            if beta is not None:
                bias = bias + beta
        self._install(weight, bias)

    def trainable_count(self) -> int:
        return sum(p.numel() for name, p in self.named_parameters() if not name.startswith("base."))
