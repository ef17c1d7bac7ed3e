"""The training losses of the ARMs (METHOD.md §1, §4, §5).

Every loss here starts from the two rewards of each pair, r(x, y_0) and r(x, y_1), computed
once per mini-batch. An objective's label only decides which of the two is chosen, so one
forward serves the local loss of every objective and the global loss alike.

- ARM loss (§1): L = -log σ(β_r (r(x, y_w) - r(x, y_l))).
- UniARM (§5): L = Σ_i λ_i L_i + c · L_g, with L_g on the labels of the aggregated preference.
- PARM (§4): L = Σ_i λ_i L_i (c = 0).
- GenARM: member i trains on L_i alone, with its own rewards.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from uniarm.training.batching import PairLabels


@dataclass
class StepLosses:
    """The loss to back-propagate and what gets logged, for one mini-batch."""

    total: torch.Tensor  # scalar
    local: torch.Tensor  # (k,) L_i
    accuracy: torch.Tensor  # (k,) fraction of pairs with r(y_w) > r(y_l) per objective
    global_loss: torch.Tensor | None = None
    global_accuracy: torch.Tensor | None = None


def arm_loss(margins: torch.Tensor, beta_r: float) -> torch.Tensor:
    """-log σ(β_r · margin), elementwise; margin = r(x, y_w) - r(x, y_l)."""
    return -F.logsigmoid(beta_r * margins)


def split_rewards(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(r(x, y_0), r(x, y_1)) of n pairs from the 2n rows of a batch (see batching.py)."""
    n = rewards.shape[0] // 2
    return rewards[:n], rewards[n:]


def objective_margins(rewards: torch.Tensor, winners: torch.Tensor) -> torch.Tensor:
    """(n, k) margins r(y_w) - r(y_l), the winner of each pair taken per objective."""
    r0, r1 = split_rewards(rewards)
    sign = 1 - 2 * winners.to(r0.dtype)  # winner 0 -> +1, winner 1 -> -1
    return (r0 - r1).unsqueeze(1) * sign


def global_winners(
    labels: PairLabels, preference: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Winners under the aggregated preference (METHOD.md §5, step 3), and which pairs have one.

    With scores for every objective, response 0 wins when Σ_i λ_i (s_i(y_0) - s_i(y_1)) > 0;
    with binary labels only, when Σ_i λ_i (2 z_i - 1) > 0, z_i = 1 if response 0 wins objective
    i. An exact tie has no winner and is left out of the global loss.
    """
    preference = preference.to(labels.scores.dtype)
    scored = (preference * (labels.scores[..., 0] - labels.scores[..., 1])).sum(-1)
    z = (labels.winners == 0).to(preference.dtype)
    binary = (preference * (2 * z - 1)).sum(-1)
    aggregated = torch.where(labels.has_scores, scored, binary)
    return (aggregated < 0).long(), aggregated != 0


def preference_loss(
    rewards: torch.Tensor,
    labels: PairLabels,
    preference: torch.Tensor,
    beta_r: float,
    global_weight: float = 0.0,
) -> StepLosses:
    """Σ_i λ_i L_i + c · L_g for an ARM conditioned on `preference` (a (k,) tensor).

    L_g sums over the pairs with a global winner and divides by all n pairs, so that the loss
    stays a plain mean over pairs and splitting a batch across processes or accumulation
    steps does not change it.
    """
    preference = preference.to(rewards.device, rewards.dtype)
    margins = objective_margins(rewards, labels.winners)
    local = arm_loss(margins, beta_r).mean(0)
    total = (preference * local).sum()
    out = StepLosses(total, local.detach(), (margins > 0).float().mean(0))
    if global_weight > 0:
        winners, valid = global_winners(labels, preference)
        margin = objective_margins(rewards, winners.unsqueeze(1))[:, 0]
        global_loss = (arm_loss(margin, beta_r) * valid).sum() / len(margin)
        out.total = total + global_weight * global_loss
        out.global_loss = global_loss.detach()
        out.global_accuracy = ((margin > 0) & valid).float().sum() / valid.sum().clamp(min=1)
    return out


def member_loss(
    rewards: torch.Tensor, labels: PairLabels, objective_index: int, beta_r: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """GenARM: (L_i, accuracy) of member i on its own objective's labels."""
    margins = objective_margins(rewards, labels.winners[:, objective_index : objective_index + 1])
    return arm_loss(margins, beta_r).mean(), (margins > 0).float().mean()
