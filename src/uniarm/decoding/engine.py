"""Guided decoding: a frozen base model steered token by token by reward models (METHOD.md §2).

    decoder = GuidedDecoder(base, tokenizer, guides=[PreferenceGuide(arm)])
    outputs = decoder.generate(["How do I pick a lock?"], preferences=[[0.3, 0.7]])

Each model keeps its own KV cache. Rows are left-padded; position ids come from the attention
mask, which grows by one column per step. Rows that share a prompt share the prefill of every
preference-independent model (the base, GenARM's members, a merged ARM): that prompt is run
once and its cache rows are copied. Finished rows are dropped from the batch and from every
cache once enough of them are done.

A `PreferenceGuide` keeps its merge between calls with the same single preference (see
`uniarm.decoding.guides`); `release()`, or leaving a `with GuidedDecoder(...)` block, gives
the ARMs back exactly as they were.

With `base_term=False` the base model's log-probabilities leave the mixture and its forward is
never run: log p = Σ_i w_i log π_i over the guides alone, which is MOD's logit mixing of
per-objective tuned models (METHOD.md §2). The base model then only supplies the vocabulary,
context length, device and EOS ids.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from uniarm.decoding.batching import chunk_rows, left_pad, next_positions, prefill_positions
from uniarm.decoding.config import DecodingConfig
from uniarm.decoding.guides import Guide, context_length, logit_width, new_cache
from uniarm.decoding.guides import next_token_logits as base_forward
from uniarm.decoding.prompts import EncodedPrompt, Prompt, encode_prompts
from uniarm.decoding.sampling import choose_tokens, guided_log_probs
from uniarm.errors import UniarmError
from uniarm.models import shared_vocab_size
from uniarm.preference import as_tensor

log = logging.getLogger(__name__)


@dataclass
class Generation:
    """One response.

    Attributes:
        text: the response text (special tokens removed, cut before a stop string).
        token_ids: the generated ids, EOS included when it ended the response (and the tokens
            that completed a stop string).
        finish_reason: `eos`, `stop` (a stop string) or `length` (max_new_tokens).
        prompt_tokens: tokens of the prompt the models saw.
        prompt_cut: tokens cut from the prompt's left to fit the context.
        preference: the row's preference (None for the base model alone).
    """

    text: str
    token_ids: list[int]
    finish_reason: str
    prompt_tokens: int
    prompt_cut: int = 0
    preference: tuple[float, ...] | None = None


@dataclass
class StepInfo:
    """What one decoding step saw, for tests and diagnostics (`on_step`)."""

    step: int
    rows: list[int]  # the call's row index of each batch row
    base_logits: torch.Tensor | None  # None when the decoder has no base term
    guide_logits: list[torch.Tensor]
    log_probs: torch.Tensor
    tokens: torch.Tensor


@dataclass
class _Stream:
    """A model in the decoding loop with its KV cache."""

    forward: Callable
    shares_prefill: bool
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


class GuidedDecoder:
    """Decode a frozen base model under zero or more guides, many preferences per batch.

    Args:
        base: the frozen base causal LM.
        tokenizer: the base model's tokenizer (pad and EOS ids, chat template).
        guides: the reward models; none for the base model alone.
        config: default decoding settings (each call may pass its own).
        eos_token_ids: ids that end a response (default: the tokenizer's and the base
            model's generation config's EOS ids).
        base_term: keep log π_base in the mixture; False drops it and skips the base forward
            (MOD: the guides' weighted log-probabilities alone; needs at least one guide).
    """

    def __init__(
        self,
        base,
        tokenizer,
        guides: Sequence[Guide] = (),
        config: DecodingConfig | None = None,
        eos_token_ids: Sequence[int] | None = None,
        base_term: bool = True,
    ):
        self.base = base
        self.tokenizer = tokenizer
        self.guides = list(guides)
        self.base_term = bool(base_term)
        if not self.base_term and not self.guides:
            raise UniarmError(
                "a decoder without the base term needs at least one guide",
                "pass the tuned models as guides, or keep base_term=True",
            )
        self.config = config or DecodingConfig()
        self.objectives = self._check_objectives()
        self.vocab_size = self._check_vocab()
        self.eos_token_ids = set(eos_token_ids or _eos_ids(base, tokenizer))
        if not self.eos_token_ids:
            raise UniarmError("the tokenizer has no EOS token", "pass eos_token_ids")
        pad = tokenizer.pad_token_id
        self.pad_token_id = pad if pad is not None else min(self.eos_token_ids)
        contexts = [context_length(m) for m in (base, *(g.model for g in self.guides))]
        self.context = min((c for c in contexts if c), default=None)
        self.device = base.get_input_embeddings().weight.device
        self.last_stats: dict = {}

    def _check_objectives(self) -> tuple[str, ...]:
        found = {g.objectives for g in self.guides}
        if len(found) > 1:
            raise UniarmError(
                f"the guides disagree on the objectives: {sorted(found)}",
                "combine reward models of one task",
            )
        return next(iter(found), ())

    def _check_vocab(self) -> int:
        """The shared vocabulary of base and guides; a tokenizer mismatch is refused here."""
        size = logit_width(self.base)
        for guide in self.guides:
            width = logit_width(guide.model)
            if guide.tokenizer is not None:
                size = min(size, shared_vocab_size(self.tokenizer, guide.tokenizer, size, width))
            else:
                size = min(size, width)
        return size

    # -- public API --------------------------------------------------------------------------

    def generate(
        self,
        prompts: Sequence[Prompt],
        preferences=None,
        config: DecodingConfig | None = None,
        seeds: Sequence[int] | None = None,
        on_step: Callable[[StepInfo], None] | None = None,
        progress: bool = False,
    ) -> list[Generation]:
        """One response per prompt; row i is steered by `preferences[i]`.

        Args:
            prompts: user messages (text) or conversations (tuples of `Turn`).
            preferences: (rows, k) weights, one row per prompt, or one (k,) row for all;
                ignored without guides.
            config: decoding settings for this call (default: the decoder's).
            seeds: one sampling seed per row (default: config.seed + row index).
            on_step: called after every step with a `StepInfo`.
            progress: show a progress bar over the rows.
        """
        cfg = config or self.config
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts:
            return []
        rows = len(prompts)
        prefs = self._preference_rows(preferences, rows)
        seeds = list(seeds) if seeds is not None else [cfg.seed + i for i in range(rows)]
        if len(seeds) != rows:
            raise UniarmError(f"{len(seeds)} seeds for {rows} prompts", "give one seed per prompt")
        encoded = encode_prompts(
            self.tokenizer, prompts, cfg.chat_template, self._prompt_budget(cfg), cfg.overlong
        )

        results: list[Generation | None] = [None] * rows
        start, new_tokens = time.perf_counter(), 0
        bar = tqdm(total=rows, desc="decoding", unit="row", disable=not progress)
        try:
            for chunk in chunk_rows(encoded, cfg.batch_size):
                for row, gen in self._decode_chunk(chunk, encoded, prefs, seeds, cfg, on_step):
                    results[row] = gen
                    new_tokens += len(gen.token_ids)
                bar.update(len(chunk))
        finally:
            bar.close()
            for guide in self.guides:
                guide.finish()
        seconds = time.perf_counter() - start
        self.last_stats = {"rows": rows, "new_tokens": new_tokens, "seconds": seconds}
        log.debug("%d rows, %d new tokens in %.1f s", rows, new_tokens, seconds)
        return results

    def release(self) -> None:
        """Undo what the guides keep between calls (a kept merge): the ARMs as they were."""
        for guide in self.guides:
            guide.release()

    def __enter__(self) -> GuidedDecoder:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def sweep(
        self,
        prompts: Sequence[Prompt],
        preferences,
        config: DecodingConfig | None = None,
        on_step: Callable[[StepInfo], None] | None = None,
        progress: bool = False,
    ) -> list[list[Generation]]:
        """Every prompt under every preference: result[p][j] is prompt p under preference j.

        Each prompt goes through the preference-independent models once (see the module
        docstring); an unmerged UniARM/PARM ARM still prefills every (prompt, preference) row,
        since the preference changes its keys and values.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        grid = as_tensor(preferences, len(self.objectives)) if self.guides else None
        count = 1 if grid is None else grid.shape[0]
        rows = [p for p in prompts for _ in range(count)]
        row_prefs = None if grid is None else grid.repeat(len(prompts), 1)
        flat = self.generate(rows, row_prefs, config=config, on_step=on_step, progress=progress)
        return [flat[i * count : (i + 1) * count] for i in range(len(prompts))]

    # -- checks ------------------------------------------------------------------------------

    def _preference_rows(self, preferences, rows: int) -> torch.Tensor | None:
        if not self.guides:
            return None
        if preferences is None:
            raise UniarmError(
                "guided decoding needs a preference",
                f"give weights for {', '.join(self.objectives)}, e.g. "
                + ",".join(f"{o}={1 / len(self.objectives):.2g}" for o in self.objectives),
            )
        prefs = as_tensor(preferences, len(self.objectives))
        if prefs.shape[0] == 1 and rows > 1:
            prefs = prefs.expand(rows, -1)
        if prefs.shape[0] != rows:
            raise UniarmError(
                f"{prefs.shape[0]} preference rows for {rows} prompts",
                "give one preference per prompt, or a single one for all",
            )
        return prefs

    def _prompt_budget(self, cfg: DecodingConfig) -> int:
        if self.context is None:
            return 1 << 30
        if cfg.max_new_tokens >= self.context:
            raise UniarmError(
                f"max_new_tokens={cfg.max_new_tokens} does not fit the models' context of "
                f"{self.context} tokens",
                f"use at most {self.context - 1}",
            )
        return self.context - cfg.max_new_tokens

    # -- the decoding loop -------------------------------------------------------------------

    @torch.no_grad()
    def _decode_chunk(self, chunk, encoded, prefs, seeds, cfg, on_step):
        """Decode the rows of one batch; yields (row index, Generation)."""
        unique = list(dict.fromkeys(encoded[r].ids for r in chunk))
        row_prompt = torch.tensor([unique.index(encoded[r].ids) for r in chunk])
        ids, mask = left_pad(unique, self.pad_token_id, self.device)
        chunk_prefs = None if prefs is None else prefs[chunk]

        for guide in self.guides:
            guide.prepare(chunk_prefs)
        streams = [_Stream(self._base_step, True)] if self.base_term else []
        streams += [_Stream(g.forward, not g.preference_dependent) for g in self.guides]
        models = [self.base] if self.base_term else []
        models += [g.model for g in self.guides]
        first_guide = 1 if self.base_term else 0  # index of the first guide's stream
        for guide in self.guides:
            guide.condition(chunk_prefs)
        self._prefill(streams, models, ids, mask, row_prompt, cfg.share_prefill)

        batch = _Batch(
            rows=list(chunk),
            preferences=chunk_prefs,
            weights=[g.weights(chunk_prefs, cfg.beta).to(self.device) for g in self.guides],
            generators=_generators(seeds, chunk, self.device) if cfg.do_sample else None,
            mask=mask[row_prompt.to(self.device)],
            done=[False] * len(chunk),
        )
        tokens: dict[int, list[int]] = {r: [] for r in chunk}
        finish: dict[int, str] = {}
        stop_window = 4 * max((len(s) for s in cfg.stop), default=0) + 4

        for step in range(cfg.max_new_tokens):
            base_logits = streams[0].logits if self.base_term else None
            guide_logits = [s.logits for s in streams[first_guide:]]
            if self.base_term:
                log_probs = guided_log_probs(
                    base_logits, guide_logits, batch.weights, self.vocab_size
                )
            else:
                log_probs = mixture_log_probs(guide_logits, batch.weights, self.vocab_size)
            chosen = choose_tokens(
                log_probs, cfg.do_sample, cfg.temperature, cfg.top_k, cfg.top_p, batch.generators
            )
            done = torch.tensor(batch.done, device=chosen.device)
            chosen = chosen.masked_fill(done, self.pad_token_id)  # finished rows idle on pads
            if on_step is not None:
                on_step(
                    StepInfo(step, list(batch.rows), base_logits, guide_logits, log_probs, chosen)
                )
            self._record(batch, chosen.tolist(), tokens, finish, cfg, stop_window)
            if all(batch.done) or step == cfg.max_new_tokens - 1:
                break

            if sum(batch.done) >= cfg.compact_fraction * len(batch.rows):
                chosen = self._compact(batch, streams, chosen)
            batch.mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch.rows), 1)], dim=1)
            positions = next_positions(batch.mask)
            for stream in streams:
                stream.logits = stream.forward(chosen[:, None], batch.mask, positions, stream.cache)

        for row in chunk:
            reason = finish.get(row, "length")
            yield row, self._result(row, tokens[row], reason, encoded, prefs, cfg)

    def _record(self, batch: _Batch, chosen, tokens, finish, cfg, stop_window) -> None:
        """Append each unfinished row's token; mark the rows this token finished."""
        for b, token in enumerate(chosen):
            if batch.done[b]:
                continue
            row = batch.rows[b]
            tokens[row].append(token)
            reason = self._finished(tokens[row], cfg, stop_window)
            if reason is not None:
                finish[row] = reason
                batch.done[b] = True

    def _base_step(self, input_ids, attention_mask, position_ids, cache):
        return base_forward(self.base, input_ids, attention_mask, position_ids, cache)

    def _prefill(self, streams, models, ids, mask, row_prompt, share: bool) -> None:
        """Run the prompts through every model; shared streams run each unique prompt once."""
        positions = prefill_positions(mask)
        index = row_prompt.to(ids.device)
        identity = len(row_prompt) == ids.shape[0] and bool(
            (row_prompt == torch.arange(len(row_prompt))).all()
        )
        for stream, model in zip(streams, models, strict=True):
            stream.cache = new_cache(model)
            if identity:
                stream.logits = stream.forward(ids, mask, positions, stream.cache)
            elif share and stream.shares_prefill:
                logits = stream.forward(ids, mask, positions, stream.cache)
                stream.logits = logits[index]
                stream.cache.batch_select_indices(index)
            else:
                stream.logits = stream.forward(
                    ids[index], mask[index], positions[index], stream.cache
                )

    def _compact(self, batch: _Batch, streams, chosen: torch.Tensor) -> torch.Tensor:
        """Drop the finished rows from the batch and from every cache."""
        keep_rows = [b for b, done in enumerate(batch.done) if not done]
        keep = torch.tensor(keep_rows, device=self.device)
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
            for guide in self.guides:
                guide.condition(batch.preferences)
        return chosen[keep]

    def _finished(self, generated: list[int], cfg: DecodingConfig, stop_window: int) -> str | None:
        if generated[-1] in self.eos_token_ids:
            return "eos"
        if cfg.stop:
            tail = self.tokenizer.decode(generated[-stop_window:], skip_special_tokens=True)
            if any(s in tail for s in cfg.stop):
                return "stop"
        if len(generated) >= cfg.max_new_tokens:
            return "length"
        return None

    def _result(self, row, generated, reason, encoded, prefs, cfg) -> Generation:
        content = generated[:-1] if reason == "eos" else generated
        text = self.tokenizer.decode(content, skip_special_tokens=True)
        if reason == "stop":
            text = text[: min(text.find(s) for s in cfg.stop if s in text)]
        prompt: EncodedPrompt = encoded[row]
        preference = None if prefs is None else _as_tuple(prefs[row])
        return Generation(text, generated, reason, len(prompt.ids), prompt.cut, preference)


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


def _as_tuple(preference: torch.Tensor) -> tuple[float, ...]:
    # float32 rows print as 0.30000001; the user gave 0.3
    return tuple(round(float(v), 6) for v in preference)


def _eos_ids(model, tokenizer) -> list[int]:
    ids = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    generation = getattr(model, "generation_config", None)
    extra = getattr(generation, "eos_token_id", None)
    if isinstance(extra, int):
        extra = [extra]
    return ids + list(extra or [])


def _generators(seeds, chunk, device) -> list[torch.Generator]:
    return [torch.Generator(device=device).manual_seed(int(seeds[r])) for r in chunk]
