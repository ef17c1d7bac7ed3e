"""What each optimizer step uses, as a pure function of (seed, step): pairs, preference, lr.

Nothing here reads a global random state. The pairs of step s are positions
[s·E, (s+1)·E) of an endless stream of epochs (E pairs per step), each epoch a permutation
drawn from (seed, epoch); the preference of step s is a Dirichlet(p·1) draw from (seed, s).
A run resumed at step s therefore continues exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

_ORDER, _PREFERENCE = 1, 2  # separate random streams


@functools.lru_cache(maxsize=4)
def epoch_order(seed: int, epoch: int, num_pairs: int) -> np.ndarray:
    """The order in which epoch `epoch` visits the training pairs."""
    return np.random.default_rng([seed, _ORDER, epoch]).permutation(num_pairs)


def step_pairs(seed: int, step: int, num_pairs: int, per_step: int) -> list[int]:
    """The indices of the `per_step` training pairs of optimizer step `step` (0-based)."""
    out = []
    for position in range(step * per_step, (step + 1) * per_step):
        epoch, offset = divmod(position, num_pairs)
        out.append(int(epoch_order(seed, epoch, num_pairs)[offset]))
    return out


def step_preference(seed: int, step: int, num_objectives: int, p: float) -> torch.Tensor:
    """λ ~ Dirichlet(p·1) for optimizer step `step` (METHOD.md §5, step 1)."""
    rng = np.random.default_rng([seed, _PREFERENCE, step])
    draw = rng.dirichlet([p] * num_objectives) if num_objectives > 1 else np.ones(1)
    return torch.tensor(draw / draw.sum(), dtype=torch.float32)


def total_steps(num_pairs: int, per_step: int, epochs: float, max_steps: int = 0) -> int:
    """`max_steps` when > 0, else enough steps for `epochs` passes over the pairs."""
    if max_steps:
        return max_steps
    return max(1, math.ceil(epochs * num_pairs / per_step))


def cosine_with_warmup(total: int, warmup: int):
    """The lr multiplier of step s: linear warm-up over `warmup` steps, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))

    return factor
