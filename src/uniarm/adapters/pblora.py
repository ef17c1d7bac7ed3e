"""PBLoRA: the preference-aware bilinear LoRA of PARM, a baseline (METHOD.md §4).

    ΔW = s · ( B[:, :r1] W1 A[:r1] + B[:, r1:] (Σ_i λ_i W2_i) A[r1:] )

computed through the low-rank path (x → A → cores → B); a dense ΔW is built only to merge.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from uniarm.adapters.lowrank import MergeableLinear, kaiming_, low_rank
from uniarm.adapters.state import PreferenceState


class PBLoRALinear(MergeableLinear):
    """A frozen nn.Linear with a PBLoRA adapter: one shared core and one core per objective.

    Args:
        base: the frozen layer, W0 of shape (n, m).
        state: the ARM's shared preference state (gives λ per batch row).
        rank_shared: r1, rank of the preference-agnostic part.
        rank_modulation: r2, rank of the preference-aware part.
        scaling: s = alpha / r1.
        num_objectives: k, the number of preference cores.
    """

    def __init__(
        self,
        base: nn.Linear,
        state: PreferenceState,
        rank_shared: int,
        rank_modulation: int,
        scaling: float,
        num_objectives: int,
    ):
        super().__init__(base)
        self.state = state
        self.scaling = scaling
        self.rank_shared, self.rank_modulation = rank_shared, rank_modulation
        n, m = base.out_features, base.in_features
        rank = rank_shared + rank_modulation
        self.A = low_rank(rank, m)
        self.B = low_rank(n, rank, zero=True)
        self.shared_core = low_rank(rank_shared, rank_shared) if rank_shared else None
        cores = torch.empty(num_objectives, rank_modulation, rank_modulation)
        for core in cores:
            kaiming_(core)
        self.preference_cores = nn.Parameter(cores)
        self.to(base.weight.device)

    def mixed_core(self, preference: torch.Tensor) -> torch.Tensor:
        """Σ_i λ_i W2_i for each row of `preference` (rows, k) → (rows, r2, r2)."""
        return torch.einsum("bk,kij->bij", preference.to(self.A.dtype), self.preference_cores)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.base(x)
        if self.merged:
            return h
        preference, _ = self.state.require(x.shape[0])
        r1 = self.rank_shared
        z = x @ self.A.T  # (..., r1 + r2)
        core = self.mixed_core(preference)  # (rows, r2, r2)
        z2 = z[..., r1:]
        flat = z2.reshape(z2.shape[0], -1, z2.shape[-1])
        mixed = (flat @ core.transpose(1, 2)).reshape(z2.shape)
        parts = [mixed] if not r1 else [z[..., :r1] @ self.shared_core.T, mixed]
        return h + self.scaling * (torch.cat(parts, dim=-1) @ self.B.T)

    def delta(self, preference: Sequence[float] | torch.Tensor) -> torch.Tensor:
        """The dense ΔW for one preference (merging and tests only)."""
        r1 = self.rank_shared
        pref = torch.as_tensor(preference, dtype=self.A.dtype, device=self.A.device).view(1, -1)
        out = self.B[:, r1:] @ self.mixed_core(pref)[0] @ self.A[r1:]
        if r1:
            out = out + self.B[:, :r1] @ self.shared_core @ self.A[:r1]
        return self.scaling * out

    @torch.no_grad()
    def merge(self, preference: Sequence[float] | torch.Tensor) -> None:
        weight = self.base.weight.data + self.delta(preference).to(self.base.weight.dtype)
        bias = None if self.base.bias is None else self.base.bias.data.clone()
        self._install(weight, bias)

    def trainable_count(self) -> int:
        return sum(p.numel() for name, p in self.named_parameters() if not name.startswith("base."))
