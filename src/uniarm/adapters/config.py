"""Adapter settings shared by MoSLoRA (UniARM) and PBLoRA (PARM)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from uniarm.config import field
from uniarm.errors import UniarmError

DEFAULT_TARGETS = ("q_proj", "k_proj", "v_proj")


@dataclass
class AdapterConfig:
    """Shapes of the preference-conditioned adapter (METHOD.md §3, §4).

    Parameters:
        adapter: `moslora` (UniARM) or `pblora` (PARM).
        rank_shared: r1, rank of the preference-agnostic (shared) module.
        rank_modulation: r2, rank of MoSLoRA's modulation module or PBLoRA's
            preference-aware part.
        alpha: LoRA alpha; the shared module is scaled by alpha / rank_shared.
        shift: MoSLoRA only: keep the additive shift term (beta); off for the ablation.
        target_modules: names of the linear layers to adapt (matched on the last name part).
        objective_embedding: `mean` (METHOD.md §3: the mean input embedding of each
            description) or `centered`: those means minus their average over the objectives,
            each scaled to unit RMS per element. Mean embeddings of short descriptions are
            nearly parallel (cosine about 0.8) and small beside the hidden states, so the
            modulation starts out barely able to tell the objectives apart.
    """

    adapter: Literal["moslora", "pblora"] = field("moslora", help="adapter type")
    rank_shared: int = field(4, help="rank r1 of the shared (preference-agnostic) module")
    rank_modulation: int = field(4, help="rank r2 of the modulation / preference-aware module")
    alpha: float = field(8.0, help="LoRA alpha; the shared module is scaled by alpha / r1")
    shift: bool = field(True, help="MoSLoRA: keep the shift term beta (off = ablation)")
    target_modules: tuple[str, ...] = field(DEFAULT_TARGETS, help="linear layers to adapt")
    objective_embedding: Literal["mean", "centered"] = field(
        "mean", help="objective embeddings: mean (METHOD.md) or centered (unit RMS)"
    )

    def __post_init__(self):
        if self.objective_embedding not in ("mean", "centered"):
            raise UniarmError(
                f"unknown objective_embedding {self.objective_embedding!r}", "use mean or centered"
            )
        if self.adapter not in ("moslora", "pblora"):
            raise UniarmError(f"unknown adapter {self.adapter!r}", "use moslora or pblora")
        if self.rank_shared < 0 or self.rank_modulation < 0:
            raise UniarmError("adapter ranks must be >= 0")
        if self.rank_shared + self.rank_modulation == 0:
            raise UniarmError("both adapter ranks are 0: nothing to train", "set a rank >= 1")
        if self.adapter == "pblora" and self.rank_modulation == 0:
            raise UniarmError("PBLoRA needs rank_modulation >= 1 for its preference cores")
        if not self.target_modules:
            raise UniarmError("no target modules given", "e.g. q_proj k_proj v_proj")
        self.target_modules = tuple(self.target_modules)

    @property
    def scaling(self) -> float:
        # s = alpha / r (LoRA convention), r the shared rank, or r2 when there is no shared module
        return self.alpha / (self.rank_shared or self.rank_modulation)
