"""bench/oracle_harmless.py: its ridge solve, agreement and margin quartiles, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest
from bench_helpers import load_bench

from uniarm.data.schema import PreferencePair, Turn
from uniarm.evaluation.oracles.heads import HeadConfig, fit_head

harm = load_bench("oracle_harmless")


def _data(seed=0, n=40, d=5):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = x @ rng.normal(size=d) + 0.1 * rng.normal(size=n)
    pairs = np.array([(i, i + 1) if y[i] > y[i + 1] else (i + 1, i) for i in range(0, n, 2)])
    return x, y, pairs


def test_ridge_matches_the_oracle_heads_ridge_fit():
    # Without label-only pairs the bench's solve is the same least squares as heads.fit_head's
    # ridge (which standardises first, with torch's n - 1 deviations): the same weights on the
    # same standardised features, up to the ratio of the two scores' deviations.
    x, y, pairs = _data()
    z = (x - x.mean(0)) / x.std(0, ddof=1)
    head = fit_head(x.astype(np.float32), HeadConfig(alpha=3.0, w_pair=2.0), y, pairs)
    ours = harm.ridge(z, y, pairs, alpha=3.0, w_pair=2.0) * y.std() / y.std(ddof=1)
    theirs = head.net[0].weight[0].detach().double().numpy()
    assert np.allclose(ours, theirs, rtol=1e-4, atol=1e-5)


def test_label_only_pairs_pull_the_weight_towards_their_margin():
    # One feature, no scores: the only rows are one label-only pair's difference, asked to be
    # `margin`; the closed form is w = m * dx / (dx^2 + alpha / w_extra).
    x = np.array([[2.0], [-1.0], [0.0], [0.0]])
    y = np.array([np.nan, np.nan, 0.0, 1.0])  # two scored rows keep the z-scoring defined
    scored_pair = np.array([[3, 2]])
    extra = np.array([[0, 1]])
    w = harm.ridge(x, y, scored_pair, alpha=1.0, w_pair=1.0, extra=extra, margin=0.5, w_extra=4.0)
    # rows: scored x (0, 0) -> z (-0.707.., 0.707..); pair diff 0 -> 1.414..; extra 2 * 3 -> 2 * .5
    a = np.array([0.0, 0.0, 0.0, 2 * 3.0])
    b = np.array([-(2**-0.5), 2**-0.5, 2**0.5, 2 * 0.5])
    assert w[0] == pytest.approx((a @ b) / (a @ a + 1.0))


def test_agreement_row_counts_ties_as_half():
    diffs = {
        "validation": np.array([1.0, -1.0, 0.0, 2.0]),
        "test": np.array([1.0, 1.0]),
        "human500": np.array([-3.0]),
    }
    row = harm.agreement_row("x", diffs, {})
    assert row["validation"] == 0.625 and row["test"] == 1.0 and row["human500"] == 0.0
    assert row["heldout"] == pytest.approx(4.5 / 6, abs=1e-4)


def _pair(cost_a, cost_b):
    return PreferencePair(
        conversation=(Turn("user", "q"),),
        responses=("a", "b"),
        winners={"harmless": 0 if cost_a >= cost_b else 1},
        scores={"harmless": (cost_a, cost_b)},
        source="test",
    )


def test_margin_quartiles_split_pairs_by_the_teachers_gap():
    # 8 pairs with gaps 1..8 (scores already negated costs); the oracle is right exactly on the
    # four largest gaps, so by quartile it agrees 0, 0, 1, 1.
    pairs = [_pair(float(g), 0.0) for g in range(1, 9)]
    diffs = np.array([-1.0] * 4 + [1.0] * 4)
    sets = {"validation": pairs[:4], "test": pairs[4:]}
    q = harm.margin_quartiles(sets, {"validation": diffs[:4], "test": diffs[4:]})
    assert q["agreement_by_quartile"] == [0.0, 0.0, 1.0, 1.0]
    cost = np.array([[g, 0.0] for g in range(1, 9)])
    assert q["variance_within_pairs"] == pytest.approx(np.var(cost[:, 0] / 2), abs=0.01)
    edges = np.quantile(np.arange(1, 9) / np.std(cost), [0.25, 0.5, 0.75])
    assert q["margin_quartile_edges_in_sd"] == pytest.approx(edges.round(3).tolist())
