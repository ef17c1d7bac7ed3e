"""Replies of every compared method, built from what its training stage wrote.

Each method's replier has `generate(prompts, preferences) -> [Generation]` and `last_stats`
(rows, new tokens, seconds of the last call), so one timed wrapper serves them all:

| kind   | methods                                  | per token                      |
|--------|------------------------------------------|--------------------------------|
| `base` | the base model alone                     | 1 forward                      |
| `arm`  | UniARM, PARM, GenARM and the ablations   | 1 base + 1 ARM (GenARM: + k)   |
| `mod`  | MOD over the DPO policies                | k policy forwards, no base     |
| `rs`   | Rewarded Soups over the DPO policies     | 1 forward of the souped model  |

The decoding base of an `arm` replier may be another, larger model than the ARM's own base
(weak-to-strong guidance, paper §5.1): the ARM brings its own base from its checkpoint and
the decoder checks that the two share one vocabulary.
"""

from __future__ import annotations

import logging
from pathlib import Path

from uniarm.decoding import DecodingConfig
from uniarm.errors import UniarmError
from uniarm.io import append_jsonl

log = logging.getLogger(__name__)

KINDS = ("base", "arm", "mod", "rs")


def make_replier(
    kind: str, base_model: str, folder: Path | None, decoding: DecodingConfig, device="cpu"
):
    """The replier of one method: `folder` is its ARM checkpoint or DPO policies folder."""
    from uniarm.decoding import GuidedDecoder, load_guides
    from uniarm.models import load_model

    if kind not in KINDS:
        raise UniarmError(f"unknown replier kind {kind!r}", f"use one of {', '.join(KINDS)}")
    if kind in ("arm", "mod", "rs") and folder is None:
        raise UniarmError(f"a {kind} replier needs its trained folder")
    if kind == "base":
        base, tokenizer = load_model(base_model, device=device)
        return GuidedDecoder(base, tokenizer, (), decoding)
    if kind == "arm":
        base, tokenizer = load_model(base_model, device=device)
        return GuidedDecoder(base, tokenizer, load_guides(folder, device=device), decoding)

    from uniarm.baselines.dpo import load_policies

    policies, tokenizer, meta = load_policies(folder, device=device)
    if meta["base_model"] != base_model:
        # MOD and Rewarded Soups tune the base itself: there is no other model to decode
        raise UniarmError(
            f"the policies in {folder} were tuned from {meta['base_model']}, not {base_model}",
            "MOD and Rewarded Soups decode with the model they tuned",
        )
    if kind == "mod":
        from uniarm.baselines.mod import mod_decoder

        return mod_decoder(policies, tokenizer, meta["objectives"], decoding)
    from uniarm.baselines.soups import RewardedSoup

    return RewardedSoup(policies, tokenizer, meta["objectives"], decoding)


class TimedGenerate:
    """The sweep's `Generate` over a replier; each call's decoding speed goes to `stats_path`.

    `make` builds the replier (loads its models) on the first call only, so a sweep that
    resumes with every reply written loads nothing. A row of `stats_path` per call: rows, new
    tokens and seconds of decoding (prefill included, model loading and scoring not).
    Appended, so a resumed sweep keeps the earlier calls'.
    """

    def __init__(self, make, stats_path: Path):
        self.make = make
        self.replier = None
        self.stats_path = Path(stats_path)

    def __call__(self, conversations, preferences) -> list[str]:
        if self.replier is None:
            self.replier = self.make()
        replies = self.replier.generate(list(conversations), preferences)
        append_jsonl(self.stats_path, [dict(self.replier.last_stats)])
        return [r.text for r in replies]


def decoding_speed(stats_path: Path) -> dict:
    """New tokens per second over every call recorded in `stats_path`."""
    from uniarm.io import read_jsonl

    rows = read_jsonl(stats_path) if Path(stats_path).is_file() else []
    tokens = sum(r["new_tokens"] for r in rows)
    seconds = sum(r["seconds"] for r in rows)
    return {
        "new_tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds if seconds > 0 else None,
    }
