"""Settings of guided decoding (METHOD.md §2), shared by `uniarm generate`, recipes and servers."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from uniarm.config import field
from uniarm.errors import UniarmError

MAX_NEW_TOKENS_LIMIT = 32768


@dataclass
class DecodingConfig:
    """How the next token is drawn from the guided distribution.

    Parameters:
        max_new_tokens: stop a response after this many tokens.
        beta: β of `log π_base + Σ_i (w_i/β) log π_r_i`; smaller steers harder.
        do_sample: sample (with temperature, top-k, top-p) instead of taking the argmax.
        temperature: divides the guided log-probabilities before sampling.
        top_k: sample among the k most likely tokens only (0: all).
        top_p: sample among the smallest set of tokens holding this much probability (1: all).
        seed: row i of a call samples from its own generator seeded with seed + i.
        stop: strings that end a response (the response is cut before them).
        batch_size: rows decoded together.
        chat_template: render prompts with the tokenizer's chat template.
        overlong: a prompt that leaves no room for max_new_tokens in the context is cut from
            the left with a warning (`truncate`) or refused (`error`).
        merge: `auto` folds a preference ARM's adapters into its weights when a batch holds
            one preference only (a plain forward); `never` keeps the per-row path.
        compact_fraction: drop finished rows from the batch (and every KV cache) once this
            fraction of the rows still in the batch is finished (1: never compact until all).
        share_prefill: run the prompt through preference-independent models once per unique
            prompt, then copy the caches to every row of that prompt.
    """

    max_new_tokens: int = field(128, help="most tokens per response")
    beta: float = field(1.0, help="guidance temperature beta: weight of an ARM is w/beta")
    do_sample: bool = field(False, help="sample instead of greedy decoding")
    temperature: float = field(1.0, help="sampling temperature")
    top_k: int = field(0, help="sample among the top-k tokens only (0: off)")
    top_p: float = field(1.0, help="nucleus sampling mass (1: off)")
    seed: int = field(0, help="seed of row i is seed + i")
    stop: list[str] = field([], help="stop strings that end a response")
    batch_size: int = field(8, help="rows decoded together")
    chat_template: bool = field(True, help="render prompts with the chat template")
    overlong: Literal["truncate", "error"] = field(
        "truncate", help="prompt longer than the context: cut from the left, or refuse"
    )
    merge: Literal["auto", "never"] = field(
        "auto", help="merge a preference ARM when a batch holds a single preference"
    )
    compact_fraction: float = field(0.25, help="drop finished rows once this fraction is done")
    share_prefill: bool = field(True, help="prefill each unique prompt once where possible")

    def __post_init__(self):
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise UniarmError(
                f"max_new_tokens={self.max_new_tokens} is out of range",
                f"use 1 to {MAX_NEW_TOKENS_LIMIT} (and less than the model's context)",
            )
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise UniarmError(f"beta={self.beta} must be a positive finite number", "e.g. 1.0")
        if self.do_sample and not (self.temperature > 0 and math.isfinite(self.temperature)):
            raise UniarmError(
                f"temperature={self.temperature} must be > 0 when sampling",
                "use a positive temperature, or --do-sample false for greedy decoding",
            )
        if self.top_k < 0:
            raise UniarmError(f"top_k={self.top_k} is negative", "use 0 (off) or a positive k")
        if not 0 < self.top_p <= 1:
            raise UniarmError(f"top_p={self.top_p} must lie in (0, 1]", "e.g. 0.9, or 1 (off)")
        if self.batch_size < 1:
            raise UniarmError(f"batch_size={self.batch_size} must be >= 1")
        if not 0 < self.compact_fraction <= 1:
            raise UniarmError(f"compact_fraction={self.compact_fraction} must lie in (0, 1]")
        if isinstance(self.stop, str):  # a recipe may give one stop string as plain text
            self.stop = [self.stop]
        if any(not s for s in self.stop):
            raise UniarmError("an empty stop string would stop every response at once")
        self.stop = list(self.stop)
        if self.overlong not in ("truncate", "error"):
            raise UniarmError(f"overlong={self.overlong!r}", "use truncate or error")
        if self.merge not in ("auto", "never"):
            raise UniarmError(f"merge={self.merge!r}", "use auto or never")


@dataclass
class GenerateConfig:
    """What `uniarm generate` decodes; how it decodes is a `DecodingConfig`.

    Parameters:
        base_model: the frozen base model spec (embedded name, folder or hub name); `base` is
            its older name, still accepted as a flag and a recipe key.
        arm: a reward model checkpoint folder (UniARM, PARM or GenARM); none: the base alone.
        preference: one or more preferences, e.g. helpful=0.3,harmless=0.7 (a sweep).
        prompt: prompt texts given on the command line.
        prompts_file: a text file (one prompt a line) or JSONL (`prompt` or `messages`).
        output: JSONL file for the responses (default: print them).
        overwrite: replace an existing output file.
        device: where the models run.
        threads: torch threads (0: torch's default).
    """

    base_model: str = field("smollm2-135m-instruct", help="base model spec")
    arm: Path | None = field(None, help="ARM checkpoint folder (none: the base model alone)")
    preference: list[str] = field([], help="preferences, e.g. helpful=0.3,harmless=0.7 (sweep)")
    prompt: list[str] = field([], help="prompt texts")
    prompts_file: Path | None = field(None, help="text file (a prompt a line) or JSONL")
    output: Path | None = field(None, help="write the responses as JSONL here")
    overwrite: bool = field(False, help="replace an existing output file")
    device: str = field("cpu", help="device of the models")
    threads: int = field(0, help="torch threads (0: torch's default)")

    def __post_init__(self):
        if not self.prompt and self.prompts_file is None:
            raise UniarmError("no prompt given", "pass --prompt TEXT or --prompts-file FILE")
        if self.output is not None and Path(self.output).exists() and not self.overwrite:
            raise UniarmError(
                f"{self.output} already exists", "pass --overwrite, or choose another --output"
            )
        if self.threads < 0:
            raise UniarmError(f"threads={self.threads} is negative", "use 0 (default) or more")
        self.prompt, self.preference = list(self.prompt), list(self.preference)
