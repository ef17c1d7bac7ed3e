"""The decoding loop over one batch of rows: prefill, the guided steps, compaction (METHOD.md §2).

`GuidedDecoder.generate` (`uniarm.decoding.engine`) checks the call, encodes the prompts and
splits the rows into batches; `decode_chunk` decodes one batch. It is kept apart so that the
engine module reads as the public API and this one as the loop's steps.

Each model is a `_Stream` with its own KV cache. Rows that share a prompt share the prefill of
every preference-independent stream: the unique prompts run once and the cache rows are copied.
Finished rows idle on pad tokens until enough of them are done; then they are dropped from the
batch and from every cache.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

from uniarm.decoding.batching import left_pad, next_positions, prefill_positions
from uniarm.decoding.config import DecodingConfig
from uniarm.decoding.guides import new_cache
from uniarm.decoding.outputs import Generation, StepInfo
from uniarm.decoding.prompts import EncodedPrompt

# Looked up as this module's names at every step, so that a profiler can wrap them here
# (bench/step_timer.py) while the loop runs unchanged.
from uniarm.decoding.sampling import choose_tokens, guided_log_probs

if TYPE_CHECKING:
    from uniarm.decoding.engine import GuidedDecoder


@dataclass
class _Stream:
    """A model in the decoding loop with its KV cache."""

    forward: Callable
    shares_prefill: bool
    model: object
    cache: object = None
    logits: torch.Tensor | None = None


@dataclass
class _Batch:
    rows: list[int]  # row index in the call
    preferences: torch.Tensor | None
    weights: list[torch.Tensor]
    generators: list[torch.Generator] | None
    mask: torch.Tensor
    done: list[bool] = field(default_factory=list)


@torch.no_grad()
def decode_chunk(
    decoder: GuidedDecoder,
    chunk: list[int],
    encoded: Sequence[EncodedPrompt],
    prefs: torch.Tensor | None,
    seeds: Sequence[int],
    cfg: DecodingConfig,
    on_step: Callable[[StepInfo], None] | None,
) -> Iterator[tuple[int, Generation]]:
    """Decode the rows `chunk` of a call as one batch; yields (row index, Generation)."""
    unique = list(dict.fromkeys(encoded[r].ids for r in chunk))
    row_prompt = torch.tensor([unique.index(encoded[r].ids) for r in chunk])
    ids, mask = left_pad(unique, decoder.pad_token_id, decoder.device)
    chunk_prefs = None if prefs is None else prefs[chunk]

    for guide in decoder.guides:
        guide.prepare(chunk_prefs)
    streams = [_Stream(decoder._base_step, True, decoder.base)] if decoder.base_term else []
    streams += [_Stream(g.forward, not g.preference_dependent, g.model) for g in decoder.guides]
    first_guide = 1 if decoder.base_term else 0  # index of the first guide's stream
    for guide in decoder.guides:
        guide.condition(chunk_prefs)
    _prefill(streams, ids, mask, row_prompt, cfg.share_prefill)

    batch = _Batch(
        rows=list(chunk),
        preferences=chunk_prefs,
        weights=[g.weights(chunk_prefs, cfg.beta).to(decoder.device) for g in decoder.guides],
        generators=_generators(seeds, chunk, decoder.device) if cfg.do_sample else None,
        mask=mask[row_prompt.to(decoder.device)],
        done=[False] * len(chunk),
    )
    tokens: dict[int, list[int]] = {r: [] for r in chunk}
    finish: dict[int, str] = {}
    stop_window = 4 * max((len(s) for s in cfg.stop), default=0) + 4

    for step in range(cfg.max_new_tokens):
        base_logits = streams[0].logits if decoder.base_term else None
        guide_logits = [s.logits for s in streams[first_guide:]]
        if decoder.base_term:
            log_probs = guided_log_probs(
                base_logits, guide_logits, batch.weights, decoder.vocab_size
            )
        else:
            log_probs = mixture_log_probs(guide_logits, batch.weights, decoder.vocab_size)
        chosen = choose_tokens(
            log_probs, cfg.do_sample, cfg.temperature, cfg.top_k, cfg.top_p, batch.generators
        )
        done = torch.tensor(batch.done, device=chosen.device)
        chosen = chosen.masked_fill(done, decoder.pad_token_id)  # finished rows idle on pads
        if on_step is not None:
            on_step(StepInfo(step, list(batch.rows), base_logits, guide_logits, log_probs, chosen))
        _record(decoder, batch, chosen.tolist(), tokens, finish, cfg, stop_window)
        if all(batch.done) or step == cfg.max_new_tokens - 1:
            break

        if sum(batch.done) >= cfg.compact_fraction * len(batch.rows):
            chosen = _compact(decoder, batch, streams, chosen)
        batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch.rows), 1)], dim=1)
        positions = next_positions(batch.mask)
        for stream in streams:
            stream.logits = stream.forward(chosen[:, None], batch.mask, positions, stream.cache)

    for row in chunk:
        reason = finish.get(row, "length")
        yield row, _result(decoder, row, tokens[row], reason, encoded, prefs, cfg)


def mixture_log_probs(
    guide_logits: Sequence[torch.Tensor], guide_weights: Sequence[torch.Tensor], vocab_size: int
) -> torch.Tensor:
    """log p = Σ_i w_i log π_i, renormalised: the guides with no base term (MOD, METHOD.md §2).

    Same arguments as `guided_log_probs` without the base; (rows, vocab_size).
    """
    scores = None
    for logits, weight in zip(guide_logits, guide_weights, strict=True):
        term = torch.log_softmax(logits[:, :vocab_size].float(), dim=-1)
        term = weight.to(term.device, term.dtype).unsqueeze(1) * term
        scores = term if scores is None else scores + term
    return torch.log_softmax(scores, dim=-1)


# -- the loop's steps --------------------------------------------------------------------------


def _prefill(streams, ids, mask, row_prompt, share: bool) -> None:
    """Run the prompts through every model; shared streams run each unique prompt once."""
    positions = prefill_positions(mask)
    index = row_prompt.to(ids.device)
    identity = len(row_prompt) == ids.shape[0] and bool(
        (row_prompt == torch.arange(len(row_prompt))).all()
    )
    for stream in streams:
        stream.cache = new_cache(stream.model)
        if identity:
            stream.logits = stream.forward(ids, mask, positions, stream.cache)
        elif share and stream.shares_prefill:
            logits = stream.forward(ids, mask, positions, stream.cache)
            stream.logits = logits[index]
            stream.cache.batch_select_indices(index)
        else:
            stream.logits = stream.forward(ids[index], mask[index], positions[index], stream.cache)


def _record(decoder, batch: _Batch, chosen, tokens, finish, cfg, stop_window) -> None:
    """Append each unfinished row's token; mark the rows this token finished."""
    for b, token in enumerate(chosen):
        if batch.done[b]:
            continue
        row = batch.rows[b]
        tokens[row].append(token)
        reason = _finished(decoder, tokens[row], cfg, stop_window)
        if reason is not None:
            finish[row] = reason
            batch.done[b] = True


def _finished(decoder, generated: list[int], cfg: DecodingConfig, stop_window: int) -> str | None:
    if generated[-1] in decoder.eos_token_ids:
        return "eos"
    if cfg.stop:
        tail = decoder.tokenizer.decode(generated[-stop_window:], skip_special_tokens=True)
        if any(s in tail for s in cfg.stop):
            return "stop"
    if len(generated) >= cfg.max_new_tokens:
        return "length"
    return None


def _compact(decoder, batch: _Batch, streams, chosen: torch.Tensor) -> torch.Tensor:
    """Drop the finished rows from the batch and from every cache."""
    keep_rows = [b for b, done in enumerate(batch.done) if not done]
    keep = torch.tensor(keep_rows, device=decoder.device)
    for stream in streams:
        stream.cache.batch_select_indices(keep)
        stream.logits = None
    batch.rows = [batch.rows[i] for i in keep_rows]
    batch.mask = batch.mask[keep]
    batch.weights = [w[keep] for w in batch.weights]
    if batch.generators is not None:
        batch.generators = [batch.generators[i] for i in keep_rows]
    batch.done = [False] * len(keep_rows)
    if batch.preferences is not None:
        batch.preferences = batch.preferences[keep.cpu()]
        for guide in decoder.guides:
            guide.condition(batch.preferences)
    return chosen[keep]


def _result(decoder, row, generated, reason, encoded, prefs, cfg) -> Generation:
    content = generated[:-1] if reason == "eos" else generated
    text = decoder.tokenizer.decode(content, skip_special_tokens=True)
    if reason == "stop":
        text = text[: min(text.find(s) for s in cfg.stop if s in text)]
    prompt: EncodedPrompt = encoded[row]
    preference = None if prefs is None else _as_tuple(prefs[row])
    return Generation(text, generated, reason, len(prompt.ids), prompt.cut, preference)


def _as_tuple(preference: torch.Tensor) -> tuple[float, ...]:
    # float32 rows print as 0.30000001; the user gave 0.3
    return tuple(round(float(v), 6) for v in preference)


def _generators(seeds, chunk, device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(seeds[r])) for r in chunk]
