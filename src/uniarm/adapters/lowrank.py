"""Pieces shared by the low-rank adapters: initialisation and exact merge / unmerge."""

from __future__ import annotations

import math

import torch
from torch import nn


def kaiming_(tensor: torch.Tensor) -> torch.Tensor:
    """LoRA's initialisation for down-projections and cores."""
    return nn.init.kaiming_uniform_(tensor, a=math.sqrt(5))


def low_rank(rows: int, cols: int, zero: bool = False) -> nn.Parameter:
    tensor = torch.empty(rows, cols)
    return nn.Parameter(tensor.zero_() if zero else kaiming_(tensor))


class MergeableLinear(nn.Module):
    """Wraps a frozen nn.Linear and can fold a fixed update into its weight and bias.

    `merge` swaps in new weight (and bias) tensors and keeps the originals, so `unmerge`
    restores them bit for bit rather than subtracting the update back out.
    """

    def __init__(self, base: nn.Linear):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"adapters wrap nn.Linear, not {type(base).__name__}")
        self.base = base
        base.requires_grad_(False)
        self._saved: tuple[torch.Tensor, torch.Tensor | None] | None = None

    @property
    def in_features(self) -> int:
        return self.base.in_features

    @property
    def out_features(self) -> int:
        return self.base.out_features

    @property
    def merged(self) -> bool:
        return self._saved is not None

    def _install(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        if self._saved is not None:
            raise RuntimeError("already merged: unmerge first")
        base = self.base
        self._saved = (base.weight.data, None if base.bias is None else base.bias.data)
        base.weight.data = weight.to(base.weight.dtype)
        if bias is None:
            return
        if base.bias is None:
            base.bias = nn.Parameter(bias.to(base.weight.dtype), requires_grad=False)
        else:
            base.bias.data = bias.to(base.bias.dtype)

    def unmerge(self) -> None:
        if self._saved is None:
            return
        weight, bias = self._saved
        self.base.weight.data = weight
        if bias is None:
            self.base.bias = None
        else:
            self.base.bias.data = bias
        self._saved = None
