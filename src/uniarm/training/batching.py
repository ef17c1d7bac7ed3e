"""Preference pairs as token ids, and mini-batches of them with explicit lengths.

A pair's prompt is the chat-templated conversation with the assistant turn opened (as the
decoder renders it); each response is its text followed by EOS. The EOS is a label: it is the
ARM's verdict that the response may end there. The SmolLM2 tokenizer pads with EOS
(pad = eos = <|im_end|>), so which tokens are labels is never read off `input_ids != pad`; it
comes from the prompt and response lengths recorded here.

One batch of n pairs holds 2n rows: response 0 of every pair, then response 1 of every pair,
so both responses are scored in one forward and every objective's label can be applied to the
same two rewards afterwards.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from uniarm.data.schema import PreferencePair, render_prompt
from uniarm.errors import UniarmError


@dataclass(frozen=True)
class EncodedPair:
    """One pair as token ids, with its labels in the order of the run's objectives.

    Attributes:
        prompt: the prompt's ids (chat template included).
        responses: the two responses' ids, each ending in EOS.
        winners: per objective, the index (0 or 1) of the better response.
        scores: per objective, the two responses' scores; None when any objective has none.
    """

    prompt: tuple[int, ...]
    responses: tuple[tuple[int, ...], tuple[int, ...]]
    winners: tuple[int, ...]
    scores: tuple[tuple[float, float], ...] | None


@dataclass
class TokenBatch:
    """2n rows of prompt + response ids, right-padded, with each row's two lengths."""

    input_ids: torch.Tensor  # (rows, T)
    attention_mask: torch.Tensor  # (rows, T)
    prompt_lengths: torch.Tensor  # (rows,)
    response_lengths: torch.Tensor  # (rows,)

    def to(self, device) -> TokenBatch:
        return TokenBatch(*(t.to(device) for t in vars(self).values()))


@dataclass
class PairLabels:
    """The labels of n pairs for k objectives."""

    winners: torch.Tensor  # (n, k) long, 0 or 1
    scores: torch.Tensor  # (n, k, 2) float; NaN where a pair has no scores
    has_scores: torch.Tensor  # (n,) bool

    def to(self, device) -> PairLabels:
        return PairLabels(*(t.to(device) for t in vars(self).values()))


def encode_prompt(tokenizer, conversation, max_tokens: int) -> list[int]:
    """The prompt's ids, cut from the left to `max_tokens` (the decoder renders it the same)."""
    text = render_prompt(tokenizer, conversation)
    templated = bool(getattr(tokenizer, "chat_template", None))
    ids = tokenizer(text, add_special_tokens=not templated)["input_ids"]
    return ids[-max_tokens:]


def encode_response(tokenizer, text: str, max_tokens: int) -> list[int]:
    """The response's ids plus EOS (a label even when pad = eos). A longer response is cut
    from the right to `max_tokens` and gets no EOS: it had not ended there, and an EOS label
    in mid-sentence would penalise exactly the long responses."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise UniarmError("the tokenizer has no EOS token", "use a model with an EOS token")
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) >= max_tokens:
        return ids[:max_tokens]
    return ids + [eos]


def encode_pairs(
    tokenizer,
    pairs: Sequence[PreferencePair],
    objectives: Sequence[str],
    max_prompt_tokens: int,
    max_response_tokens: int,
) -> list[EncodedPair]:
    """Tokenise every pair once; a pair missing a label of `objectives` is an error."""
    encoded = []
    for number, pair in enumerate(pairs):
        missing = [o for o in objectives if o not in pair.winners]
        if missing:
            raise UniarmError(
                f"training pair {number} ({pair.source}) has no label for {', '.join(missing)}",
                "train on a data set that labels every objective of the task",
            )
        has_scores = all(o in pair.scores for o in objectives)
        encoded.append(
            EncodedPair(
                prompt=tuple(encode_prompt(tokenizer, pair.conversation, max_prompt_tokens)),
                responses=tuple(
                    tuple(encode_response(tokenizer, r, max_response_tokens))
                    for r in pair.responses
                ),
                winners=tuple(int(pair.winners[o]) for o in objectives),
                scores=tuple(tuple(pair.scores[o]) for o in objectives) if has_scores else None,
            )
        )
    return encoded


def collate(pairs: Sequence[EncodedPair], pad_id: int) -> tuple[TokenBatch, PairLabels]:
    """A batch of 2n rows (all responses 0, then all responses 1) and the pairs' labels."""
    rows = [(p.prompt, p.responses[0]) for p in pairs] + [(p.prompt, p.responses[1]) for p in pairs]
    width = max(len(prompt) + len(response) for prompt, response in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (prompt, response) in enumerate(rows):
        length = len(prompt) + len(response)
        input_ids[i, :length] = torch.tensor(prompt + response)
        attention_mask[i, :length] = 1
    batch = TokenBatch(
        input_ids,
        attention_mask,
        torch.tensor([len(p) for p, _ in rows]),
        torch.tensor([len(r) for _, r in rows]),
    )
    k = len(pairs[0].winners)
    nan_scores = ((math.nan, math.nan),) * k
    labels = PairLabels(
        winners=torch.tensor([p.winners for p in pairs], dtype=torch.long),
        scores=torch.tensor([p.scores or nan_scores for p in pairs], dtype=torch.float32),
        has_scores=torch.tensor([p.scores is not None for p in pairs]),
    )
    return batch, labels
