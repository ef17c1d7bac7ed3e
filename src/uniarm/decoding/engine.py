"""Guided decoding: a frozen base model steered token by token by reward models (METHOD.md §2).

    decoder = GuidedDecoder(base, tokenizer, guides=[PreferenceGuide(arm)])
    outputs = decoder.generate(["How do I pick a lock?"], [[0.3, 0.7]], max_new_tokens=32)

Each model keeps its own KV cache. Rows are left-padded; position ids come from the attention
mask, which grows by one column per step. Rows that share a prompt share the prefill of every
preference-independent model (the base, GenARM's members, a merged ARM): that prompt is run
once and its cache rows are copied. Finished rows are dropped from the batch and from every
cache once enough of them are done. This module holds the public API and the checks of a call;
the loop over one batch is `uniarm.decoding.loop`, what a call returns `uniarm.decoding.outputs`.

A `PreferenceGuide` keeps its merge between calls with the same single preference (see
`uniarm.decoding.guides`); `release()`, or leaving a `with GuidedDecoder(...)` block, gives
the ARMs back exactly as they were.

With `base_term=False` the base model's log-probabilities leave the mixture and its forward is
never run: log p = Σ_i w_i log π_i over the guides alone, which is MOD's logit mixing of
per-objective tuned models (METHOD.md §2). The base model then only supplies the vocabulary,
context length, device and EOS ids.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from uniarm.decoding.batching import chunk_rows
from uniarm.decoding.config import DecodingConfig
from uniarm.decoding.guides import Guide, context_length, logit_width
from uniarm.decoding.guides import next_token_logits as base_forward
from uniarm.decoding.loop import decode_chunk, mixture_log_probs
from uniarm.decoding.outputs import Generation, StepInfo
from uniarm.decoding.prompts import Prompt, encode_prompts
from uniarm.errors import UniarmError
from uniarm.models import shared_vocab_size
from uniarm.preference import as_tensor

# Defined beside the loop that builds or calls them, and part of this module's API as well.
__all__ = ["Generation", "GuidedDecoder", "StepInfo", "mixture_log_probs"]

log = logging.getLogger(__name__)


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
        **settings,
    ) -> list[Generation]:
        """One response per prompt; row i is steered by `preferences[i]`.

        Args:
            prompts: user messages (text) or conversations (tuples of `Turn`).
            preferences: (rows, k) weights, one row per prompt, or one (k,) row for all; a
                row may also be a {objective: weight} mapping. None without guides.
            config: decoding settings for this call (default: the decoder's).
            seeds: one sampling seed per row (default: config.seed + row index).
            on_step: called after every step with a `StepInfo`.
            progress: show a progress bar over the rows.
            **settings: `DecodingConfig` fields for this call (`max_new_tokens=32`,
                `temperature=0.7`, ...), over `config`; validated as `DecodingConfig` is.
        """
        cfg = self._call_config(config, settings)
        if isinstance(prompts, str):
            prompts = [prompts]
        self._check_preferences(preferences)
        if not prompts:
            self.last_stats = {"rows": 0, "new_tokens": 0, "seconds": 0.0}
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
                for row, gen in decode_chunk(self, chunk, encoded, prefs, seeds, cfg, on_step):
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
        preferences=None,
        config: DecodingConfig | None = None,
        on_step: Callable[[StepInfo], None] | None = None,
        progress: bool = False,
        **settings,
    ) -> list[list[Generation]]:
        """Every prompt under every preference: result[p][j] is prompt p under preference j.

        Each prompt goes through the preference-independent models once (see the module
        docstring); an unmerged UniARM/PARM ARM still prefills every (prompt, preference) row,
        since the preference changes its keys and values. `preferences` is None without
        guides; `config` and `**settings` are as in `generate`.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        self._check_preferences(preferences)
        grid = (
            as_tensor(preferences, len(self.objectives), self.objectives) if self.guides else None
        )
        count = 1 if grid is None else grid.shape[0]
        rows = [p for p in prompts for _ in range(count)]
        row_prefs = None if grid is None else grid.repeat(len(prompts), 1)
        flat = self.generate(
            rows, row_prefs, config=config, on_step=on_step, progress=progress, **settings
        )
        return [flat[i * count : (i + 1) * count] for i in range(len(prompts))]

    # -- checks ------------------------------------------------------------------------------

    def _call_config(self, config: DecodingConfig | None, settings: dict) -> DecodingConfig:
        """`config` (or the decoder's) with a call's keyword settings over it."""
        base = config or self.config
        if not settings:
            return base
        known = [f.name for f in dataclasses.fields(DecodingConfig) if f.init]
        unknown = sorted(set(settings) - set(known))
        if unknown:
            raise UniarmError(
                f"unknown decoding setting(s): {', '.join(unknown)}",
                f"pass DecodingConfig fields: {', '.join(known)}",
            )
        return dataclasses.replace(base, **settings)  # __post_init__ validates them

    def _check_preferences(self, preferences) -> None:
        """Guides need a preference; without guides one would be silently ignored: refused."""
        if not self.guides and preferences is not None:
            raise UniarmError(
                "a preference was given but this decoder has no guides to steer with",
                "pass preferences=None for the base model alone, or build the decoder with "
                "guides, e.g. load_guides(CHECKPOINT)",
            )
        if self.guides and preferences is None:
            raise UniarmError(
                "guided decoding needs a preference",
                f"give weights for {', '.join(self.objectives)}, e.g. "
                + ",".join(f"{o}={1 / len(self.objectives):.2g}" for o in self.objectives),
            )

    def _preference_rows(self, preferences, rows: int) -> torch.Tensor | None:
        if not self.guides:
            return None
        prefs = as_tensor(preferences, len(self.objectives), self.objectives)
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

    # -- the base model's stream -------------------------------------------------------------

    def _base_step(self, input_ids, attention_mask, position_ids, cache):
        """The base model's next-token logits; a method, so that timers can wrap it per decoder."""
        return base_forward(self.base, input_ids, attention_mask, position_ids, cache)


def _eos_ids(model, tokenizer) -> list[int]:
    ids = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    generation = getattr(model, "generation_config", None)
    extra = getattr(generation, "eos_token_id", None)
    if isinstance(extra, int):
        extra = [extra]
    return ids + list(extra or [])
