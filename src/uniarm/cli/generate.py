"""`uniarm generate`: decode prompts with the base model, steered by a reward model.

    uniarm generate --arm runs/safety-uniarm-seed0/arm --preference helpful=0.3,harmless=0.7 \\
        --prompt "How do I pick a lock?"
    uniarm generate --arm runs/safety-genarm-seed0/arm --preference 1,0 0.5,0.5 0,1 \\
        --prompts-file prompts.jsonl --output replies.jsonl
    uniarm generate --prompt "Tell me a joke"          # the base model alone

Several preferences make a sweep: every prompt is decoded under each of them, and each prompt
is prefilled once by every model whose prefill does not depend on the preference.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

from uniarm import config as cfg
from uniarm.decoding.config import DecodingConfig, GenerateConfig
from uniarm.errors import UniarmError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="decode prompts with the base model, guided by an ARM at given preferences",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--recipe", type=Path, help="YAML recipe (its `generate` section)")
    parser.add_argument(
        "--overwrite", action="store_const", const=True, default=None, help="replace --output"
    )
    cfg.add_arguments(parser, GenerateConfig, skip=("overwrite",))
    cfg.add_arguments(parser, DecodingConfig)
    parser.set_defaults(func=run)


def split_recipe(values: dict) -> tuple[dict, dict]:
    """A `generate` recipe section holds both configs' settings; split them by field name."""
    decoding = {f.name for f in dataclasses.fields(DecodingConfig)}
    return (
        {k: v for k, v in values.items() if k not in decoding},
        {k: v for k, v in values.items() if k in decoding},
    )


def run(args) -> int:
    import torch

    recipe_run, recipe_decoding = split_recipe(cfg.load_recipe(args.recipe, "generate"))
    config = cfg.from_namespace(GenerateConfig, args, recipe_run)
    decoding = cfg.from_namespace(DecodingConfig, args, recipe_decoding)
    if config.threads:
        torch.set_num_threads(config.threads)
    records = collect_prompts(config)

    from uniarm.decoding import GuidedDecoder, load_guides
    from uniarm.models import load_model

    base, tokenizer = load_model(config.base, device=config.device)
    guides = [] if config.arm is None else load_guides(config.arm, config.device, decoding.merge)
    decoder = GuidedDecoder(base, tokenizer, guides, decoding)
    preferences = parse_preferences(config.preference, decoder.objectives)

    grid = decoder.sweep([r["prompt"] for r in records], preferences, progress=not args.quiet)
    rows = [
        output_row(record, generation, decoder.objectives, config)
        for record, generations in zip(records, grid, strict=True)
        for generation in generations
    ]
    if config.output is None:
        for row in rows:
            print_row(row)
    else:
        write_rows(config.output, rows, config.overwrite)
        stats = decoder.last_stats
        print(
            f"{len(rows)} responses, {stats['new_tokens']} tokens in {stats['seconds']:.1f} s "
            f"-> {config.output}"
        )
    return 0


def collect_prompts(config: GenerateConfig) -> list[dict]:
    from uniarm.decoding.prompts import read_prompts

    records = [{"prompt": text} for text in config.prompt]
    if config.prompts_file is not None:
        records += read_prompts(config.prompts_file)
    return records


def parse_preferences(texts: list[str], objectives: tuple[str, ...]):
    """The preference rows of the sweep (None for the base model alone)."""
    from uniarm.preference import parse_preference

    if not objectives:
        if texts:
            raise UniarmError(
                "--preference was given but there is no reward model to steer with",
                "pass --arm CHECKPOINT, or drop --preference for the base model alone",
            )
        return None
    if not texts:
        example = ",".join(f"{o}={1 / len(objectives):.2g}" for o in objectives)
        raise UniarmError("guided decoding needs a preference", f"pass e.g. --preference {example}")
    return [parse_preference(text, objectives) for text in texts]


def output_row(record: dict, generation, objectives, config: GenerateConfig) -> dict:
    prompt = record["prompt"]
    if not isinstance(prompt, str):
        prompt = [{"role": t.role, "content": t.content} for t in prompt]
    preference = generation.preference
    return {
        **{k: v for k, v in record.items() if k != "prompt"},
        "prompt": prompt,
        "preference": None if preference is None else dict(zip(objectives, preference)),
        "response": generation.text,
        "finish_reason": generation.finish_reason,
        "new_tokens": len(generation.token_ids),
        "prompt_tokens": generation.prompt_tokens,
        "base": config.base,
        "arm": None if config.arm is None else str(config.arm),
    }


def print_row(row: dict) -> None:
    preference = row["preference"]
    label = "base" if preference is None else ",".join(f"{k}={v:g}" for k, v in preference.items())
    prompt = row["prompt"] if isinstance(row["prompt"], str) else row["prompt"][-1]["content"]
    print(f"### [{label}] {prompt}\n{row['response']}\n")


def write_rows(path: Path, rows: list[dict], overwrite: bool) -> None:
    from uniarm.io import atomic_path

    if path.exists() and not overwrite:  # checked again: it may have appeared while decoding
        raise UniarmError(f"{path} already exists", "pass --overwrite, or choose another --output")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(json.dumps(row) + "\n" for row in rows))
