"""The ARM rewards and losses against hand computations and an independent route."""

import math

import pytest
import torch

from conftest import make_tiny_llama
from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.data.schema import PreferencePair, Turn
from uniarm.training.batching import (
    EncodedPair,
    PairLabels,
    collate,
    encode_pairs,
    encode_response,
)
from uniarm.training.losses import arm_loss, global_winners, member_loss, preference_loss
from uniarm.training.rewards import response_logprobs

OBJECTIVES = ("helpful", "harmless")


def random_arm(tokenizer):
    model = make_tiny_llama(tokenizer, seed=0)
    arm = PreferenceARM(model, tokenizer, OBJECTIVES, AdapterConfig())
    torch.manual_seed(5)
    with torch.no_grad():
        for p in arm.trainable_parameters():
            p.normal_(std=0.2)
    return arm


def pairs_of_various_lengths():
    return [
        PreferencePair(
            (Turn("user", "How do I boil an egg?"),),
            ("Put it in boiling water for nine minutes.", "No."),
            winners={"helpful": 0, "harmless": 1},
        ),
        PreferencePair(
            (Turn("user", "Hi"),),
            ("", "Hello! How can I help you today?"),
            winners={"helpful": 1, "harmless": 1},
        ),
    ]


def reference_logprobs(model, prompt: list[int], response: list[int]) -> float:
    """Independent route: a full-sequence forward, log_softmax, manual indexing."""
    ids = torch.tensor([prompt + response])
    logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return sum(float(logp[len(prompt) + t - 1, tok]) for t, tok in enumerate(response))


def test_rewards_match_a_full_forward(tokenizer):
    arm = random_arm(tokenizer)
    arm.set_preference([0.3, 0.7])
    encoded = encode_pairs(tokenizer, pairs_of_various_lengths(), OBJECTIVES, 64, 32)
    batch, _ = collate(encoded, tokenizer.pad_token_id)
    with torch.no_grad():
        got = response_logprobs(arm.model, batch)
        rows = [(p.prompt, p.responses[0]) for p in encoded] + [
            (p.prompt, p.responses[1]) for p in encoded
        ]
        expected = [reference_logprobs(arm.model, list(a), list(b)) for a, b in rows]
    torch.testing.assert_close(
        got.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-4, atol=1e-4
    )


def test_final_eos_is_a_label_although_pad_is_eos(tokenizer):
    assert tokenizer.pad_token_id == tokenizer.eos_token_id  # SmolLM2: both <|im_end|>
    encoded = encode_pairs(tokenizer, pairs_of_various_lengths(), OBJECTIVES, 64, 32)
    empty = encoded[1].responses[0]
    assert empty == (tokenizer.eos_token_id,)  # the empty response is EOS alone
    batch, _ = collate(encoded, tokenizer.pad_token_id)
    assert batch.response_lengths.tolist() == [len(p.responses[i]) for i in (0, 1) for p in encoded]
    arm = random_arm(tokenizer)
    arm.set_preference([1.0, 0.0])
    with torch.no_grad():
        got = response_logprobs(arm.model, batch)[1]  # row 1: pair 1, response 0 (EOS only)
        expected = reference_logprobs(arm.model, list(encoded[1].prompt), [tokenizer.eos_token_id])
    assert got.item() == pytest.approx(expected, abs=1e-4)
    assert got.item() < 0  # one real label, not zero labels


def test_cut_responses_have_no_eos_and_whole_ones_keep_it(tokenizer):
    text = "one two three four five six seven eight"
    full = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert encode_response(tokenizer, text, 4) == full[:4]
    assert encode_response(tokenizer, text, len(full)) == full  # exactly full: no room for EOS
    assert encode_response(tokenizer, text, len(full) + 1) == full + [tokenizer.eos_token_id]
    assert encode_response(tokenizer, "ok", 4) == tokenizer("ok", add_special_tokens=False)[
        "input_ids"
    ] + [tokenizer.eos_token_id]


def labels(winners, scores=None):
    n, k = len(winners), len(winners[0])
    if scores is None:
        score_tensor = torch.full((n, k, 2), math.nan)
        has = torch.zeros(n, dtype=torch.bool)
    else:
        score_tensor = torch.tensor(scores, dtype=torch.float32)
        has = torch.ones(n, dtype=torch.bool)
    return PairLabels(torch.tensor(winners), score_tensor, has)


def test_arm_loss_is_minus_log_sigmoid_of_the_scaled_margin():
    margins = torch.tensor([2.0, -1.0, 0.0])
    expected = [-math.log(1 / (1 + math.exp(-0.5 * m))) for m in (2.0, -1.0, 0.0)]
    torch.testing.assert_close(arm_loss(margins, 0.5), torch.tensor(expected))


def test_preference_loss_by_hand():
    # two pairs; rewards of response 0 then response 1
    rewards = torch.tensor([-3.0, -5.0, -4.0, -2.0])  # pair 0: r0=-3, r1=-4; pair 1: -5, -2
    lab = labels([[0, 1], [1, 1]])  # helpful: 0 wins, 1 wins; harmless: 1 wins on both
    pref, beta, c = torch.tensor([0.25, 0.75]), 0.5, 0.5

    def ell(m):
        return math.log(1 + math.exp(-beta * m))

    helpful = (ell(-3 - -4) + ell(-2 - -5)) / 2  # margins +1, +3
    harmless = (ell(-4 - -3) + ell(-2 - -5)) / 2  # margins -1, +3
    # global: Σ λ (2z - 1): pair 0 z = (1, 0) -> 0.25 - 0.75 < 0 -> response 1 wins;
    # pair 1 z = (0, 0) -> -1 -> response 1 wins
    global_ = (ell(-4 - -3) + ell(-2 - -5)) / 2
    out = preference_loss(rewards, lab, pref, beta, c)
    assert out.local.tolist() == pytest.approx([helpful, harmless], rel=1e-6)
    assert out.global_loss.item() == pytest.approx(global_, rel=1e-6)
    assert out.total.item() == pytest.approx(0.25 * helpful + 0.75 * harmless + c * global_)
    assert out.accuracy.tolist() == [1.0, 0.5]
    assert preference_loss(rewards, lab, pref, beta, 0.0).global_loss is None  # PARM: no L_g


def test_global_labels_by_hand():
    pref = torch.tensor([0.7, 0.3])
    # binary labels only: Σ λ_i (2 z_i - 1), z_i = 1 when response 0 wins objective i
    binary = labels([[0, 1], [1, 0], [0, 0], [1, 1]])
    winners, valid = global_winners(binary, pref)
    # pair 0: 0.7 - 0.3 = 0.4 > 0 -> 0; pair 1: -0.4 -> 1; pair 2: 1 -> 0; pair 3: -1 -> 1
    assert winners.tolist() == [0, 1, 0, 1] and valid.all()
    # scores: Σ λ_i s_i(y); helpful favours response 0 by 1, harmless response 1 by 3
    scored = labels([[0, 1]], scores=[[[2.0, 1.0], [-4.0, -1.0]]])
    winners, valid = global_winners(scored, pref)
    assert winners.tolist() == [1] and valid.all()  # 0.7·1 + 0.3·(-3) = -0.2 < 0
    tie = global_winners(labels([[0, 1]]), torch.tensor([0.5, 0.5]))
    assert tie[1].tolist() == [False]  # an exact tie has no global winner


def test_scores_win_over_labels_only_where_every_objective_has_one():
    pref = torch.tensor([0.5, 0.5])
    lab = PairLabels(
        winners=torch.tensor([[1, 1], [1, 1]]),
        scores=torch.tensor([[[5.0, 0.0], [5.0, 0.0]], [[math.nan] * 2] * 2]),
        has_scores=torch.tensor([True, False]),
    )
    winners, _ = global_winners(lab, pref)
    assert winners.tolist() == [0, 1]


def test_member_loss_uses_its_own_objective():
    rewards = torch.tensor([-1.0, -2.0, -3.0, -1.0])
    lab = labels([[0, 1], [0, 1]])
    loss, accuracy = member_loss(rewards, lab, 1, 1.0)  # harmless: response 1 wins
    expected = (math.log(1 + math.exp(-(-3 + 1))) + math.log(1 + math.exp(-(-1 + 2)))) / 2
    assert loss.item() == pytest.approx(expected) and accuracy.item() == 0.5


def test_collate_rows_are_responses_0_then_responses_1():
    pairs = [
        EncodedPair((5, 6), ((7, 2), (8, 9, 2)), (0,), None),
        EncodedPair((5,), ((3, 2), (2,)), (1,), None),
    ]
    batch, lab = collate(pairs, pad_id=2)
    assert batch.input_ids.tolist() == [
        [5, 6, 7, 2, 2],
        [5, 3, 2, 2, 2],
        [5, 6, 8, 9, 2],
        [5, 2, 2, 2, 2],
    ]
    assert batch.attention_mask.sum(1).tolist() == [4, 3, 5, 2]
    assert batch.prompt_lengths.tolist() == [2, 1, 2, 1]
    assert batch.response_lengths.tolist() == [2, 2, 3, 1]
    assert lab.winners.tolist() == [[0], [1]] and not lab.has_scores.any()


def test_gradients_reach_only_the_adapters(tokenizer):
    arm = random_arm(tokenizer)
    encoded = encode_pairs(tokenizer, pairs_of_various_lengths(), OBJECTIVES, 64, 32)
    batch, lab = collate(encoded, tokenizer.pad_token_id)
    arm.set_preference([0.5, 0.5])
    out = preference_loss(
        response_logprobs(arm.model, batch), lab, torch.tensor([0.5, 0.5]), 0.1, 0.5
    )
    out.total.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in arm.trainable_parameters())
    assert all(p.grad is None for p in arm.model.parameters() if not p.requires_grad)
