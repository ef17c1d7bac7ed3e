"""Held-out pairwise accuracy: how often the ARM rewards the better response more.

Objective i is scored with the ARM conditioned on it alone: the one-hot preference e_i for
UniARM and PARM, member i for GenARM. Each process scores a slice of the pairs; the counts
are summed over processes.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from uniarm.training.arms import ARM, condition, rewards
from uniarm.training.batching import EncodedPair, collate
from uniarm.training.losses import objective_margins


@torch.no_grad()
def pair_rewards(
    arm: ARM,
    pairs: Sequence[EncodedPair],
    pad_id: int,
    batch_size: int,
    device,
    preference=None,
    objective: str | None = None,
) -> torch.Tensor:
    """(n, 2) rewards of both responses of every pair under one condition."""
    condition(arm, preference, objective)
    out = []
    for start in range(0, len(pairs), batch_size):
        batch, _ = collate(pairs[start : start + batch_size], pad_id)
        r = rewards(arm, batch.to(device)).float().cpu()
        half = len(r) // 2
        out.append(torch.stack([r[:half], r[half:]], dim=1))
    return torch.cat(out) if out else torch.zeros(0, 2)


def pairwise_accuracy(
    arm: ARM, pairs: Sequence[EncodedPair], pad_id: int, batch_size: int, accelerator
) -> dict[str, float]:
    """{objective: accuracy} on `pairs`, each objective under its own one-hot condition."""
    was_training = arm.training
    arm.eval()
    shard = list(pairs[accelerator.process_index :: accelerator.num_processes])
    counts = []
    for index, objective in enumerate(arm.objectives):
        correct = 0
        if shard:
            r = pair_rewards(arm, shard, pad_id, batch_size, accelerator.device, None, objective)
            winners = torch.tensor([[p.winners[index]] for p in shard])
            margins = objective_margins(torch.cat([r[:, 0], r[:, 1]]), winners)
            correct = int((margins > 0).sum())
        counts.append(correct)
    arm.train(was_training)
    totals = torch.tensor(counts + [len(shard)], dtype=torch.float64, device=accelerator.device)
    totals = accelerator.reduce(totals, reduction="sum").cpu()
    seen = max(1.0, float(totals[-1]))
    return {o: float(totals[i]) / seen for i, o in enumerate(arm.objectives)}
