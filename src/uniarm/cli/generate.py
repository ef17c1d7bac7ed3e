"""`uniarm generate`: decode prompts with the base model, steered by a reward model.

    uniarm generate --arm runs/safety-uniarm-seed0/arm --preference helpful=0.3,harmless=0.7 \\
        --prompt "How do I pick a lock?"
    uniarm generate --arm runs/safety-genarm-seed0/arm --preference 1,0 0.5,0.5 0,1 \\
        --prompts-file prompts.jsonl --output replies.jsonl
    uniarm generate --prompt "Tell me a joke"          # the base model alone

Several preferences make a sweep: every prompt is decoded under each of them, and each prompt
is prefilled once by every model whose prefill does not depend on the preference.

A recipe takes the settings below as keys (`max_new_tokens: 64`, `base_model: MODEL`), of both
groups, what is decoded and how: the whole file, or its `generate:` section when it has command
sections. Flags override it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from uniarm import config as cfg
from uniarm.decoding.config import DecodingConfig, GenerateConfig
from uniarm.errors import UniarmError

RECIPE_SECTION = "generate"
# Older names of GenerateConfig's fields, still accepted as flags and recipe keys.
ALIASES = {"base": "base_model"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="decode prompts with the base model, guided by an ARM at given preferences",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recipe",
        type=Path,
        help="YAML recipe of the settings below, e.g. top_p: 0.9 (flat, or a `generate:` section)",
    )
    aliases = {name: (alias,) for alias, name in ALIASES.items()}
    cfg.add_arguments(parser, GenerateConfig, aliases=aliases)
    cfg.add_arguments(parser, DecodingConfig)
    parser.set_defaults(func=run)


def run(args) -> int:
    import torch

    recipe = cfg.resolve_aliases(cfg.load_recipe(args.recipe, RECIPE_SECTION), ALIASES)
    recipe_run, recipe_decoding = cfg.split_values(recipe, GenerateConfig, DecodingConfig)
    config = cfg.from_namespace(GenerateConfig, args, recipe_run)
    decoding = cfg.from_namespace(DecodingConfig, args, recipe_decoding)
    records = collect_prompts(config)

    # --- every check the arguments allow, before the models load (seconds)
    from uniarm.models.loading import check_device

    check_device(config.device)
    objectives = () if config.arm is None else checkpoint_objectives(config.arm)
    preferences = None
    if objectives is not None:
        preferences = parse_preferences(config.preference, objectives)
    if config.threads:
        torch.set_num_threads(config.threads)

    # --- models
    from uniarm.decoding import GuidedDecoder, load_guides
    from uniarm.models import load_model

    base, tokenizer = load_model(config.base_model, device=config.device)
    guides = [] if config.arm is None else load_guides(config.arm, config.device, decoding.merge)
    decoder = GuidedDecoder(base, tokenizer, guides, decoding)
    if objectives != decoder.objectives:  # a checkpoint whose manifest names no objectives
        preferences = parse_preferences(config.preference, decoder.objectives)

    # --- decode and write
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
    """The prompt records of --prompt and --prompts-file; none at all is refused."""
    from uniarm.decoding.prompts import read_prompts

    records = [{"prompt": text} for text in config.prompt]
    path = config.prompts_file
    if path is not None:
        if Path(path).is_file() and not Path(path).read_text().strip():
            # nothing to decode: refused before any model loads, and no output is written
            raise UniarmError(
                f"the prompts file {path} holds no prompt",
                "write one prompt a line (or JSONL records with a prompt or messages), "
                "or pass --prompt TEXT",
            )
        records += read_prompts(path)  # a missing file is refused there
    return records


def checkpoint_objectives(path: Path) -> tuple[str, ...] | None:
    """The objectives a checkpoint's manifest names (None: it names none), without loading it.

    A wrong path or a folder that is no checkpoint fails here, with its own message.
    """
    from uniarm.decoding.loading import GENARM_MANIFEST, checkpoint_method

    checkpoint_method(path)
    for name in ("arm.json", GENARM_MANIFEST):
        try:
            objectives = json.loads((Path(path) / name).read_text()).get("objectives")
        except (OSError, ValueError, AttributeError):
            continue
        if (
            isinstance(objectives, list)
            and objectives
            and all(isinstance(o, str) for o in objectives)
        ):
            return tuple(objectives)
    return None


def parse_preferences(texts: list[str], objectives: tuple[str, ...]):
    """The preference rows of the sweep (None for the base model alone)."""

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
    return [_parse_one(text, texts, objectives) for text in texts]


def _parse_one(text: str, texts: list[str], objectives: tuple[str, ...]):
    """One --preference value; a lone weight among several values most likely meant one
    preference split by spaces (`--preference 0.3 0.7`), so the fix says how to write it."""
    from uniarm.preference import parse_preference

    def lone(value: str) -> bool:
        return len([part for part in value.split(",") if part.strip()]) == 1

    try:
        return parse_preference(text, objectives)
    except UniarmError as exc:
        if not (lone(text) and len(texts) > 1 and len(objectives) > 1):
            raise
        if all(lone(t) for t in texts):  # one preference, split by spaces: join it by commas
            example = ",".join(t.strip() for t in texts[: len(objectives)])
        else:
            example = ",".join(f"{o}={1 / len(objectives):.2g}" for o in objectives)
        hint = (
            "spaces separate preferences and commas separate the weights of one: "
            f"write e.g. --preference {example}"
        )
        raise UniarmError(exc.problem, f"{exc.fix}; {hint}" if exc.fix else hint) from exc


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
        "base_model": config.base_model,
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
