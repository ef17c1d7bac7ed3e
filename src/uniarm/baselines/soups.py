"""Rewarded Soups: the per-objective policies' weights interpolated by the preference (§5.1).

Rewarded Soups decodes plainly from one model whose weights are Σ_i λ_i θ_i, θ_i the weights of
the policy tuned for objective i. With LoRA policies θ_i = W0 + s_i B_i A_i on each adapted layer
and Σ_i λ_i = 1, the soup is exactly

    W(λ) = W0 + Σ_i λ_i s_i B_i A_i

which is peft's `add_weighted_adapter(..., combination_type="cat")`: it stacks the rows
λ_i s_i A_i and the columns B_i into one adapter of rank Σ r_i and scale 1. peft's "linear"
combination instead averages the factors, (Σ √(λ_i s_i) B_i)(Σ √(λ_i s_i) A_i), which adds the
cross terms B_i A_j and is not the interpolation of the weights (tests/baselines check both).

    model, tokenizer, meta = load_policies("runs/dpo")
    soup = RewardedSoup(model, tokenizer, meta["objectives"])
    replies = soup.generate(["How do I pick a lock?"], preferences=[[0.3, 0.7]])

Rows are decoded in groups of one preference each, since each preference is its own model.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from uniarm.decoding import DecodingConfig, Generation, GuidedDecoder
from uniarm.preference import as_tensor

SOUP_ADAPTER = "soup"


class RewardedSoup:
    """The policies of `load_policies`, souped for one preference at a time.

    Args:
        policies: a peft model holding one LoRA adapter per objective, named by the objective.
        tokenizer: the base model's tokenizer.
        objectives: the objectives, in the order of the preference vector's weights.
        config: decoding settings (plain decoding of the souped model).
    """

    def __init__(
        self, policies, tokenizer, objectives: Sequence[str], config: DecodingConfig | None = None
    ):
        self.model = policies
        self.objectives = tuple(objectives)
        self.decoder = GuidedDecoder(policies, tokenizer, (), config)
        self.preference: tuple[float, ...] | None = None
        self.last_stats: dict = {}

    def use(self, preference: Sequence[float]) -> None:
        """Make the soup of `preference` the active adapter."""
        values = tuple(float(v) for v in as_tensor(preference, len(self.objectives))[0])
        if values == self.preference:
            return
        if SOUP_ADAPTER in self.model.peft_config:
            self.model.set_adapter(self.objectives[0])
            self.model.delete_adapter(SOUP_ADAPTER)
        # add_weighted_adapter silently keeps an existing adapter of the same name: deleted above
        self.model.add_weighted_adapter(
            list(self.objectives), list(values), SOUP_ADAPTER, combination_type="cat"
        )
        self.model.set_adapter(SOUP_ADAPTER)
        self.preference = values

    def generate(
        self, prompts: Sequence, preferences, config: DecodingConfig | None = None, **overrides
    ) -> list[Generation]:
        """One reply per prompt; row i is decoded by the soup of `preferences[i]`.

        `overrides` set `DecodingConfig` fields for this call, as in `GuidedDecoder.generate`.
        """
        if isinstance(prompts, str):
            prompts = [prompts]
        prefs = as_tensor(preferences, len(self.objectives), self.objectives)
        if prefs.shape[0] == 1:
            prefs = prefs.expand(len(prompts), -1)
        groups: dict[tuple[float, ...], list[int]] = {}
        for row, preference in enumerate(prefs.tolist()):
            groups.setdefault(tuple(preference), []).append(row)

        results: list[Generation | None] = [None] * len(prompts)
        start, new_tokens = time.perf_counter(), 0
        for preference, rows in groups.items():
            self.use(preference)
            replies = self.decoder.generate([prompts[r] for r in rows], config=config, **overrides)
            label = tuple(round(v, 6) for v in preference)
            for row, reply in zip(rows, replies, strict=True):
                results[row] = dataclasses.replace(reply, preference=label)
                new_tokens += len(reply.token_ids)
        self.last_stats = {
            "rows": len(prompts),
            "new_tokens": new_tokens,
            "seconds": time.perf_counter() - start,
        }
        return results
