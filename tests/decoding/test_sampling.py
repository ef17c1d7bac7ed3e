"""The guided distribution and the samplers, against values worked out by hand."""

import math

import pytest
import torch

from uniarm.decoding.sampling import choose_tokens, filter_top_k, filter_top_p, guided_log_probs


def test_guided_log_probs_by_hand():
    base = torch.tensor([[0.0, math.log(3.0), 5.0]])  # probs 1/4, 3/4 over the shared ids
    arm = torch.tensor([[math.log(3.0), 0.0, -9.0, 7.0]])  # 3/4, 1/4; id 3 is an added token
    got = guided_log_probs(base, [arm], [torch.tensor([2.0])], vocab_size=2)
    # base * arm^2 ∝ (1/4 · 9/16, 3/4 · 1/16) = (9, 3) / 64 → (3/4, 1/4)
    torch.testing.assert_close(got.exp(), torch.tensor([[0.75, 0.25]]))


def test_zero_weight_leaves_the_base_and_rows_get_their_own_weight():
    base = torch.randn(2, 5)
    arm = torch.randn(2, 5)
    got = guided_log_probs(base, [arm], [torch.tensor([0.0, 1.0])], vocab_size=5)
    torch.testing.assert_close(got[0], torch.log_softmax(base[0], -1))
    expected = torch.log_softmax(torch.log_softmax(base[1], -1) + torch.log_softmax(arm[1], -1), -1)
    torch.testing.assert_close(got[1], expected)


def test_top_k_and_top_p_keep_the_right_tokens():
    probs = torch.tensor([[0.5, 0.2, 0.15, 0.1, 0.05]])
    scores = probs.log()
    kept_k = torch.isfinite(filter_top_k(scores, 2))
    assert kept_k.tolist() == [[True, True, False, False, False]]
    # p = 0.8: 0.5 + 0.2 = 0.7 < 0.8, so the third token is needed too
    kept_p = torch.isfinite(filter_top_p(scores, 0.8))
    assert kept_p.tolist() == [[True, True, True, False, False]]
    # p below the top token's mass still keeps one token
    assert torch.isfinite(filter_top_p(scores, 0.1)).sum() == 1
    shuffled = scores[:, [3, 0, 4, 2, 1]]
    kept_shuffled = torch.isfinite(filter_top_p(shuffled, 0.8))
    assert kept_shuffled.tolist() == [[False, True, False, True, True]]


def test_greedy_takes_the_argmax():
    scores = torch.tensor([[0.1, 3.0, 2.0], [5.0, 0.0, 1.0]])
    assert choose_tokens(scores, do_sample=False).tolist() == [1, 0]


def test_sampling_follows_the_distribution_and_the_seed():
    probs = torch.tensor([0.6, 0.3, 0.1])
    scores = probs.log().expand(4000, 3)
    gens = [torch.Generator().manual_seed(i) for i in range(4000)]
    draws = choose_tokens(scores, do_sample=True, generators=gens)
    freq = torch.bincount(draws, minlength=3).float() / 4000
    torch.testing.assert_close(freq, probs, atol=0.03, rtol=0)
    # temperature 0.5 squares the probabilities: (0.36, 0.09, 0.01) / 0.46
    gens = [torch.Generator().manual_seed(i) for i in range(4000)]
    hot = choose_tokens(scores, do_sample=True, temperature=0.5, generators=gens)
    freq = torch.bincount(hot, minlength=3).float() / 4000
    torch.testing.assert_close(freq, torch.tensor([0.36, 0.09, 0.01]) / 0.46, atol=0.03, rtol=0)


def test_a_rows_draw_does_not_depend_on_its_neighbours():
    scores = torch.randn(3, 50)
    alone = choose_tokens(scores[1:2], True, generators=[torch.Generator().manual_seed(7)])
    gens = [torch.Generator().manual_seed(s) for s in (1, 7, 2)]
    together = choose_tokens(scores, True, generators=gens)
    assert together[1] == alone[0]


def test_generator_count_must_match():
    with pytest.raises(ValueError):
        choose_tokens(torch.zeros(2, 3), True, generators=[torch.Generator()])
