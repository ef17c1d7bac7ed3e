"""Per-step randomness and the learning-rate schedule, as functions of (seed, step)."""

import math

import pytest
import torch

from uniarm.training import schedule


def test_each_epoch_visits_every_pair_once():
    n, per_step = 10, 4  # steps straddle epochs: 40 positions = 4 epochs
    seen = [i for step in range(10) for i in schedule.step_pairs(3, step, n, per_step)]
    for epoch in range(4):
        assert sorted(seen[epoch * n : (epoch + 1) * n]) == list(range(n))
    assert seen[:n] != seen[n : 2 * n]  # a fresh order per epoch


def test_a_step_depends_only_on_seed_and_step():
    assert schedule.step_pairs(0, 7, 50, 8) == schedule.step_pairs(0, 7, 50, 8)
    assert schedule.step_pairs(0, 7, 50, 8) != schedule.step_pairs(1, 7, 50, 8)
    a = schedule.step_preference(0, 5, 3, 0.5)
    schedule.step_preference(0, 4, 3, 0.5)  # other draws in between change nothing
    assert torch.equal(a, schedule.step_preference(0, 5, 3, 0.5))
    assert not torch.equal(a, schedule.step_preference(0, 6, 3, 0.5))


def test_preferences_lie_on_the_simplex_with_the_dirichlet_mean():
    draws = torch.stack([schedule.step_preference(0, s, 2, 0.5) for s in range(2000)])
    assert (draws >= 0).all() and torch.allclose(draws.sum(1), torch.ones(2000))
    assert draws[:, 0].mean().item() == pytest.approx(0.5, abs=0.03)
    # Dirichlet(0.5, 0.5) = Beta(0.5, 0.5): variance a b / ((a + b)^2 (a + b + 1)) = 1/8
    assert draws[:, 0].var().item() == pytest.approx(1 / 8, abs=0.01)
    assert torch.equal(schedule.step_preference(0, 0, 1, 0.5), torch.ones(1))


def test_cosine_with_warmup():
    factor = schedule.cosine_with_warmup(total=10, warmup=2)
    assert [factor(0), factor(1)] == [0.5, 1.0]
    assert factor(2) == 1.0 and factor(6) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.5)))
    assert factor(10) == pytest.approx(0.0)
    assert schedule.total_steps(100, 8, 2.0) == 25 and schedule.total_steps(100, 8, 2.0, 7) == 7
