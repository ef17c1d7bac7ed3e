"""MoSLoRA against hand-written formulas, merging, and per-row preferences."""

import numpy as np
import pytest
import torch
from torch import nn

from uniarm.adapters.moslora import MoSLoRALinear
from uniarm.adapters.state import PreferenceState

M, N, D, K = 6, 5, 7, 3


def make_layer(bias=True, r1=2, r2=3, shift=True, seed=0, randomise=True):
    torch.manual_seed(seed)
    base = nn.Linear(M, N, bias=bias)
    state = PreferenceState(torch.randn(K, D))
    layer = MoSLoRALinear(base, state, r1, r2, scaling=1.5, embed_dim=D, shift=shift)
    if randomise:  # as after training: the zero-initialised B matrices moved
        with torch.no_grad():
            for name, p in layer.named_parameters():
                if not name.startswith("base."):
                    p.normal_()
    return layer, state


def reference(layer, state, x, pref):
    """METHOD.md §3 written out in numpy, one preference row at a time."""
    W0 = layer.base.weight.detach().numpy().astype(np.float64)
    b0 = layer.base.bias.detach().numpy() if layer.base.bias is not None else np.zeros(N)
    g = lambda name: getattr(layer, name).detach().numpy().astype(np.float64)
    e = np.asarray(pref, dtype=np.float64) @ state.objective_embeddings.numpy()
    h = x @ W0.T + b0
    if layer.rank_shared:
        h = h + layer.scaling * x @ (g("shared_B") @ g("shared_core") @ g("shared_A")).T
    if not layer.rank_modulation:
        return h
    z = g("modulation_A") @ e
    gamma = g("modulation_B") @ g("scale_core") @ z
    beta = g("modulation_B") @ g("shift_core") @ z if layer.shift else 0.0
    return (1 + gamma) * h + beta


def test_initial_layer_is_the_frozen_layer_exactly():
    layer, state = make_layer(randomise=False)
    state.set(torch.tensor([[0.2, 0.3, 0.5]]))
    x = torch.randn(2, 4, M)
    assert torch.equal(layer(x), layer.base(x))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("r1,r2,shift", [(2, 3, True), (0, 4, True), (2, 3, False), (3, 0, True)])
def test_forward_matches_hand_formula(bias, r1, r2, shift):
    layer, state = make_layer(bias=bias, r1=r1, r2=r2, shift=shift)
    pref = [0.1, 0.6, 0.3]
    state.set(torch.tensor([pref]))
    x = torch.randn(3, M)
    out = layer(x.unsqueeze(0))[0].detach().numpy()
    np.testing.assert_allclose(
        out, reference(layer, state, x.numpy().astype(np.float64), pref), rtol=1e-4, atol=1e-4
    )


@pytest.mark.parametrize("bias", [True, False])
def test_merge_equals_unmerged_and_unmerge_restores_exactly(bias):
    layer, state = make_layer(bias=bias)
    weight, b = layer.base.weight.data.clone(), layer.base.bias
    b = None if b is None else b.data.clone()
    x = torch.randn(2, 5, M)
    for seed in range(5):
        torch.manual_seed(seed)
        pref = (
            torch.distributions.Dirichlet(torch.ones(K))
            .sample(
                (1,),
            )
            .squeeze(0)
        )
        state.set(pref)
        with torch.no_grad():
            unmerged = layer(x)
            layer.merge(pref)
            merged = layer(x)
            layer.unmerge()
        torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)
        assert torch.equal(layer.base.weight.data, weight)
        assert (layer.base.bias is None) == (b is None)
        if b is not None:
            assert torch.equal(layer.base.bias.data, b)


def test_per_row_preferences_equal_separate_runs():
    layer, state = make_layer()
    prefs = torch.tensor([[1.0, 0.0, 0.0], [0.2, 0.5, 0.3], [0.0, 0.0, 1.0]])
    x = torch.randn(3, 4, M)
    state.set(prefs)
    together = layer(x)
    for i in range(3):
        state.set(prefs[i])
        torch.testing.assert_close(together[i : i + 1], layer(x[i : i + 1]), rtol=1e-6, atol=1e-5)


def test_inference_cache_follows_preference_changes():
    layer, state = make_layer()
    x = torch.randn(1, 2, M)
    with torch.no_grad():
        state.set(torch.tensor([1.0, 0.0, 0.0]))
        a = layer(x)
        state.set(torch.tensor([0.0, 1.0, 0.0]))
        b = layer(x)
    assert not torch.allclose(a, b)


def test_parameter_count_matches_method_formula():
    # METHOD.md §3: (m + n)·r1 + r1² + (d + n)·r2 + 2·r2²
    for r1, r2 in [(4, 4), (0, 8), (2, 5)]:
        layer, _ = make_layer(r1=r1, r2=r2, randomise=False)
        assert layer.trainable_count() == (M + N) * r1 + r1**2 + (D + N) * r2 + 2 * r2**2
    layer, _ = make_layer(r1=4, r2=4, shift=False, randomise=False)
    assert layer.trainable_count() == (M + N) * 4 + 16 + (D + N) * 4 + 16


def test_preference_row_count_must_fit_batch():
    from uniarm.errors import UniarmError

    layer, state = make_layer()
    state.set(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    with pytest.raises(UniarmError, match="2 preference rows for a batch of 3"):
        layer(torch.randn(3, 2, M))
