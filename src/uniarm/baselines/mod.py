"""MOD: the per-objective DPO policies' log-probabilities mixed by the preference (paper §5.1).

MOD (decoding-time alignment with multiple objectives) decodes from

    log p(y_t | ·) = Σ_i λ_i log π_i(y_t | ·) + const

over the k DPO-tuned policies π_i, with no separate base-model term (METHOD.md §2). It is the
guided decoder with the base term switched off and one `ObjectiveGuide` per policy at weight
λ_i: the policies share one copy of the base weights as named peft adapters, each with its own
KV cache. Cost per token: k forwards.

    model, tokenizer, meta = load_policies("runs/dpo")
    decoder = mod_decoder(model, tokenizer, meta["objectives"])
    replies = decoder.generate(["How do I pick a lock?"], preferences=[[0.3, 0.7]])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from uniarm.decoding import DecodingConfig, GuidedDecoder, ObjectiveGuide


def mod_decoder(
    policies, tokenizer, objectives: Sequence[str], config: DecodingConfig | None = None
) -> GuidedDecoder:
    """A decoder of Σ_i λ_i log π_i over the adapters of `policies` (see `load_policies`).

    The guidance temperature is fixed at β = 1, so that each policy's weight is exactly λ_i;
    every other decoding setting comes from `config`.
    """
    config = dataclasses.replace(config or DecodingConfig(), beta=1.0)
    guides = [
        ObjectiveGuide(policies, objectives, objective, tokenizer, adapter_name=objective)
        for objective in objectives
    ]
    return GuidedDecoder(policies, tokenizer, guides, config, base_term=False)
