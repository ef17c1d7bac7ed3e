"""PBLoRA against its dense formula (METHOD.md §4)."""

import torch
from torch import nn

from uniarm.adapters.pblora import PBLoRALinear
from uniarm.adapters.state import PreferenceState

M, N, K = 6, 5, 2


def make_layer(r1=2, r2=3, bias=True):
    torch.manual_seed(1)
    layer = PBLoRALinear(
        nn.Linear(M, N, bias=bias),
        PreferenceState(torch.zeros(K, 4)),
        r1,
        r2,
        scaling=2.0,
        num_objectives=K,
    )
    with torch.no_grad():
        layer.B.normal_()
    return layer


def dense_delta(layer, pref):
    """ΔW = s (B[:, :r1] W1 A[:r1] + B[:, r1:] (Σ λ_i W2_i) A[r1:]), written out."""
    r1 = layer.rank_shared
    A, B = layer.A.detach(), layer.B.detach()
    core = sum(w * c for w, c in zip(pref, layer.preference_cores.detach(), strict=True))
    out = B[:, r1:] @ core @ A[r1:]
    if r1:
        out = out + B[:, :r1] @ layer.shared_core.detach() @ A[:r1]
    return layer.scaling * out


def test_low_rank_path_equals_dense_formula_per_row():
    layer = make_layer()
    prefs = torch.tensor([[0.3, 0.7], [1.0, 0.0]])
    layer.state.set(prefs)
    x = torch.randn(2, 4, M)
    out = layer(x)
    for i, pref in enumerate(prefs.tolist()):
        W = layer.base.weight.detach() + dense_delta(layer, pref)
        expected = x[i] @ W.T + layer.base.bias.detach()
        torch.testing.assert_close(out[i], expected, rtol=1e-5, atol=1e-5)


def test_merge_and_unmerge():
    layer = make_layer(bias=False)
    weight = layer.base.weight.data.clone()
    layer.state.set(torch.tensor([0.4, 0.6]))
    x = torch.randn(1, 3, M)
    with torch.no_grad():
        unmerged = layer(x)
        layer.merge([0.4, 0.6])
        merged = layer(x)
        layer.unmerge()
    torch.testing.assert_close(merged, unmerged, rtol=1e-5, atol=1e-5)
    assert torch.equal(layer.base.weight.data, weight) and layer.base.bias is None


def test_parameter_count_matches_method_formula():
    # METHOD.md §4: (m + n)(r1 + r2) + r1² + k·r2²
    for r1, r2 in [(4, 4), (2, 3)]:
        layer = make_layer(r1, r2)
        assert layer.trainable_count() == (M + N) * (r1 + r2) + r1**2 + K * r2**2


def test_starts_as_frozen_layer():
    torch.manual_seed(0)
    layer = PBLoRALinear(nn.Linear(M, N), PreferenceState(torch.zeros(K, 4)), 2, 2, 2.0, K)
    layer.state.set(torch.tensor([0.5, 0.5]))
    x = torch.randn(1, 2, M)
    assert torch.equal(layer(x), layer.base(x))
