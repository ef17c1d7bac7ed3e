"""The ARM's reward of a response: r(x, y) = Σ_t log π_r(y_t | x, y_<t) (METHOD.md §1).

Only response tokens are scored, so the LM head (a vocabulary-wide matmul, the largest single
layer of a small model) runs on the hidden states at response positions only: the transformer
body runs on the whole rows, its outputs at the positions that predict a response token are
gathered into one (tokens, d) matrix, and the head and the log-softmax run on that alone.

# NOTE: chosen and rejected share their prompt, which is still run twice (once per row). One
# prompt pass whose KV cache both responses reuse would save that pass; not done, since the
# safety prompts are short next to their responses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from uniarm.training.batching import TokenBatch


def split_causal_lm(model) -> tuple[torch.nn.Module, torch.nn.Module]:
    """(transformer body, LM head) of a Hugging Face causal LM, peft-wrapped or not."""
    if hasattr(model, "get_base_model"):  # a peft model: its adapters live inside the modules
        model = model.get_base_model()
    return getattr(model, model.base_model_prefix), model.get_output_embeddings()


def response_positions(batch: TokenBatch) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, position) of every hidden state that predicts a response token.

    Row i's response occupies positions p_i .. p_i + q_i - 1, so its tokens are predicted at
    p_i - 1 .. p_i + q_i - 2.
    """
    lengths = batch.response_lengths
    rows = torch.repeat_interleave(torch.arange(len(lengths), device=lengths.device), lengths)
    starts = torch.cumsum(lengths, 0) - lengths  # first flat index of each row's tokens
    offset = torch.arange(int(lengths.sum()), device=lengths.device) - starts[rows]
    return rows, batch.prompt_lengths[rows] - 1 + offset


def response_logprobs(model, batch: TokenBatch) -> torch.Tensor:
    """(rows,) sums of the response tokens' log-probabilities under `model`."""
    body, head = split_causal_lm(model)
    hidden = body(input_ids=batch.input_ids, attention_mask=batch.attention_mask)[0]
    rows, positions = response_positions(batch)
    logits = head(hidden[rows, positions]).float()
    cap = getattr(getattr(model, "config", None), "final_logit_softcapping", None)
    if cap:  # Gemma 2 style logit capping, as the model's own forward applies it
        logits = cap * torch.tanh(logits / cap)
    targets = batch.input_ids[rows, positions + 1]
    token_logprobs = -F.cross_entropy(logits, targets, reduction="none")
    sums = torch.zeros(len(batch.response_lengths), device=logits.device, dtype=logits.dtype)
    return sums.index_add(0, rows, token_logprobs)
